"""Nearest-hull prediction (intra-accuracy) and the 1-NN baseline (PAPER.md §6.5).

A test point gets the label of the cluster whose convex hull is nearest (point-to-hull distance, 0 inside a
hull).

Ties. Distances come from a solver with relative tolerance ``rtol`` (every reported distance ``d`` satisfies
``D <= d <= D / (1 - rtol)`` for the true ``D``), so clusters whose reported distances lie within
``window(d_min) = d_min * rtol / (1 - rtol) + atol`` of the smallest one cannot be told apart and count as
tied. Ties are broken by the distance from the point to the cluster centroid, then by the smaller label id,
then by the smaller cluster id. The reference instead takes ``argsort`` order.

Speed. Only clusters that can be nearest are solved: with ``u`` = the distance to the nearest training point
of any cluster (an upper bound on the nearest hull distance) and two lower bounds, the ball bound
``d(p, C) >= ||p - centroid(C)|| - radius(C)`` and the slab width of the hyperplane with normal
``p - centroid(C)`` (``(<p, w> - max_i <c_i, w>) / ||w||``), a cluster whose bound exceeds
``u / (1 - rtol) + window`` cannot be in the tie set and is skipped (exact: the result equals solving every
pair). Both bounds come from the same matrix products as the 1-NN distances.
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


def _bounds_by_cluster(
    P: np.ndarray, X: np.ndarray, assign: np.ndarray, cent: np.ndarray, block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Cheap bounds on the point-to-hull distances of the rows of ``P`` (``[m, d]``) to each cluster.

    X: ``[n, d]`` training rows with cluster ids ``assign`` ``[n]`` (every id in 0..K-1 used); cent: ``[K,
    d]``. Returns (upper ``[m, K]``: distance to the nearest member; lower ``[m, K]``: the slab width of the
    hyperplane with normal ``p - centroid`` that separates p from the cluster, 0 if it does not). One matrix
    product of each block of test points with all training rows (grouped by cluster); memory O(block x n).
    """
    m, K = P.shape[0], cent.shape[0]
    upper = np.full((m, K), np.inf)
    lower = np.zeros((m, K))
    if X.shape[0] == 0 or m == 0:
        return upper, lower
    order = np.argsort(assign, kind="stable")
    Xo = np.ascontiguousarray(X[order])
    ao = assign[order]
    starts = np.flatnonzero(np.r_[True, ao[1:] != ao[:-1]])
    ks = ao[starts]
    sp = np.einsum("nd,nd->n", P, P)
    sx = np.einsum("nd,nd->n", Xo, Xo)
    xmu = np.einsum("nd,nd->n", Xo, cent[ao])  # <x_i, mu_c(i)>
    pmu = P @ cent.T  # [m, K]
    cc = np.einsum("kd,kd->k", cent, cent)
    wn = np.sqrt(np.maximum(sp[:, None] - 2 * pmu + cc[None, :], 0.0))  # ||p - mu_c||
    for t0 in range(0, m, block):
        sl = slice(t0, t0 + block)
        S = P[sl] @ Xo.T  # [b, n]
        d2 = np.minimum.reduceat(sx[None, :] - 2.0 * S, starts, axis=1)  # min_i ||x_i||^2 - 2 <p, x_i>
        upper[sl, ks] = np.sqrt(np.maximum(d2 + sp[sl, None], 0.0))
        S -= xmu[None, :]
        top = np.maximum.reduceat(S, starts, axis=1)  # max_i <x_i, p - mu>
        with np.errstate(divide="ignore", invalid="ignore"):
            lb = (sp[sl, None] - pmu[sl][:, ks] - top) / wn[sl][:, ks]
        lower[sl, ks] = np.where(wn[sl][:, ks] > 0, np.maximum(lb, 0.0), 0.0)
    return upper, lower


def nearest_hull_predict(
    X_train: np.ndarray,
    clustering: Clustering,
    X_test: np.ndarray,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float | None = None,
    prune: bool = True,
    cluster_distances: np.ndarray | None = None,
    max_iter: int = 1000,
    backend: str = "auto",
    device: str | None = "auto",
    progress: ProgressFn | None = None,
) -> HullPrediction:
    """Label every row of ``X_test`` (``[m, d]``) with the label of its nearest cluster hull of ``X_train``
    (``[n, d]``, clustered by ``clustering``). See the module docstring for ties and pruning.

    cluster_distances: optional ``[K, K]`` hull-to-hull distances of the clusters (as from
    ``cluster_distance_matrix``; NaN entries are ignored). They give a further exact lower bound,
    ``d(p, C) >= D(C1, C) - d(p, C1)``, that skips more clusters.
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
        a_ = np.asarray(clustering.assignment, dtype=np.int64)
        upper, lower = _bounds_by_cluster(Xte_c, Xtr_c[valid], a_[valid], cent)
        # rounding margin on the expanded-product bounds
        lower = np.maximum(
            np.maximum(lower, cdist - radius[None, :]) - 1e-9 * max(float(cdist.max()), 1.0), 0.0
        )
        # stage 1: the cluster of the nearest training point, solved fully -> a reported distance d1 >= d_min
        first = upper.argmin(1)
        mask1 = np.zeros((m, K), dtype=bool)
        mask1[np.arange(m), first] = True
        common = {"rtol": rtol, "atol": atol, "max_iter": max_iter, "backend": backend, "device": device}
        res1 = point_hull_distance_details(
            X_test, X_train, clustering, clusters=mask1, progress=progress, **common
        )
        d1 = res1.distance[np.arange(m), first]
        if cluster_distances is not None:
            # triangle inequality through the closest point q of cluster first[t]: d(p, C) >= D(first, C) - d1
            Dcc = np.nan_to_num(np.asarray(cluster_distances, dtype=np.float64), nan=0.0)
            lower = np.maximum(lower, Dcc[first] * (1.0 - rtol) - d1[:, None] - atol)
        # stage 2: every other cluster whose lower bound does not exclude it, abandoned as soon as its
        # certified lower bound exceeds the best distance found for its point
        mask = (lower <= (d1 * (1.0 + slack) + atol)[:, None]) & ~mask1
        res = point_hull_distance_details(
            X_test,  # as given: float32 rows are scanned exactly by the kernel
            X_train,
            clustering,
            clusters=mask,
            progress=progress,
            nearest_only=True,
            nearest_upper=d1,
            **common,
        )
        for name in ("distance", "lower", "gap", "converged", "overlap", "iterations"):
            getattr(res, name)[mask1] = getattr(res1, name)[mask1]
        mask |= mask1
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
