"""Fit, hull distances, label statistics and prediction in one place.

The composition behind ``tuneprobe directprobe`` (:mod:`tuneprobe.directprobe.commands`) and behind the
experiment cells of :mod:`tuneprobe.geometry.cells`; both call :func:`measure` and :func:`predict_split`, so
the two paths cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuneprobe.directprobe.clustering import Clustering
from tuneprobe.directprobe.hulls import DEFAULT_RTOL, PairDistances
from tuneprobe.directprobe.metrics import LabelStatistics
from tuneprobe.directprobe.predict import HullPrediction

__all__ = ["Measurement", "SplitPrediction", "ProgressBar", "fit_clustering", "measure", "predict_split"]

FitFn = Callable[..., Clustering]


class ProgressBar:
    """tqdm progress over solved pairs, as a ``(done, total)`` callback (a no-op when disabled)."""

    def __init__(self, enabled: bool, desc: str) -> None:
        self.bar: Any = None
        self.enabled = enabled
        self.desc = desc
        self.n = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="pair", leave=False)
        self.bar.update(done - self.n)
        self.n = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fit_clustering(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    *,
    search: str = "auto",
    duplicate_policy: str = "keep",
    legacy_forward_loop: bool = False,
    progress: bool = False,
    max_seconds: float | None = None,
) -> Clustering:
    """``DirectProbe(...).fit(X [n, d], y [n], label_names=names)`` (the engine is imported lazily)."""
    from tuneprobe.directprobe.cluster import DirectProbe

    dp = DirectProbe(
        search=search,  # type: ignore[arg-type]
        duplicate_policy=duplicate_policy,  # type: ignore[arg-type]
        legacy_forward_loop=legacy_forward_loop,
        progress=progress,
        max_seconds=max_seconds,
    )
    return dp.fit(X, y, label_names=names)


@dataclass
class Measurement:
    """One DirectProbe fit with everything measured on it.

    X: float64 ``[n, d]`` the fitted points (contiguous). y: int64 ``[n]`` label ids into ``names``.
    names: the label vocabulary (id -> name). clustering: the fit. pair_distances: the ``[K, K]`` cluster
    hull distances. statistics: label distances, inside statistics and counts under ``min_cluster_size`` /
    ``undefined``. seconds_cluster, seconds_distances: wall time of the fit and of distances + statistics.
    """

    X: np.ndarray
    y: np.ndarray
    names: list[str]
    clustering: Clustering
    pair_distances: PairDistances
    statistics: LabelStatistics
    seconds_cluster: float
    seconds_distances: float


def measure(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    *,
    fit: FitFn | None = None,
    min_cluster_size: int = 1,
    undefined: str = "nan",
    same_label: bool = False,
    search: str = "auto",
    duplicate_policy: str = "keep",
    legacy_forward_loop: bool = False,
    rtol: float = DEFAULT_RTOL,
    backend: str = "auto",
    device: str | None = "auto",
    progress: bool = False,
    max_seconds: float | None = None,
) -> Measurement:
    """Cluster ``X`` (``[n, d]``) with label ids ``y`` (``[n]``, indices into ``names``), compute the cluster
    hull distances and the label statistics (PAPER.md §6.5-6.7).

    ``fit`` replaces :func:`fit_clustering` (same signature); ``names`` may hold labels absent from ``y``
    (their rows of every statistic are undefined). backend, device: the hull solver
    (:func:`tuneprobe.directprobe.hulls.resolve_backend`; by default torch on CUDA when present).
    max_seconds: the clustering's time budget (``DirectProbe(max_seconds=...)``; None: no limit); an
    unfinished clustering (``clustering.finished`` False) is measured as it stands.
    """
    from tuneprobe.directprobe.hulls import cluster_distances
    from tuneprobe.directprobe.metrics import label_statistics

    X64 = np.ascontiguousarray(X, dtype=np.float64)
    y64 = np.asarray(y, dtype=np.int64)
    names = list(names)
    t0 = time.perf_counter()
    clustering = (fit or fit_clustering)(
        X64,
        y64,
        names,
        search=search,
        duplicate_policy=duplicate_policy,
        legacy_forward_loop=legacy_forward_loop,
        progress=progress,
        **({} if max_seconds is None else {"max_seconds": max_seconds}),
    )
    seconds_cluster = time.perf_counter() - t0
    if clustering.label_names is None:
        clustering.label_names = names

    t0 = time.perf_counter()
    bar = ProgressBar(progress, "hull distances")
    try:
        pdist = cluster_distances(
            X64, clustering, same_label=same_label, rtol=rtol, backend=backend, device=device, progress=bar
        )
    finally:
        bar.close()
    stats = label_statistics(
        X64,
        clustering,
        pdist.distance,
        min_cluster_size=min_cluster_size,
        undefined=undefined,  # type: ignore[arg-type]
    )
    seconds_distances = time.perf_counter() - t0
    return Measurement(X64, y64, names, clustering, pdist, stats, seconds_cluster, seconds_distances)


@dataclass
class SplitPrediction:
    """Nearest-hull and 1-NN prediction of another split from a :class:`Measurement`.

    hull: the nearest-hull prediction (``hull.labels`` int64 ``[m]``). nn_labels: int64 ``[m]`` 1-NN labels.
    intra_accuracy, nn_accuracy: accuracies (labels unseen in the fit, ``y < 0``, count as errors).
    seconds: wall time of both predictions.
    """

    hull: HullPrediction
    nn_labels: np.ndarray
    intra_accuracy: float
    nn_accuracy: float
    seconds: float


def predict_split(
    m: Measurement,
    X_predict: np.ndarray,
    y_predict: np.ndarray,
    *,
    rtol: float = DEFAULT_RTOL,
    backend: str = "auto",
    device: str | None = "auto",
    progress: bool = False,
) -> SplitPrediction:
    """Predict ``X_predict`` (``[m, d]``, true label ids ``y_predict`` ``[m]`` into ``m.names``, -1 for
    labels unseen in the fit) by the nearest hull of ``m``'s clusters and by the 1-NN baseline."""
    from tuneprobe.directprobe.predict import intra_accuracy, nearest_hull_predict, nearest_neighbor_predict

    t0 = time.perf_counter()
    Xp = np.ascontiguousarray(X_predict, dtype=np.float64)
    yp = np.asarray(y_predict, dtype=np.int64)
    bar = ProgressBar(progress, "nearest hull")
    try:
        pred = nearest_hull_predict(
            m.X,
            m.clustering,
            Xp,
            rtol=rtol,
            cluster_distances=m.pair_distances.distance,
            backend=backend,
            device=device,
            progress=bar,
        )
    finally:
        bar.close()
    valid = np.asarray(m.clustering.assignment) >= 0
    nn = nearest_neighbor_predict(m.X[valid], m.y[valid], Xp)
    return SplitPrediction(
        hull=pred,
        nn_labels=nn,
        intra_accuracy=intra_accuracy(pred.labels, yp),
        nn_accuracy=intra_accuracy(nn, yp),
        seconds=time.perf_counter() - t0,
    )
