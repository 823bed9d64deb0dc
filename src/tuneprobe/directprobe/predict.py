"""Nearest-hull prediction (intra-accuracy) and the 1-NN baseline (PAPER.md §6.5).

A test point gets the label of the cluster whose convex hull is nearest (point-to-hull distance, 0 inside a
hull).

Ties. Distances come from a solver with relative tolerance ``rtol`` (every reported distance ``d`` satisfies
``D <= d <= D / (1 - rtol)`` for the true ``D``), so clusters whose reported distances lie within
``window(d_min) = d_min * rtol / (1 - rtol) + atol`` of the smallest one cannot be told apart and count as
tied. Ties are broken by the distance from the point to the cluster centroid, then by the smaller label id,
then by the smaller cluster id. The reference instead takes ``argsort`` order.

Speed. Only clusters that can be nearest are solved: with ``u`` = the distance to the nearest training point
of any cluster (an upper bound on the nearest hull distance) and the ball bound
``d(p, C) >= ||p - centroid(C)|| - radius(C)``, a cluster whose bound exceeds ``u / (1 - rtol) + window``
cannot be in the tie set and is skipped (exact: the result equals solving every pair).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuneprobe.directprobe.clustering import Clustering
from tuneprobe.directprobe.hulls import DEFAULT_RTOL, ProgressFn, point_hull_distance_details

__all__ = [
    "HullPrediction",
    "nearest_hull_predict",
    "nearest_neighbor_predict",
    "intra_accuracy",
]


@dataclass
class HullPrediction:
    """Nearest-hull prediction of m test points.

    labels: int64 ``[m]`` predicted label ids (``Clustering.cluster_labels`` of the chosen cluster).
    clusters: int64 ``[m]`` chosen cluster ids.
    distance: float64 ``[m]`` distance to the chosen hull (0 inside).
    n_tied: int64 ``[m]`` clusters in the tie set (1 = no tie).
    distances: float64 ``[m, K]`` point-to-hull distances; NaN where the cluster was skipped as impossible.
    n_solved: (point, cluster) pairs solved. n_unconverged: solved pairs that hit the iteration cap.
    """

    labels: np.ndarray
    clusters: np.ndarray
    distance: np.ndarray
    n_tied: np.ndarray
    distances: np.ndarray
    n_solved: int
    n_unconverged: int


def _cluster_geometry(X: np.ndarray, clustering: Clustering) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centroids ``[K, d]``, radii ``[K]``, valid row mask ``[n]``) in float64."""
    a = np.asarray(clustering.assignment, dtype=np.int64)
    K = clustering.n_clusters
    valid = a >= 0
    av = a[valid]
    Xv = X[valid]
    cnt = np.bincount(av, minlength=K).astype(np.float64)
    cent = np.zeros((K, X.shape[1]))
    np.add.at(cent, av, Xv)
    cent /= np.maximum(cnt, 1.0)[:, None]
    dev = np.sqrt(np.einsum("nd,nd->n", Xv - cent[av], Xv - cent[av]))
    radius = np.zeros(K)
    np.maximum.at(radius, av, dev)
    return cent, radius, valid


def _sq_dists_min_by_group(
    P: np.ndarray, X: np.ndarray, groups: np.ndarray, n_groups: int, block: int = 1024
) -> np.ndarray:
    """``[m, n_groups]`` min over rows of each group of ``||p - x||`` (inf for empty groups), blockwise."""
    m = P.shape[0]
    out = np.full((m, n_groups), np.inf)
    sx = np.einsum("nd,nd->n", X, X)
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    cuts = np.flatnonzero(np.diff(g_sorted)) + 1
    starts = np.concatenate([[0], cuts]) if g_sorted.size else np.zeros(0, np.int64)
    Xs, sxs = X[order], sx[order]
    for t0 in range(0, m, block):
        Pt = P[t0 : t0 + block]
        sp = np.einsum("nd,nd->n", Pt, Pt)
        d2 = sp[:, None] + sxs[None, :] - 2.0 * (Pt @ Xs.T)
        np.maximum(d2, 0.0, out=d2)
        if starts.size:
            out[t0 : t0 + block, g_sorted[starts]] = np.minimum.reduceat(d2, starts, axis=1)
    return np.sqrt(out)


def nearest_hull_predict(
    X_train: np.ndarray,
    clustering: Clustering,
    X_test: np.ndarray,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float | None = None,
    prune: bool = True,
    max_iter: int = 1000,
    backend: str = "numpy",
    device: str | None = None,
    progress: ProgressFn | None = None,
) -> HullPrediction:
    """Label every row of ``X_test`` (``[m, d]``) with the label of its nearest cluster hull of ``X_train``
    (``[n, d]``, clustered by ``clustering``). See the module docstring for ties and pruning.
    """
    Xtr = np.asarray(X_train, dtype=np.float64)
    Xte = np.asarray(X_test, dtype=np.float64)
    if Xtr.ndim != 2 or Xte.ndim != 2 or Xtr.shape[1] != Xte.shape[1]:
        raise ValueError(f"expected X_train [n, d] and X_test [m, d], got {Xtr.shape} and {Xte.shape}")
    if not (np.isfinite(Xtr).all() and np.isfinite(Xte).all()):
        raise ValueError("X_train or X_test contains NaN or Inf")
    K = clustering.n_clusters
    m = Xte.shape[0]
    lab = np.asarray(clustering.cluster_labels, dtype=np.int64)
    if m == 0 or K == 0:
        z = np.zeros(0, np.int64)
        return HullPrediction(z, z, np.zeros(0), z, np.zeros((m, K)), 0, 0)
    mu = Xtr.mean(0)
    Xtr_c, Xte_c = Xtr - mu, Xte - mu
    cent, radius, valid = _cluster_geometry(Xtr_c, clustering)
    cdist = np.sqrt(
        np.maximum(
            np.einsum("md,md->m", Xte_c, Xte_c)[:, None]
            + np.einsum("kd,kd->k", cent, cent)[None, :]
            - 2.0 * Xte_c @ cent.T,
            0.0,
        )
    )
    if atol is None:
        scale = float(np.sqrt(np.einsum("nd,nd->n", Xtr_c, Xtr_c).max(initial=0.0)))
        scale = max(scale, float(np.sqrt(np.einsum("nd,nd->n", Xte_c, Xte_c).max(initial=0.0))))
        atol = 1e-9 * max(scale, 1e-300)
    slack = rtol / (1.0 - rtol)
    if prune:
        nearest = _sq_dists_min_by_group(Xte_c, Xtr_c[valid], np.asarray(clustering.assignment)[valid], K)
        u = nearest.min(1)  # >= nearest hull distance
        lower = np.maximum(cdist - radius[None, :], 0.0)
        bound = u / (1.0 - rtol)
        mask = lower <= (bound * (1.0 + slack) + atol)[:, None]
    else:
        mask = np.ones((m, K), dtype=bool)
    res = point_hull_distance_details(
        Xte,
        Xtr,
        clustering,
        clusters=mask,
        rtol=rtol,
        atol=atol,
        max_iter=max_iter,
        backend=backend,
        device=device,
        progress=progress,
    )
    D = res.distance
    Dm = np.where(np.isfinite(D), D, np.inf)
    dmin = Dm.min(1)
    tied = Dm <= (dmin * (1.0 + slack) + atol)[:, None]
    # lexicographic choice among the tied: centroid distance, label id, cluster id
    key_c = np.where(tied, cdist, np.inf)
    cmin = key_c.min(1)
    best = tied & (key_c <= cmin[:, None])
    key_l = np.where(best, lab[None, :], np.iinfo(np.int64).max)
    lmin = key_l.min(1)
    best &= key_l == lmin[:, None]
    choice = best.argmax(1)  # smallest cluster id among the remaining
    rows = np.arange(m)
    return HullPrediction(
        labels=lab[choice],
        clusters=choice.astype(np.int64),
        distance=D[rows, choice],
        n_tied=tied.sum(1).astype(np.int64),
        distances=D,
        n_solved=int(mask.sum()),
        n_unconverged=int((~res.converged & mask).sum()),
    )


def nearest_neighbor_predict(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, block: int = 1024
) -> np.ndarray:
    """1-NN baseline: int64 ``[m]`` label of the nearest training row (``X_train`` ``[n, d]``, ``y_train``
    ``[n]``).

    This is nearest-hull prediction with singleton clusters; equidistant training points (e.g. duplicates) are
    broken by the smaller label id.
    """
    Xtr = np.asarray(X_train, dtype=np.float64)
    Xte = np.asarray(X_test, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.int64)
    if Xtr.shape[0] != y.shape[0]:
        raise ValueError(f"X_train has {Xtr.shape[0]} rows but y_train has {y.shape[0]}")
    mu = Xtr.mean(0)
    Xtr, Xte = Xtr - mu, Xte - mu
    sx = np.einsum("nd,nd->n", Xtr, Xtr)
    out = np.empty(Xte.shape[0], dtype=np.int64)
    big = np.iinfo(np.int64).max
    for t0 in range(0, Xte.shape[0], block):
        Pt = Xte[t0 : t0 + block]
        d2 = np.einsum("nd,nd->n", Pt, Pt)[:, None] + sx[None, :] - 2.0 * (Pt @ Xtr.T)
        np.maximum(d2, 0.0, out=d2)
        dmin = d2.min(1, keepdims=True)
        tie = d2 <= dmin * (1 + 1e-12)
        out[t0 : t0 + block] = np.where(tie, y[None, :], big).min(1)
    return out


def intra_accuracy(predicted: np.ndarray, y_true: np.ndarray) -> float:
    """Fraction of correct predictions. ``y_true`` entries < 0 (labels unseen in training) count as errors."""
    p = np.asarray(predicted, dtype=np.int64)
    t = np.asarray(y_true, dtype=np.int64)
    if p.shape != t.shape:
        raise ValueError(f"predicted and y_true differ in shape ({p.shape} vs {t.shape})")
    if p.size == 0:
        return float("nan")
    return float(((p == t) & (t >= 0)).mean())
