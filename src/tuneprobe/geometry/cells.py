"""One DirectProbe cell: everything the paper's analyses need from one fit, saved and reloaded exactly.

A *cell* is one (model, tuned_on, checkpoint, layer, task, split, seed, control) combination
(:class:`CellKey`). :func:`run_directprobe_cell` clusters that cell's representation with DirectProbe,
measures hull distances and label statistics (:func:`tuneprobe.directprobe.measure.measure`, the same
composition as ``tuneprobe directprobe``), optionally predicts other splits, and keeps the results as plain
arrays in a :class:`DirectProbeCell`. The analyses of :mod:`tuneprobe.geometry.analyses` read only cells,
never points.

Label ids are indices into ``DirectProbeCell.labels`` (the representation's label vocabulary); a label of the
vocabulary without points in the split has NaN rows in every statistic (PAPER.md §6.7, strict profile).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuneprobe.experiments.results import make_row

__all__ = [
    "CellKey",
    "DirectProbeCell",
    "run_directprobe_cell",
    "permute_labels",
    "effective_dimension",
    "CELL_FORMAT",
]

CELL_FORMAT = 1
"""Version of the file layout written by :meth:`DirectProbeCell.save`."""

CONTROLS = ("real", "random")


@dataclass(frozen=True)
class CellKey:
    """Where a cell sits in the grid (the key columns of its result rows).

    control: ``"real"``, or ``"random"`` for the random-label control (labels permuted within the split with
    :func:`permute_labels`; ``seed`` is then also the permutation seed).
    """

    model: str
    tuned_on: str
    checkpoint: int
    layer: int
    task: str
    split: str
    seed: int = 0
    control: str = "real"

    def __post_init__(self) -> None:
        if self.control not in CONTROLS:
            raise ValueError(f"CellKey.control must be one of {CONTROLS}, got {self.control!r}")

    def row_key(self, **override: Any) -> dict[str, Any]:
        """The key columns of :func:`~tuneprobe.experiments.results.make_row` (``override`` replaces some)."""
        out = asdict(self)
        out.update(override)
        return out


# arrays stored in the .npz, with their dtypes
_ARRAYS: dict[str, type] = {
    "clusters": np.int64,
    "label_distance": np.float64,
    "label_distance_min": np.float64,
    "outside_min": np.float64,
    "inside_mean": np.float64,
    "inside_max": np.float64,
    "n_points_label": np.int64,
    "n_clusters_label": np.int64,
    "n_clusters_retained": np.int64,
    "centroids": np.float64,
}


@dataclass(eq=False)
class DirectProbeCell:
    """Everything later analyses need from one DirectProbe fit (PAPER.md §6.6), n = ``len(labels)``.

    labels: the label vocabulary (label id -> name).
    n_points: fitted points. n_clusters: clusters found. is_linear: one cluster per label present.
    clusters: int64 ``[n_points]`` cluster id of every point, input order (-1 for points the fit dropped).
    label_distance: float64 ``[n, n]`` D_lab, the mean hull distance over the labels' retained cluster pairs;
        NaN where a label has no point or no retained cluster; 0 on the diagonal.
    label_distance_min: float64 ``[n, n]`` the minimum over the same cluster pairs.
    outside_min, inside_mean, inside_max: float64 ``[n]`` (§6.6; NaN where undefined).
    n_points_label, n_clusters_label: int64 ``[n]`` points and clusters (before ``min_cluster_size``).
    centroids: float64 ``[n, dim]`` label centroids (NaN rows for labels without points).
    effective_dimension: PCA rank at 99 % of the variance of the fitted points (:func:`effective_dimension`).
    predictions: predicted split -> ``{"intra_accuracy": .., "nn_accuracy": ..}``.
    seconds: ``seconds_cluster``, ``seconds_distances``, ``seconds_predict``.
    dim: the dimension d of the points (Cover threshold d + 1, PAPER.md §8).
    n_clusters_retained: int64 ``[n]`` clusters kept under ``min_cluster_size`` (default:
        ``n_clusters_label``).
    min_cluster_size, undefined: the statistics' options (§6.7; strict: 1 and ``"nan"``).
    affected_labels: labels that lost a cluster to ``min_cluster_size``.
    """

    key: CellKey
    labels: list[str]
    n_points: int
    n_clusters: int
    is_linear: bool
    clusters: np.ndarray
    label_distance: np.ndarray
    label_distance_min: np.ndarray
    outside_min: np.ndarray
    inside_mean: np.ndarray
    inside_max: np.ndarray
    n_points_label: np.ndarray
    n_clusters_label: np.ndarray
    centroids: np.ndarray
    effective_dimension: int
    predictions: dict[str, dict[str, float]]
    seconds: dict[str, float]
    dim: int = 0
    n_clusters_retained: np.ndarray | None = None
    min_cluster_size: int = 1
    undefined: str = "nan"
    affected_labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.n_clusters_retained is None:
            self.n_clusters_retained = np.array(self.n_clusters_label, dtype=np.int64, copy=True)
        for name, dtype in _ARRAYS.items():
            setattr(self, name, np.asarray(getattr(self, name), dtype=dtype))
        n = len(self.labels)
        for name in _ARRAYS:
            arr = getattr(self, name)
            if name == "clusters":
                ok = arr.shape == (self.n_points,)
            elif name.startswith("label_distance"):
                ok = arr.shape == (n, n)
            elif name == "centroids":
                ok = arr.ndim == 2 and arr.shape[0] == n
            else:
                ok = arr.shape == (n,)
            if not ok:
                raise ValueError(
                    f"DirectProbeCell.{name} has shape {arr.shape}, inconsistent with {n} labels"
                )
        if not self.dim:
            self.dim = int(self.centroids.shape[1])

    # ------------------------------------------------------------------------------------------ views
    @property
    def n_labels(self) -> int:
        """Labels with at least one point in the split (``is_linear`` compares ``n_clusters`` with this)."""
        return int((self.n_points_label > 0).sum())

    def present(self) -> np.ndarray:
        """bool ``[n]``: labels with at least one point."""
        return self.n_points_label > 0

    def retained(self) -> np.ndarray:
        """bool ``[n]``: labels with at least one cluster kept under ``min_cluster_size``."""
        assert self.n_clusters_retained is not None
        return self.n_clusters_retained > 0

    def index(self) -> dict[str, int]:
        """Label name -> label id."""
        return {name: i for i, name in enumerate(self.labels)}

    def same_as(self, other: DirectProbeCell) -> bool:
        """True when every field is equal (arrays elementwise, NaN equal to NaN)."""
        if not isinstance(other, DirectProbeCell):
            return False
        for name in _ARRAYS:
            a, b = getattr(self, name), getattr(other, name)
            if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                return False
        # compared as JSON text, so that NaN equals NaN and floats compare by their exact repr
        return json.dumps(_meta(self), sort_keys=True) == json.dumps(_meta(other), sort_keys=True)

    # ------------------------------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the cell to one ``.npz`` file at ``path`` (exactly that name), atomically.

        The arrays are stored as npz members; the scalars, names and dictionaries as a JSON document in the
        member ``meta`` (UTF-8 bytes). The file is written to a temporary name in the same directory, synced,
        then renamed, so ``path`` is either the old file or the complete new one.
        """
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps(_meta(self), sort_keys=True, allow_nan=True).encode("utf-8")
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(meta, dtype=np.uint8), **{k: getattr(self, k) for k in _ARRAYS})
        from tuneprobe.store.arrays import sweep_stale_temps, temp_prefix

        sweep_stale_temps(p)  # temporaries of killed writers of this path
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(p), suffix=".part", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, p)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DirectProbeCell:
        """Read a cell written by :meth:`save` (raises ``FileNotFoundError`` / ``ValueError``)."""
        p = Path(path)
        with np.load(p, allow_pickle=False) as z:
            try:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                arrays = {k: np.array(z[k]) for k in _ARRAYS}
            except KeyError as exc:
                raise ValueError(f"{p}: not a DirectProbe cell file (missing {exc})") from None
        if meta.pop("format", None) != CELL_FORMAT:
            raise ValueError(f"{p}: unsupported cell format (expected {CELL_FORMAT})")
        key = CellKey(**meta.pop("key"))
        return cls(key=key, **meta, **arrays)

    # ------------------------------------------------------------------------------------------ rows
    def rows(self) -> list[dict[str, Any]]:
        """``analysis="directprobe"`` rows (see ``ANALYSES`` in :mod:`tuneprobe.experiments.results`).

        Whole set: n_points, n_labels (labels present), n_clusters, is_linear, effective_dimension, dim; per
        predicted split (the row's split): intra_accuracy, nn_accuracy. Per label present in the split:
        outside_min, inside_mean, inside_max, n_points_label, n_clusters_label. Per pair of present labels
        (label < label_b by name): distance, distance_min, below_cover (1 when the two labels together have
        at most d + 1 points, so their separability is guaranteed by Cover's theorem, PAPER.md §8).
        """
        k = self.key.row_key()

        def row(metric: str, value: float, **kw: Any) -> dict[str, Any]:
            return make_row(analysis="directprobe", metric=metric, value=value, **{**k, **kw})

        out = [
            row("n_points", self.n_points),
            row("n_labels", self.n_labels),
            row("n_clusters", self.n_clusters),
            row("is_linear", float(self.is_linear)),
            row("effective_dimension", self.effective_dimension),
            row("dim", self.dim),
        ]
        for split in sorted(self.predictions):
            for metric, value in sorted(self.predictions[split].items()):
                out.append(row(metric, value, split=split))
        present = [i for i in np.argsort(self.labels, kind="stable").tolist() if self.n_points_label[i] > 0]
        for i in present:
            name = self.labels[i]
            out += [
                row("outside_min", self.outside_min[i], label=name),
                row("inside_mean", self.inside_mean[i], label=name),
                row("inside_max", self.inside_max[i], label=name),
                row("n_points_label", self.n_points_label[i], label=name),
                row("n_clusters_label", self.n_clusters_label[i], label=name),
            ]
        for a, i in enumerate(present):
            for j in present[a + 1 :]:
                pair = {"label": self.labels[i], "label_b": self.labels[j]}
                cover = float(self.n_points_label[i] + self.n_points_label[j] <= self.dim + 1)
                out += [
                    row("distance", self.label_distance[i, j], **pair),
                    row("distance_min", self.label_distance_min[i, j], **pair),
                    row("below_cover", cover, **pair),
                ]
        return out


def _meta(cell: DirectProbeCell) -> dict[str, Any]:
    """The JSON part of a saved cell (everything but the arrays)."""
    return {
        "format": CELL_FORMAT,
        "key": asdict(cell.key),
        "labels": list(cell.labels),
        "n_points": int(cell.n_points),
        "n_clusters": int(cell.n_clusters),
        "is_linear": bool(cell.is_linear),
        "effective_dimension": int(cell.effective_dimension),
        "predictions": {s: {m: float(v) for m, v in d.items()} for s, d in cell.predictions.items()},
        "seconds": {m: float(v) for m, v in cell.seconds.items()},
        "dim": int(cell.dim),
        "min_cluster_size": int(cell.min_cluster_size),
        "undefined": str(cell.undefined),
        "affected_labels": list(cell.affected_labels),
    }


# ----------------------------------------------------------------------------------------------------------
# building cells
# ----------------------------------------------------------------------------------------------------------


def effective_dimension(X: np.ndarray, threshold: float = 0.99) -> int:
    """PCA rank at ``threshold`` of the variance: the fewest principal components of ``X`` (``[n, d]``)
    whose variances sum to at least ``threshold`` of the total (0 for constant ``X``)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be [n, d], got {X.shape}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if X.shape[0] < 2:
        return 0
    Xc = X - X.mean(0)
    if X.shape[0] <= X.shape[1]:
        var = np.linalg.svd(Xc, compute_uv=False) ** 2
    else:
        var = np.clip(np.linalg.eigvalsh(Xc.T @ Xc)[::-1], 0.0, None)
    total = float(var.sum())
    if total <= 0.0:
        return 0
    cum = np.cumsum(var) / total
    k = int(np.searchsorted(cum, threshold * (1 - 1e-12), side="left")) + 1
    return min(k, int(var.size))


def permute_labels(y: np.ndarray, seed: int) -> np.ndarray:
    """Random-label control (PAPER.md §8): a seeded permutation of ``y`` (``[n]``) within the split.

    Every label keeps its count; the same ``seed`` gives the same permutation.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be [n], got {y.shape}")
    return np.random.default_rng(np.random.SeedSequence(int(seed))).permutation(y)


def _label_ids(y: np.ndarray, labels: Sequence[str], what: str, *, unseen_ok: bool) -> np.ndarray:
    """int64 label ids from ids into ``labels`` or from label names (unknown names -> -1 if ``unseen_ok``)."""
    y = np.asarray(y)
    n = len(labels)
    if y.dtype.kind in "USO":
        index = {name: i for i, name in enumerate(labels)}
        ids = np.array([index.get(str(v), -1) for v in y.tolist()], dtype=np.int64)
        if not unseen_ok and (ids < 0).any():
            bad = sorted({str(v) for v in y[ids < 0].tolist()})[:5]
            raise ValueError(f"{what}: label names not in the vocabulary: {bad}")
        return ids
    if y.dtype.kind not in "iu":
        raise ValueError(f"{what}: expected integer label ids or label names, got dtype {y.dtype}")
    ids = y.astype(np.int64)
    low = -1 if unseen_ok else 0
    if ids.size and (ids.min() < low or ids.max() >= n):
        raise ValueError(f"{what}: label ids must lie in [{low}, {n}), got [{ids.min()}, {ids.max()}]")
    return ids


def run_directprobe_cell(
    key: CellKey,
    X: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    *,
    predict: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    min_cluster_size: int = 1,
    progress: bool = False,
    undefined: str = "nan",
    search: str = "auto",
    duplicate_policy: str = "keep",
    rtol: float | None = None,
    backend: str = "auto",
    device: str | None = "auto",
) -> DirectProbeCell:
    """Fit DirectProbe on ``X`` (``[n, d]``) with label ids ``y`` (``[n]``, indices into ``labels``) and
    measure the cell.

    predict: split name -> (``X_s`` ``[m, d]``, ``y_s`` ``[m]``) to label by nearest hull and by 1-NN;
        ``y_s`` holds ids into ``labels`` (-1 = a label outside the vocabulary) or label names (names outside
        ``labels`` count as errors).
    min_cluster_size, undefined: the §6.7 options (strict: 1, ``"nan"``; reference: 6, ``"zero"``).
    search, duplicate_policy, rtol, backend, device: passed to the DirectProbe engine (by default the hull
        solver runs on CUDA when present, else the compiled CPU solver).
    For the random-label control pass ``permute_labels(y, seed)`` and a key with ``control="random"``.
    """
    from tuneprobe.directprobe.hulls import DEFAULT_RTOL
    from tuneprobe.directprobe.measure import measure, predict_split
    from tuneprobe.directprobe.metrics import label_centroids

    labels = [str(v) for v in labels]
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct names")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty [n, d] matrix, got {X.shape}")
    ids = _label_ids(y, labels, "y", unseen_ok=False)
    if ids.shape != (X.shape[0],):
        raise ValueError(f"y must be [{X.shape[0]}], got {ids.shape}")
    tol = DEFAULT_RTOL if rtol is None else rtol
    m = measure(
        X,
        ids,
        labels,
        min_cluster_size=min_cluster_size,
        undefined=undefined,
        search=search,
        duplicate_policy=duplicate_policy,
        rtol=tol,
        backend=backend,
        device=device,
        progress=progress,
    )
    stats = m.statistics
    predictions: dict[str, dict[str, float]] = {}
    seconds_predict = 0.0
    for split, (Xs, ys) in (predict or {}).items():
        yid = _label_ids(ys, labels, f"predict[{split!r}]", unseen_ok=True)
        sp = predict_split(m, Xs, yid, rtol=tol, backend=backend, device=device, progress=progress)
        predictions[str(split)] = {"intra_accuracy": sp.intra_accuracy, "nn_accuracy": sp.nn_accuracy}
        seconds_predict += sp.seconds
    return DirectProbeCell(
        key=key,
        labels=labels,
        n_points=int(X.shape[0]),
        n_clusters=int(m.clustering.n_clusters),
        is_linear=bool(m.clustering.is_linear),
        clusters=m.clustering.assignment,
        label_distance=stats.distances.mean,
        label_distance_min=stats.distances.min,
        outside_min=stats.distances.outside_min,
        inside_mean=stats.inside_mean,
        inside_max=stats.inside_max,
        n_points_label=stats.n_points,
        n_clusters_label=stats.n_clusters,
        centroids=label_centroids(m.X, ids, len(labels)),
        effective_dimension=effective_dimension(m.X),
        predictions=predictions,
        seconds={
            "seconds_cluster": float(m.seconds_cluster),
            "seconds_distances": float(m.seconds_distances),
            "seconds_predict": float(seconds_predict),
        },
        dim=int(X.shape[1]),
        n_clusters_retained=stats.n_clusters_retained,
        min_cluster_size=int(min_cluster_size),
        undefined=str(undefined),
        affected_labels=list(stats.distances.affected_labels),
    )
