"""Hull geometry: hull-to-hull and point-to-hull distances, exact up to a certified tolerance, batched.

Definitions (PAPER.md §6.5)
- Hull-to-hull distance ``D(A, B) = min ||a - b||`` over ``a in conv(A)``, ``b in conv(B)``; 0 when the hulls
  meet. It equals the slab width of the hard-margin linear SVM between A and B (``2 / ||w*|| = 2 x margin``).
- Point-to-hull distance ``d(p, C) = D({p}, C)``; 0 when ``p in conv(C)``.

Algorithm
``D(A, B)`` is the norm of the minimum-norm point of the Minkowski difference ``conv(A) - conv(B)``:

    min_{alpha, beta} ||A^T alpha - B^T beta||^2   over   alpha in simplex(n_A), beta in simplex(n_B).

We solve it with Wolfe's active-set minimum-norm-point method, adapted to the product of two simplices: a
small *corral* of active points (some of A, some of B) with positive weights is kept. A **major** step scores
every point of A and B against the current ``x = A^T alpha - B^T beta`` and adds the most violating points (up
to ``add_per_side`` per side, skipping points affinely dependent on the corral). **Minor** steps solve the
equality-constrained problem on the corral exactly (one sum-to-one row per side) from a Cholesky factor of the
corral's augmented Gram matrix that is updated in O(m^2) per added or dropped point, and, when some weights
come out non-positive, step back to the boundary and drop the points that reach weight 0 (Wolfe 1976). The
solver is compiled with numba (``_hull_kernel.py``, ``cache=True``); batches of pairs run in threads.

Stopping bound (certificate)
For the current ``x`` (attained by the two certificate points ``a = A^T alpha`` and ``b = B^T beta``) let

    m(x) = min_i <a_i, x> - max_j <b_j, x>       (a scan over all points, done in every major step)

The hyperplane with normal ``x`` separates A and B with slab width ``m(x) / ||x||``. Every point of the
difference set lies in ``{z : <z, x> >= m(x)}``, so ``D >= LB := max(0, m(x) / ||x||)``; trivially
``D <= UB := ||x||``. With the Frank-Wolfe duality gap ``g = ||x||^2 - m(x)`` (for f = 1/2 ||x||^2; it bounds
``||x||^2 - D^2``) we have ``UB - LB = g / ||x||`` exactly, so the stopping rule ``g <= rtol * ||x||^2`` means

    D in [(1 - rtol) * UB, UB],  i.e. the reported distance UB is within a factor 1 / (1 - rtol) of the truth,

and ``LB`` comes with a separating hyperplane (normal ``x``). Overlap is declared when ``||x|| <= atol`` (the
certificate points are within ``atol`` of each other); the distance is then reported as 0. ``atol`` defaults
to ``1e-9 x`` the data scale (the largest distance of a point from the data mean). A pair that hits
``max_iter`` major steps (or whose corral can make no further progress in floating point) is reported with its
``UB`` and ``converged = False``; its ``lower`` bound is still valid.

Everything is computed in float64 on data centred at the global mean (distances are translation invariant).
The data are never scaled or standardised. (With float32 input, the scans read the exact float32 values
uncentred; the common shift cancels in ``m(x)``.)

Torch / GPU path. ``backend="torch"`` (or ``backend="auto"``, the default, when a CUDA device is present) runs
the batched torch solver of ``hulls_torch.py`` (the same Wolfe method and certificate, every pair of a chunk
in one batched step; float64); the pairs it leaves uncertified are re-solved here by the compiled solver, so
results carry the same guarantee on either path.

Performance notes. Each pair is solved independently by the compiled kernel (no padding, no chunking);
batches of pairs are split between threads (the kernel releases the GIL); results do not depend on the
split. The first call in a fresh environment compiles the kernel (about 15-20 s of CPU, once; cached on disk
afterwards, ~0.5 s to load). Point-to-hull batches with several clusters per point use Gram mode (the
clusters' Gram blocks and the points' inner products with the training rows are computed once with BLAS, so
a scan costs O(n_c x corral) instead of O(n_c x d)). ``nearest_only`` (point-to-hull) solves the pairs of one
point one after the other, most promising first, and abandons a pair as soon as its certified lower bound
shows it cannot be the nearest hull of its point.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tuneprobe.directprobe.clustering import Clustering

__all__ = [
    "HullDistance",
    "PairDistances",
    "hull_distance",
    "point_hull_distance",
    "cluster_distances",
    "cluster_distance_matrix",
    "point_hull_distances",
    "point_hull_distance_details",
]

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL_FACTOR = 1e-9

ProgressFn = Callable[[int, int], None]


# ----------------------------------------------------------------------------------------------------------
# result types
# ----------------------------------------------------------------------------------------------------------


@dataclass
class HullDistance:
    """Distance between two hulls (or a point and a hull) with its certificate.

    distance: ``||a - b||`` (an upper bound on D, attained by the certificate points); 0 when ``overlap``.
    lower: certified lower bound ``max(0, m(x) / ||x||)`` (slab width of the separating hyperplane with normal
    a - b). a, b: float64 ``[d]``, the closest points found, ``a = alpha @ A`` and ``b = beta @ B``.
    alpha: float64 ``[n_A]`` simplex weights of A (sparse: only the corral is non-zero); beta likewise
    ``[n_B]``. gap: Frank-Wolfe duality gap ``||x||^2 - m(x)`` at the end (``= (distance - lower) *
    distance``). converged: True when ``gap <= rtol * distance^2`` or the overlap test fired.
    overlap: True when the hulls meet (within ``atol``).
    iterations: major steps taken.
    """

    distance: float
    lower: float
    a: np.ndarray
    b: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gap: float
    converged: bool
    overlap: bool
    iterations: int


@dataclass
class PairDistances:
    """Batched results. Every array has the same shape S (``[K, K]`` for cluster pairs, ``[m, K]`` for
    points).

    distance: float64 S, the reported distance (0 for overlaps, NaN where not computed).
    lower: float64 S, certified lower bounds (NaN where not computed).
    gap: float64 S, final duality gaps (NaN where not computed).
    converged: bool S (True where not computed).
    overlap: bool S.
    iterations: int64 S (0 where not computed).
    rtol, atol: the tolerances used.
    """

    distance: np.ndarray
    lower: np.ndarray
    gap: np.ndarray
    converged: np.ndarray
    overlap: np.ndarray
    iterations: np.ndarray
    rtol: float
    atol: float

    @property
    def n_unconverged(self) -> int:
        return int((~self.converged).sum())


# ----------------------------------------------------------------------------------------------------------
# the solver (compiled kernel in _hull_kernel)
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _SolveResult:
    """Per-pair results of ``_run_pairs`` (arrays ``[P]``) and, if requested, the corral of every pair
    (``corral_rows`` global row ids, ``corral_signs`` +1 side A / -1 side B, ``corral_weights``)."""

    distance: np.ndarray
    lower: np.ndarray
    gap: np.ndarray
    converged: np.ndarray
    overlap: np.ndarray
    iterations: np.ndarray
    corral_rows: list[np.ndarray] | None = None
    corral_signs: list[np.ndarray] | None = None
    corral_weights: list[np.ndarray] | None = None


# ----------------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------------


def _as_points(a: np.ndarray, name: str, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-d, got shape {arr.shape}")
    if ndim == 2 and arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def _raw32(*arrays: object) -> np.ndarray | None:
    """The rows of ``arrays`` stacked as float32 ``[n, d]`` when every one is a float32 array (exact values
    for the kernel's scans), else None."""
    if not all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays):
        return None
    return np.concatenate([np.atleast_2d(a) for a in arrays])  # type: ignore[arg-type]


def _default_atol(Xc: np.ndarray, atol: float | None) -> float:
    if atol is not None:
        return float(atol)
    scale = float(np.sqrt(np.einsum("nd,nd->n", Xc, Xc).max())) if Xc.size else 0.0
    return DEFAULT_ATOL_FACTOR * max(scale, 1e-300)


def hull_distance(
    A: np.ndarray,
    B: np.ndarray,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float | None = None,
    max_iter: int = 1000,
    add_per_side: int = 4,
) -> HullDistance:
    """Distance between ``conv(A)`` (``[n_A, d]``) and ``conv(B)`` (``[n_B, d]``) with its certificate.

    See the module docstring for the algorithm and the meaning of ``rtol``/``atol``.
    """
    A_in, B_in = A, B
    A = _as_points(A, "A")
    B = _as_points(B, "B")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A and B have different dimensions ({A.shape[1]} vs {B.shape[1]})")
    mu = np.concatenate([A, B]).mean(0)
    Xc = np.concatenate([A, B]) - mu
    tol = _default_atol(Xc, atol)
    x0 = (Xc[: A.shape[0]].mean(0) - Xc[A.shape[0] :].mean(0))[None]
    raw = _raw32(A_in, B_in)
    res = _run_pairs(
        Xc,
        np.array([0, A.shape[0]]),
        np.array([A.shape[0], B.shape[0]]),
        np.array([0]),
        np.array([1]),
        x0,
        rtol=rtol,
        atol=tol,
        max_iter=max_iter,
        add_per_side=add_per_side,
        chunk_pairs=None,
        backend="numpy",
        device=None,
        progress=None,
        keep_corral=True,
        raw32=raw,
    )
    assert res.corral_rows is not None and res.corral_signs is not None and res.corral_weights is not None
    rows, signs, wts = res.corral_rows[0], res.corral_signs[0], res.corral_weights[0]
    alpha = np.zeros(A.shape[0])
    beta = np.zeros(B.shape[0])
    np.add.at(alpha, rows[signs > 0], wts[signs > 0])
    np.add.at(beta, rows[signs < 0] - A.shape[0], wts[signs < 0])
    return HullDistance(
        distance=float(res.distance[0]),
        lower=float(res.lower[0]),
        a=alpha @ A,
        b=beta @ B,
        alpha=alpha,
        beta=beta,
        gap=float(res.gap[0]),
        converged=bool(res.converged[0]),
        overlap=bool(res.overlap[0]),
        iterations=int(res.iterations[0]),
    )


def point_hull_distance(p: np.ndarray, C: np.ndarray, **kwargs: object) -> HullDistance:
    """Distance from point ``p`` (``[d]``) to ``conv(C)`` (``[n, d]``); 0 when p lies in the hull.

    The certificate's ``a``/``alpha`` describe the closest point of the hull, ``b`` is ``p`` (``beta ==
    [1.0]``). Keyword arguments as for :func:`hull_distance`.
    """
    p = _as_points(p, "p", ndim=1)
    res = hull_distance(C, p[None, :], **kwargs)  # type: ignore[arg-type]
    return res


def _sorted_blocks(
    X: np.ndarray, clustering: Clustering
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of X grouped by cluster (rows with a negative cluster id are left out).

    Returns (order ``[n_kept]`` row ids sorted by cluster, starts ``[K]``, sizes ``[K]``, mean of the kept
    rows ``[d]``).
    """
    assign = np.asarray(clustering.assignment, dtype=np.int64)
    if assign.shape[0] != X.shape[0]:
        raise ValueError(f"clustering has {assign.shape[0]} rows but X has {X.shape[0]}")
    K = clustering.n_clusters
    kept = np.flatnonzero(assign >= 0)
    sizes = np.bincount(assign[kept], minlength=K)
    if sizes.shape[0] != K or (sizes == 0).any():
        raise ValueError("clustering.assignment must use every cluster id 0..K-1")
    order = kept[np.argsort(assign[kept], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    mean = X[kept].mean(0) if kept.size else np.zeros(X.shape[1])
    return order, starts, sizes, mean


def _pair_progress(progress: ProgressFn | None, offset: int, total: int) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda done, _n: progress(offset + done, total)


def cluster_distances(
    X: np.ndarray,
    clustering: Clustering,
    *,
    same_label: bool = False,
    rtol: float = DEFAULT_RTOL,
    atol: float | None = None,
    max_iter: int = 1000,
    add_per_side: int = 4,
    chunk_pairs: int | None = None,
    backend: str = "auto",
    device: str | None = "auto",
    progress: ProgressFn | None = None,
) -> PairDistances:
    """Hull-to-hull distances between clusters, with certificates' bounds and convergence flags.

    X: ``[n, d]`` the points the clustering was fitted on (any float dtype; computed in float64).
    Computes every pair of clusters with different labels (and same-label pairs when ``same_label``).
    Returns :class:`PairDistances` with ``[K, K]`` symmetric arrays; the diagonal is 0 and pairs not computed
    are NaN. ``chunk_pairs`` is accepted for compatibility and ignored (the compiled solver needs no chunks).
    backend, device: which solver runs (:func:`resolve_backend`): by default the compiled CPU solver, or the
    batched torch solver (``hulls_torch``) when a CUDA device is present; ``backend="torch", device="cpu"``
    forces torch on the CPU.
    """
    Xf = _as_points(X, "X")
    order, starts, sizes, mu = _sorted_blocks(Xf, clustering)
    Xs = Xf[order] - mu
    labels = np.asarray(clustering.cluster_labels, dtype=np.int64)
    K = labels.shape[0]
    iu, ju = np.triu_indices(K, 1)
    keep = np.ones(iu.shape[0], dtype=bool) if same_label else labels[iu] != labels[ju]
    iu, ju = iu[keep], ju[keep]
    tol = _default_atol(Xs, atol)
    cent = np.add.reduceat(Xs, starts, axis=0) / sizes[:, None] if K else np.zeros((0, Xs.shape[1]))
    raw = _raw32(X)
    res = _run_pairs(
        Xs,
        starts,
        sizes,
        iu,
        ju,
        cent[iu] - cent[ju],
        rtol=rtol,
        atol=tol,
        max_iter=max_iter,
        add_per_side=add_per_side,
        chunk_pairs=chunk_pairs,
        backend=backend,
        device=device,
        progress=progress,
        raw32=None if raw is None else raw[order],
    )
    out = PairDistances(
        distance=np.full((K, K), np.nan),
        lower=np.full((K, K), np.nan),
        gap=np.full((K, K), np.nan),
        converged=np.ones((K, K), dtype=bool),
        overlap=np.zeros((K, K), dtype=bool),
        iterations=np.zeros((K, K), dtype=np.int64),
        rtol=rtol,
        atol=tol,
    )
    for name in ("distance", "lower", "gap", "converged", "overlap", "iterations"):
        arr = getattr(out, name)
        val = getattr(res, name)
        arr[iu, ju] = val
        arr[ju, iu] = val
    np.fill_diagonal(out.distance, 0.0)
    np.fill_diagonal(out.lower, 0.0)
    np.fill_diagonal(out.gap, 0.0)
    return out


def cluster_distance_matrix(X: np.ndarray, clustering: Clustering, **kwargs: object) -> np.ndarray:
    """float64 ``[K, K]`` hull-to-hull distances between clusters (see :func:`cluster_distances`).

    Different-label pairs are always computed; same-label pairs only with ``same_label=True`` (NaN otherwise).
    """
    return cluster_distances(X, clustering, **kwargs).distance  # type: ignore[arg-type]


def point_hull_distance_details(
    P: np.ndarray,
    X: np.ndarray,
    clustering: Clustering,
    *,
    clusters: np.ndarray | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float | None = None,
    max_iter: int = 1000,
    add_per_side: int = 4,
    chunk_pairs: int | None = None,
    backend: str = "auto",
    device: str | None = "auto",
    progress: ProgressFn | None = None,
    nearest_only: bool = False,
    nearest_upper: np.ndarray | None = None,
) -> PairDistances:
    """Point-to-hull distances of test points ``P`` (``[m, d]``) to the clusters of ``X`` (``[n, d]``).

    clusters: optional bool ``[m, K]`` mask of the (point, cluster) pairs to compute (default: all); the
    others are NaN. Returns :class:`PairDistances` with ``[m, K]`` arrays.
    nearest_only: only the nearest hull of each point (and those tied with it within the tolerance) matters: a
    pair is abandoned (NaN) as soon as its certified lower bound exceeds the best distance found for its
    point.
    nearest_upper: optional float64 ``[m]`` upper bounds on each point's nearest reported distance (e.g. the
    distance to the nearest training point divided by ``1 - rtol``), to abandon pairs earlier.
    backend, device: as for :func:`cluster_distances` (the torch solver solves every pair fully: no
    abandoning under ``nearest_only``).
    """
    Xf = _as_points(X, "X")
    Pf = _as_points(P, "P") if np.asarray(P).shape[0] else np.zeros((0, Xf.shape[1]))
    if Pf.shape[1] != Xf.shape[1]:
        raise ValueError(f"P has dimension {Pf.shape[1]} but X has {Xf.shape[1]}")
    order, starts, sizes, mu = _sorted_blocks(Xf, clustering)
    K = sizes.shape[0]
    m = Pf.shape[0]
    Xs = np.concatenate([Xf[order], Pf]) - mu
    n = order.shape[0]
    starts_all = np.concatenate([starts, n + np.arange(m)])
    sizes_all = np.concatenate([sizes, np.ones(m, dtype=np.int64)])
    mask = np.ones((m, K), dtype=bool) if clusters is None else np.asarray(clusters, dtype=bool)
    if mask.shape != (m, K):
        raise ValueError(f"clusters mask must have shape {(m, K)}, got {mask.shape}")
    ti, ci = np.nonzero(mask)
    tol = _default_atol(Xs, atol)
    cent = np.add.reduceat(Xs[:n], starts, axis=0) / sizes[:, None] if K else np.zeros((0, Xs.shape[1]))
    raw = _raw32(X, P) if m else None
    res = _run_pairs(
        Xs,
        starts_all,
        sizes_all,
        ci,
        K + ti,
        cent[ci] - Xs[n + ti],
        rtol=rtol,
        atol=tol,
        max_iter=max_iter,
        add_per_side=add_per_side,
        chunk_pairs=chunk_pairs,
        backend=backend,
        device=device,
        progress=progress,
        groups=ti if nearest_only else None,
        group_ub=None
        if not nearest_only
        else (np.full(m, np.inf) if nearest_upper is None else np.array(nearest_upper, dtype=np.float64)),
        point_pairs=True,
        raw32=None if raw is None else np.concatenate([raw[: Xf.shape[0]][order], raw[Xf.shape[0] :]]),
    )
    out = PairDistances(
        distance=np.full((m, K), np.nan),
        lower=np.full((m, K), np.nan),
        gap=np.full((m, K), np.nan),
        converged=np.ones((m, K), dtype=bool),
        overlap=np.zeros((m, K), dtype=bool),
        iterations=np.zeros((m, K), dtype=np.int64),
        rtol=rtol,
        atol=tol,
    )
    for name in ("distance", "lower", "gap", "converged", "overlap", "iterations"):
        getattr(out, name)[ti, ci] = getattr(res, name)
    return out


def point_hull_distances(
    P: np.ndarray, X: np.ndarray, clustering: Clustering, **kwargs: object
) -> np.ndarray:
    """float64 ``[m, K]`` distances from each test point (rows of ``P``, ``[m, d]``) to each cluster's
    hull."""
    return point_hull_distance_details(P, X, clustering, **kwargs).distance  # type: ignore[arg-type]


def _single_thread_blas() -> contextlib.AbstractContextManager[object]:
    """Limit BLAS to one thread: many small products (Gram blocks), which multi-threaded BLAS slows down
    badly on a loaded machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _n_threads(work: int, n_groups: int) -> int:
    """Threads for the kernel: one per CPU (at most 8) when there is enough work to pay for them."""
    if work < 200_000 or n_groups < 16:
        return 1
    return max(1, min(8, os.cpu_count() or 1, n_groups // 8))


def _gram_blocks(
    X: np.ndarray, starts: np.ndarray, sizes: np.ndarray, blocks: np.ndarray, budget: int = 32_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """Gram blocks ``X_c X_c^T`` (float64, row-major, concatenated) of the blocks worth it: those with
    at least ``n_c / 4`` pairs (a Gram block costs about as much as ``n_c / 2`` d-space scans), at most
    4096 rows, in order of pair count until ``budget`` entries.

    blocks: int64 ``[P]`` the A block of every pair. Returns (gram ``[sum n_c^2]``, goff int64 ``[P]``: offset
    of the pair's block in gram, -1 for d-space pairs).
    """
    ids, counts = np.unique(blocks, return_counts=True)
    n = sizes[ids]
    ok = (counts * 4 >= n) & (n <= 4096)
    ids, counts, n = ids[ok], counts[ok], n[ok]
    pick = np.argsort(-counts, kind="stable")
    keep = pick[np.cumsum(n[pick] ** 2) <= budget]
    ids = np.sort(ids[keep])
    off_of = np.full(sizes.shape[0], -1, dtype=np.int64)
    sz2 = sizes[ids] ** 2
    offs = (np.cumsum(sz2) - sz2).astype(np.int64)
    gram = np.empty(int(sz2.sum()) if ids.size else 1)
    for c, o in zip(ids, offs, strict=True):
        Xc = X[starts[c] : starts[c] + sizes[c]]
        gram[o : o + sizes[c] ** 2] = (Xc @ Xc.T).ravel()
    off_of[ids] = offs
    return gram, off_of[blocks]


def _cuda_present() -> bool:
    """Whether torch sees a CUDA device, without importing torch on machines that have no NVIDIA driver
    (importing torch costs about a second)."""
    import sys

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "" and "torch" not in sys.modules:
        return False
    if "torch" not in sys.modules and not (
        os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")
    ):
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_backend(backend: str = "auto", device: str | None = "auto") -> str:
    """The solver that runs: ``"numpy"`` (the compiled CPU solver) or ``"torch"`` (``hulls_torch``).

    backend ``"numpy"`` or ``"torch"`` is taken as given; ``"auto"`` picks torch when ``device`` names a CUDA
    device, or is ``"auto"``/None and a CUDA device is present, else the compiled CPU solver (faster than
    torch on a CPU). device: ``"auto"``/None, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (used by the torch solver;
    ``"auto"`` = CUDA when present).
    """
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    if backend != "auto":
        return backend
    dev = "auto" if device is None else str(device)
    if dev.startswith("cuda"):
        return "torch"
    if dev == "auto":
        return "torch" if _cuda_present() else "numpy"
    return "numpy"


def _run_pairs(
    Xs: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
    x0: np.ndarray,
    *,
    rtol: float,
    atol: float,
    max_iter: int,
    add_per_side: int,
    chunk_pairs: int | None = None,
    backend: str = "numpy",
    device: str | None = None,
    progress: ProgressFn | None = None,
    groups: np.ndarray | None = None,
    group_ub: np.ndarray | None = None,
    keep_corral: bool = False,
    point_pairs: bool = False,
    raw32: np.ndarray | None = None,
) -> _SolveResult:
    """Minimum-norm point of ``conv(block pa[p]) - conv(block pb[p])`` for every pair p (module docstring).

    Xs: float64 ``[N, d]`` points, block c = ``Xs[starts[c] : starts[c] + sizes[c]]``; pa, pb: int64 ``[P]``
    block ids; x0: float64 ``[P, d]`` start directions (e.g. centroid differences).
    groups, group_ub: optional "nearest only" mode: ``groups`` ``[P]`` ids into ``group_ub`` (float64 ``[G]``,
    the smallest upper bound known per group). A pair whose certified lower bound exceeds
    ``group_ub * (1 + rtol / (1 - rtol)) + atol`` cannot be (tied with) the nearest of its group: it is
    abandoned and reported with distance NaN (its lower bound is kept). Pairs of a group run one after the
    other, smallest start distance first; groups run in parallel (numba threads).
    raw32: optional float32 ``[N, d]``: the rows of ``Xs`` before centring, exactly (float32 input); the
    kernel's d-space scans read it (half the memory traffic).
    point_pairs: every B block is one point (point-to-hull). With at least 3 pairs per point on average,
    clusters with many pairs use Gram mode: their Gram blocks ``X_c X_c^T`` and the points' inner products
    with the training rows are computed once with BLAS, so a scan costs O(n_c x corral) instead of
    O(n_c x d).
    ``chunk_pairs`` is accepted for compatibility (the compiled solver needs no chunking). backend/device:
    :func:`resolve_backend`; the torch solver does not keep corrals (``keep_corral`` runs the CPU solver).
    """
    del chunk_pairs
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    if resolve_backend(backend, device) == "torch" and not keep_corral:
        # every pair batched on the torch device ("nearest only" abandoning is not used); the pairs it leaves
        # uncertified are re-solved exactly by the compiled CPU solver below
        from tuneprobe.directprobe.hulls_torch import solve_pairs_torch

        tres = _SolveResult(
            *solve_pairs_torch(
                Xs, starts, sizes, pa, pb, rtol=rtol, atol=atol, max_iter=max_iter, device=device or "auto"
            )
        )
        bad = np.flatnonzero(~tres.converged)
        if bad.size:
            kw = {
                "max_iter": max_iter,
                "add_per_side": add_per_side,
                "point_pairs": point_pairs,
                "raw32": raw32,
            }
            fix = _run_pairs(Xs, starts, sizes, pa[bad], pb[bad], x0[bad], rtol=rtol, atol=atol, **kw)
            for name in ("distance", "lower", "gap", "converged", "overlap", "iterations"):
                getattr(tres, name)[bad] = getattr(fix, name)
        if progress is not None:
            progress(pa.shape[0], pa.shape[0])
        return tres
    from tuneprobe.directprobe._hull_kernel import solve_pairs

    P = pa.shape[0]
    X = np.ascontiguousarray(Xs, dtype=np.float64)
    X32 = np.zeros((0, X.shape[1]), np.float32) if raw32 is None else np.ascontiguousarray(raw32, np.float32)
    if X32.shape[0] and X32.shape != X.shape:
        raise ValueError(f"raw32 has shape {X32.shape}, expected {X.shape}")
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    x0 = np.ascontiguousarray(x0, dtype=np.float64)
    if groups is None:
        # one group per pair; points together (point_pairs), else big pairs first (load balance)
        order = np.lexsort((pa, pb)) if point_pairs else np.lexsort((pb, pa, -(sizes[pa] + sizes[pb])))
        gptr = np.arange(P + 1, dtype=np.int64)
        ub = np.full(P, np.inf)
    else:
        # within a group, the most promising pair (shortest start direction) first
        order = np.lexsort((pa, np.einsum("pd,pd->p", x0, x0), groups))
        gs = groups[order]
        cut = np.flatnonzero(np.diff(gs)) + 1
        gptr = np.concatenate([[0], cut, [P]]).astype(np.int64) if P else np.zeros(1, np.int64)
        gids = gs[gptr[:-1]] if P else np.zeros(0, np.int64)
        full_ub = np.full(int(groups.max(initial=-1)) + 1, np.inf) if group_ub is None else group_ub
        ub = np.array(full_ub[gids], dtype=np.float64)
    scale2 = float(np.einsum("nd,nd->n", X, X).max(initial=0.0)) if X.size else 0.0
    cc = max(scale2, 1e-300)
    keep = int(min(X.shape[1] + 2, int((sizes[pa] + sizes[pb]).max(initial=0)))) if keep_corral else 0
    A_s, B_s = pa[order], pb[order]
    out_f = np.zeros((P, 4))
    out_i = np.zeros((P, 8), dtype=np.int64)
    c_idx = np.zeros((P, keep), dtype=np.int64)
    c_w = np.zeros((P, keep))
    goff = np.full(P, -1, dtype=np.int64)
    gram = np.zeros(1)
    if point_pairs and 3 * np.unique(pb).size <= P:
        with _single_thread_blas():
            gram, goff = _gram_blocks(X, starts, sizes, A_s)
    n_groups = gptr.shape[0] - 1
    gram_group = np.zeros(n_groups, dtype=bool)
    if n_groups:
        np.logical_or.at(gram_group, np.repeat(np.arange(n_groups), np.diff(gptr)), goff >= 0)
    # groups in chunks bounded by the size of the point-row inner products (float64 [chunk, N])
    step = max(1, int(16_000_000 // max(X.shape[0], 1))) if gram_group.any() else max(n_groups, 1)
    for g0 in range(0, n_groups, step):
        g1 = min(g0 + step, n_groups)
        p0, p1 = int(gptr[g0]), int(gptr[g1])
        sl = slice(p0, p1)
        prow = np.full(p1 - p0, -1, dtype=np.int64)
        pp = np.zeros(p1 - p0)
        px = np.zeros((1, 1))
        gsel = np.flatnonzero(goff[sl] >= 0)
        if gsel.size:
            prow_pts, inv_pts = np.unique(starts[B_s[sl][gsel]], return_inverse=True)
            Pt = X[prow_pts]
            with _single_thread_blas():
                px = Pt @ X.T  # [m_chunk, N]
            prow[gsel] = inv_pts
            pp[gsel] = np.einsum("md,md->m", Pt, Pt)[inv_pts]
        # groups split between threads (the kernel releases the GIL), balanced by points scanned
        gp = gptr[g0 : g1 + 1] - p0
        work = np.cumsum(sizes[A_s[sl]] + sizes[B_s[sl]])
        n_thr = _n_threads(int(work[-1]) if work.size else 0, g1 - g0)
        cuts = np.searchsorted(
            work[gp[1:-1] - 1] if g1 - g0 > 1 else work[:0], work[-1] * np.arange(1, n_thr) / n_thr
        )
        bounds = np.unique(np.concatenate([[0], cuts, [g1 - g0]]))

        def run(
            lo: int,
            hi: int,
            gp: np.ndarray = gp,
            g0: int = g0,
            p0: int = p0,
            px: np.ndarray = px,
            prow: np.ndarray = prow,
            pp: np.ndarray = pp,
        ) -> None:
            q0, q1 = int(gp[lo]), int(gp[hi])
            ps = slice(p0 + q0, p0 + q1)
            f, i, ci, cw = solve_pairs(
                X,
                X32,
                starts[A_s[ps]],
                sizes[A_s[ps]],
                starts[B_s[ps]],
                sizes[B_s[ps]],
                x0[order[ps]],
                gp[lo : hi + 1] - q0,
                ub[g0 + lo : g0 + hi],
                float(rtol),
                float(atol),
                cc,
                int(max_iter),
                int(add_per_side),
                keep,
                gram,
                goff[ps],
                px,
                prow[q0:q1],
                pp[q0:q1],
            )
            out_f[ps], out_i[ps], c_idx[ps], c_w[ps] = f, i, ci, cw

        spans = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]
        if len(spans) > 1:
            with ThreadPoolExecutor(len(spans)) as ex:
                list(ex.map(lambda s: run(*s), spans))
        elif spans:
            run(*spans[0])
    if groups is not None and group_ub is not None and P:
        np.minimum.at(group_ub, gids, ub)
    if progress is not None:
        progress(P, P)
    inv = np.empty(P, dtype=np.int64)
    inv[order] = np.arange(P)
    out_f, out_i = out_f[inv], out_i[inv]
    res = _SolveResult(
        distance=out_f[:, 0].copy(),
        lower=out_f[:, 1].copy(),
        gap=out_f[:, 2].copy(),
        converged=out_i[:, 0].astype(bool),
        overlap=out_i[:, 1].astype(bool),
        iterations=out_i[:, 2].copy(),
    )
    if keep_corral:
        rows_l, sgn_l, w_l = [], [], []
        for p in range(P):
            mq = int(out_i[p, 3])
            li = c_idx[inv[p], :mq]
            na_ = sizes[pa[p]]
            is_a = li < na_
            rows_l.append(np.where(is_a, starts[pa[p]] + li, starts[pb[p]] + li - na_))
            sgn_l.append(np.where(is_a, 1.0, -1.0))
            w_l.append(c_w[inv[p], :mq].copy())
        res.corral_rows, res.corral_signs, res.corral_weights = rows_l, sgn_l, w_l
    return res
