"""Statistics from a clustering and its cluster distance matrix (PAPER.md §6.6, §6.7).

Labels are label ids ``0..n-1`` (the order of ``Clustering.label_names``, i.e. sorted names). Every function
takes the two explicit options of §6.7:

- ``min_cluster_size`` (default 1 = keep every cluster). Clusters with fewer points are dropped before any
  distance or inside statistic is computed. The reference profile (utahnlp/BERT-fine-tuning-analysis) uses 6,
  i.e. it drops clusters of <= 5 points. The affected labels (labels that lost at least one cluster) are
  always listed.
- ``undefined``: ``"nan"`` (strict default) leaves undefined entries (a label without retained clusters, a
  pair of labels without any computed cluster pair, an inside statistic of a label whose retained clusters are
  all singletons) as NaN; NaNs are excluded from Pearson correlations and averages, and the number of pairs
  used is reported. ``"zero"`` reproduces the reference, which turns those ``inf`` values into 0 ("no cluster"
  then looks like "touching").

Rows whose ``Clustering.assignment`` is negative (points dropped by the clustering) are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tuneprobe.directprobe.clustering import Clustering

__all__ = [
    "LabelDistances",
    "LabelStatistics",
    "Similarity",
    "PROFILES",
    "label_distances",
    "distance_vector",
    "outside_min",
    "inside_statistics",
    "label_statistics",
    "label_centroids",
    "pearson_similarity",
    "spatial_similarity",
    "retained_clusters",
]

Undefined = Literal["nan", "zero"]

#: option values of the two profiles of PAPER.md §6.7
PROFILES: dict[str, dict[str, object]] = {
    "strict": {"min_cluster_size": 1, "undefined": "nan"},
    "reference": {"min_cluster_size": 6, "undefined": "zero"},
}


def _check_undefined(undefined: str) -> None:
    if undefined not in ("nan", "zero"):
        raise ValueError(f"undefined must be 'nan' or 'zero', got {undefined!r}")


def _n_labels(clustering: Clustering) -> int:
    n = int(clustering.n_labels)
    if clustering.label_names is not None:
        n = max(n, len(clustering.label_names))
    if clustering.cluster_labels.size:
        n = max(n, int(np.max(clustering.cluster_labels)) + 1)
    return n


def _label_names(clustering: Clustering) -> list[str]:
    n = _n_labels(clustering)
    names = list(clustering.label_names) if clustering.label_names is not None else []
    return names + [str(i) for i in range(len(names), n)]


def retained_clusters(clustering: Clustering, min_cluster_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Clusters kept under ``min_cluster_size``.

    Returns (keep bool ``[K]``, sizes int64 ``[K]``).
    """
    if min_cluster_size < 1:
        raise ValueError(f"min_cluster_size must be >= 1, got {min_cluster_size}")
    a = np.asarray(clustering.assignment, dtype=np.int64)
    sizes = np.bincount(a[a >= 0], minlength=clustering.n_clusters)[: clustering.n_clusters]
    return sizes >= min_cluster_size, sizes


@dataclass
class LabelDistances:
    """Label-pair hull distances.

    labels: names of label ids 0..n-1.
    mean: float64 ``[n, n]`` D_lab(i, j) = mean of D(c, c') over retained clusters c of i and c' of j
    (diagonal 0). min: float64 ``[n, n]`` the minimum over the same cluster pairs.
    n_pairs: int64 ``[n, n]`` cluster pairs that entered each entry.
    vector: float64 ``[n(n-1)/2]`` the mean entries for i < j, row-major over sorted label ids.
    outside_min: float64 ``[n]`` min over j != i of ``mean[i, j]``.
    dropped_clusters: int64 ids of the clusters removed by ``min_cluster_size``.
    affected_labels: names of the labels that lost at least one cluster.
    min_cluster_size, undefined: the options used.
    """

    labels: list[str]
    mean: np.ndarray
    min: np.ndarray
    n_pairs: np.ndarray
    vector: np.ndarray
    outside_min: np.ndarray
    dropped_clusters: np.ndarray
    affected_labels: list[str]
    min_cluster_size: int
    undefined: str

    @property
    def n_labels(self) -> int:
        return len(self.labels)


def label_distances(
    clustering: Clustering,
    cluster_distances: np.ndarray,
    *,
    min_cluster_size: int = 1,
    undefined: Undefined = "nan",
) -> LabelDistances:
    """Aggregate a ``[K, K]`` cluster distance matrix into label-pair distances (mean and min over cluster
    pairs).

    NaN entries of ``cluster_distances`` (pairs not computed) are skipped; an entry with no cluster pair left
    is undefined (NaN, or 0 with ``undefined="zero"``).
    """
    _check_undefined(undefined)
    D = np.asarray(cluster_distances, dtype=np.float64)
    K = clustering.n_clusters
    if D.shape != (K, K):
        raise ValueError(f"cluster_distances must be [{K}, {K}], got {D.shape}")
    names = _label_names(clustering)
    n = len(names)
    keep, _ = retained_clusters(clustering, min_cluster_size)
    lab = np.asarray(clustering.cluster_labels, dtype=np.int64)
    # one-hot of retained clusters [K, n]; sums over cluster pairs via matrix products (NaN pairs masked)
    H = np.zeros((K, n))
    H[np.flatnonzero(keep), lab[keep]] = 1.0
    valid = np.isfinite(D)
    Dz = np.where(valid, D, 0.0)
    V = valid.astype(np.float64)
    total = H.T @ Dz @ H
    count = H.T @ V @ H
    mn = np.full((n, n), np.inf)
    ci, cj = np.nonzero(valid & keep[:, None] & keep[None, :] & (lab[:, None] != lab[None, :]))
    np.minimum.at(mn, (lab[ci], lab[cj]), D[ci, cj])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    mn = np.where(count > 0, mn, np.nan)
    np.fill_diagonal(mean, 0.0)
    np.fill_diagonal(mn, 0.0)
    n_pairs = np.rint(count).astype(np.int64)
    np.fill_diagonal(n_pairs, 0)
    om = outside_min(mean)
    if undefined == "zero":
        mean = np.nan_to_num(mean, nan=0.0)
        mn = np.nan_to_num(mn, nan=0.0)
        om = np.nan_to_num(om, nan=0.0)
    dropped = np.flatnonzero(~keep)
    affected = sorted({int(lab[c]) for c in dropped})
    return LabelDistances(
        labels=names,
        mean=mean,
        min=mn,
        n_pairs=n_pairs,
        vector=distance_vector(mean),
        outside_min=om,
        dropped_clusters=dropped.astype(np.int64),
        affected_labels=[names[i] for i in affected],
        min_cluster_size=int(min_cluster_size),
        undefined=undefined,
    )


def distance_vector(M: np.ndarray) -> np.ndarray:
    """The ``n(n-1)/2`` entries ``M[i, j]`` for ``i < j``, row-major (``M`` is ``[n, n]``)."""
    M = np.asarray(M)
    i, j = np.triu_indices(M.shape[0], 1)
    return np.asarray(M[i, j], dtype=np.float64)


def outside_min(M: np.ndarray) -> np.ndarray:
    """``[n]``: min over ``j != i`` of ``M[i, j]`` ignoring NaN; NaN when row i has no finite off-diagonal
    entry."""
    M = np.array(M, dtype=np.float64, copy=True)
    n = M.shape[0]
    if n == 0:
        return np.zeros(0)
    np.fill_diagonal(M, np.nan)
    M = np.where(np.isfinite(M), M, np.inf)
    out = M.min(1) if n > 1 else np.full(1, np.inf)
    return np.where(np.isfinite(out), out, np.nan)


def _pairwise_stats(Xc: np.ndarray, block: int) -> tuple[float, float, int]:
    """Sum and max of the Euclidean distances over the unordered pairs of rows of ``Xc`` ``[m, d]``,
    blockwise.

    Memory O(block^2); only blocks on or above the diagonal are computed. Returns (sum, max, number of pairs).
    """
    m = Xc.shape[0]
    sq = np.einsum("nd,nd->n", Xc, Xc)
    total = 0.0
    mx = 0.0
    for i0 in range(0, m, block):
        Xi = Xc[i0 : i0 + block]
        si = sq[i0 : i0 + block]
        for j0 in range(i0, m, block):
            Xj = Xc[j0 : j0 + block]
            d2 = si[:, None] + sq[None, j0 : j0 + block] - 2.0 * (Xi @ Xj.T)
            np.maximum(d2, 0.0, out=d2)
            dist = np.sqrt(d2, out=d2)
            if j0 == i0:
                iu = np.triu_indices(dist.shape[0], 1)
                vals = dist[iu]
                if vals.size:
                    total += float(vals.sum())
                    mx = max(mx, float(vals.max()))
            else:
                total += float(dist.sum())
                mx = max(mx, float(dist.max()))
    return total, mx, m * (m - 1) // 2


def inside_statistics(
    X: np.ndarray,
    clustering: Clustering,
    *,
    min_cluster_size: int = 1,
    undefined: Undefined = "nan",
    block: int = 2048,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-label ``inside_mean`` and ``inside_max`` (PAPER.md §6.6) and the per-cluster values they come from.

    X: ``[N, d]`` the clustered points. Pairwise distances are computed in float64 blockwise (``block`` rows
    at a time, never an N x N matrix); the mean is exact.
    Returns (inside_mean ``[n]``, inside_max ``[n]``, cluster_mean ``[K]``, cluster_max ``[K]``); a cluster
    with one point (or dropped by ``min_cluster_size``) has NaN cluster values.
    """
    _check_undefined(undefined)
    X = np.asarray(X)
    a = np.asarray(clustering.assignment, dtype=np.int64)
    if X.ndim != 2 or X.shape[0] != a.shape[0]:
        raise ValueError(f"X must be [{a.shape[0]}, d], got {X.shape}")
    K = clustering.n_clusters
    n = _n_labels(clustering)
    keep, sizes = retained_clusters(clustering, min_cluster_size)
    lab = np.asarray(clustering.cluster_labels, dtype=np.int64)
    c_mean = np.full(K, np.nan)
    c_max = np.full(K, np.nan)
    order = np.argsort(a, kind="stable")
    a_sorted = a[order]
    starts = np.searchsorted(a_sorted, np.arange(K))
    for c in range(K):
        if not keep[c] or sizes[c] < 2:
            continue
        rows = order[starts[c] : starts[c] + sizes[c]]
        Xc = np.asarray(X[rows], dtype=np.float64)
        Xc = Xc - Xc.mean(0)
        s, mx, npairs = _pairwise_stats(Xc, block)
        c_mean[c] = s / npairs
        c_max[c] = mx
    in_mean = np.full(n, np.nan)
    in_max = np.full(n, np.nan)
    for i in range(n):
        cs = np.flatnonzero((lab == i) & np.isfinite(c_mean))
        if cs.size:
            in_mean[i] = float(c_mean[cs].mean())
            in_max[i] = float(c_max[cs].max())
    if undefined == "zero":
        in_mean = np.nan_to_num(in_mean, nan=0.0)
        in_max = np.nan_to_num(in_max, nan=0.0)
    return in_mean, in_max, c_mean, c_max


def label_centroids(X: np.ndarray, y: np.ndarray, n_labels: int | None = None) -> np.ndarray:
    """float64 ``[n_labels, d]`` mean of each label's points (NaN rows for labels without points)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n = int(n_labels) if n_labels is not None else int(y.max()) + 1 if y.size else 0
    sums = np.zeros((n, X.shape[1]))
    np.add.at(sums, y, X)
    cnt = np.bincount(y, minlength=n)[:n].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / cnt[:, None]


@dataclass
class Similarity:
    """Pearson correlation of two distance vectors aligned pair by pair.

    r: the correlation (NaN when fewer than 2 pairs are usable or a vector is constant).
    n_pairs: pairs used (both entries finite). n_total: pairs offered. labels: the aligned labels, when
    aligned by name.
    """

    r: float
    n_pairs: int
    n_total: int
    labels: list[str] = field(default_factory=list)


def pearson_similarity(v1: np.ndarray, v2: np.ndarray) -> Similarity:
    """Pearson correlation of ``v1`` and ``v2`` (``[m]`` each, aligned entry by entry), NaN/Inf pairs
    excluded."""
    a = np.asarray(v1, dtype=np.float64).ravel()
    b = np.asarray(v2, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"distance vectors differ in length ({a.shape[0]} vs {b.shape[0]})")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    r = math.nan
    if n >= 2:
        da, db = a - a.mean(), b - b.mean()
        den = math.sqrt(float(da @ da) * float(db @ db))
        if den > 0:
            r = float(np.clip(float(da @ db) / den, -1.0, 1.0))
    return Similarity(r=r, n_pairs=n, n_total=int(ok.size))


def spatial_similarity(d1: LabelDistances, d2: LabelDistances) -> Similarity:
    """Pearson similarity of two label distance matrices over the labels they share (by name).

    Only labels present in both (and, in strict mode, with finite entries) are used; the vectors are built
    over the shared labels in sorted-name order, so entries correspond pair by pair.
    """
    common = sorted(set(d1.labels) & set(d2.labels))
    i1 = np.array([d1.labels.index(n) for n in common], dtype=np.int64)
    i2 = np.array([d2.labels.index(n) for n in common], dtype=np.int64)
    v1 = distance_vector(d1.mean[np.ix_(i1, i1)]) if common else np.zeros(0)
    v2 = distance_vector(d2.mean[np.ix_(i2, i2)]) if common else np.zeros(0)
    sim = pearson_similarity(v1, v2)
    sim.labels = common
    return sim


@dataclass
class LabelStatistics:
    """Everything per label that ``tuneprobe directprobe`` reports.

    distances: the :class:`LabelDistances`.
    n_points, n_clusters: int64 ``[n]`` points and clusters per label (all clusters, before
    ``min_cluster_size``). n_clusters_retained: int64 ``[n]``.
    inside_mean, inside_max: float64 ``[n]``.
    summary: global values: ``min_outside_min``, ``mean_inside_max_over_outside_min``,
        ``mean_inside_mean_over_outside_min`` (NaN-aware means; the number of labels used is included).
    """

    distances: LabelDistances
    n_points: np.ndarray
    n_clusters: np.ndarray
    n_clusters_retained: np.ndarray
    inside_mean: np.ndarray
    inside_max: np.ndarray
    summary: dict[str, float | int | None]


def _nanmean_ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, int]:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    ok = np.isfinite(r)
    return (float(r[ok].mean()) if ok.any() else math.nan), int(ok.sum())


def label_statistics(
    X: np.ndarray,
    clustering: Clustering,
    cluster_distances: np.ndarray,
    *,
    min_cluster_size: int = 1,
    undefined: Undefined = "nan",
    block: int = 2048,
) -> LabelStatistics:
    """Label distances, inside statistics and counts in one call (see the module docstring for the
    options)."""
    dist = label_distances(
        clustering, cluster_distances, min_cluster_size=min_cluster_size, undefined=undefined
    )
    in_mean, in_max, _, _ = inside_statistics(
        X, clustering, min_cluster_size=min_cluster_size, undefined=undefined, block=block
    )
    n = dist.n_labels
    a = np.asarray(clustering.assignment, dtype=np.int64)
    lab = np.asarray(clustering.cluster_labels, dtype=np.int64)
    keep, sizes = retained_clusters(clustering, min_cluster_size)
    n_points = (
        np.bincount(lab[a[a >= 0]], minlength=n)[:n].astype(np.int64) if a.size else np.zeros(n, np.int64)
    )
    n_clusters = np.bincount(lab, minlength=n)[:n].astype(np.int64)
    n_ret = np.bincount(lab[keep], minlength=n)[:n].astype(np.int64)
    om = dist.outside_min
    finite_om = om[np.isfinite(om)]
    r_max, n_max = _nanmean_ratio(in_max, om)
    r_mean, n_mean = _nanmean_ratio(in_mean, om)
    summary: dict[str, float | int | None] = {
        "min_outside_min": float(finite_om.min()) if finite_om.size else math.nan,
        "mean_inside_max_over_outside_min": r_max,
        "n_labels_inside_max_over_outside_min": n_max,
        "mean_inside_mean_over_outside_min": r_mean,
        "n_labels_inside_mean_over_outside_min": n_mean,
        "n_label_pairs": int(dist.vector.size),
        "n_label_pairs_defined": int(np.isfinite(dist.vector).sum())
        if undefined == "nan"
        else int((distance_vector(dist.n_pairs) > 0).sum()),
    }
    return LabelStatistics(dist, n_points, n_clusters, n_ret, in_mean, in_max, summary)
