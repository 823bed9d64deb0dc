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
every point of A and B against the current ``x = A^T alpha - B^T beta`` (one matrix product per cluster,
shared by all pairs that involve the cluster) and adds the most violating points (up to ``add_per_side`` per
side). **Minor** steps solve the equality-constrained problem on the corral exactly (a KKT system with one
sum-to-one row per side), and, when some weights come out non-positive, step back to the boundary and drop the
points that reach weight 0 (Wolfe 1976). Thousands of pairs advance together in numpy (batched KKT solves;
corral arrays padded to a common size).

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
The data are never scaled or standardised.

Performance notes. Pairs are solved in chunks (bounded memory); finished pairs stay in the batch until fewer
than 60 % are live, then the state is compacted. BLAS is limited to one thread inside the solver: it makes
many small calls, which multi-threaded BLAS slows down badly on a loaded machine. ``nearest_only``
(point-to-hull) abandons a pair as soon as its certified lower bound shows it cannot be the nearest hull
of its point.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
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
_RIDGE = (
    1e-13  # relative diagonal regularisation of the corral Gram matrix (keeps the KKT solve non-singular)
)

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
# the batched solver
# ----------------------------------------------------------------------------------------------------------


class _Blocks:
    """Point sets stored contiguously: block ``c`` is ``X[starts[c] : starts[c] + sizes[c]]`` (float64 ``[N,
    d]``)."""

    def __init__(self, X: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> None:
        self.X = X
        self.starts = starts.astype(np.int64)
        self.sizes = sizes.astype(np.int64)

    def topk_min(
        self, blocks: np.ndarray, vecs: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each query r: the smallest ``<X_i, vecs[r]>`` over rows i of block ``blocks[r]`` and the k best
        rows.

        blocks: int64 ``[R]``; vecs: float64 ``[R, d]``.
        Returns (minval float64 ``[R]``, rows int64 ``[R, k]`` global row ids, -1 padded, vals float64 ``[R,
        k]``, +inf padded). Rows are the k smallest scores in no particular order.
        """
        R = blocks.shape[0]
        minval = np.empty(R)
        rows = np.full((R, k), -1, dtype=np.int64)
        vals = np.full((R, k), np.inf)
        sizes = self.sizes[blocks]
        single = sizes == 1
        if single.any():
            s = np.flatnonzero(single)
            r0 = self.starts[blocks[s]]
            v = np.einsum("rd,rd->r", self.X[r0], vecs[s])
            minval[s] = v
            rows[s, 0] = r0
            vals[s, 0] = v
        multi = np.flatnonzero(~single)
        if multi.size:
            order = multi[np.argsort(blocks[multi], kind="stable")]
            bl = blocks[order]
            cut = np.flatnonzero(np.diff(bl)) + 1
            for grp in np.split(order, cut):
                c = int(blocks[grp[0]])
                s0, n = int(self.starts[c]), int(self.sizes[c])
                Xc = self.X[s0 : s0 + n]
                # keep the score matrix below ~16 M entries for very large clusters
                step = max(1, min(grp.size, 16_000_000 // max(n, 1)))
                for g0 in range(0, grp.size, step):
                    g = grp[g0 : g0 + step]
                    S = Xc @ vecs[g].T  # [n, |g|]
                    kk = min(k, n)
                    if kk < n:
                        part = np.argpartition(S, kk - 1, axis=0)[:kk]  # [kk, |g|]
                    else:
                        part = np.broadcast_to(np.arange(n)[:, None], (n, g.size))
                    pv = np.take_along_axis(S, part, axis=0)
                    minval[g] = pv.min(axis=0)
                    rows[g, :kk] = (part + s0).T
                    vals[g, :kk] = pv.T
        return minval, rows, vals


@dataclass
class _SolveResult:
    """Per-pair results of ``_solve`` (arrays ``[P]``) and, if requested, the corral of every pair."""

    distance: np.ndarray
    lower: np.ndarray
    gap: np.ndarray
    converged: np.ndarray
    overlap: np.ndarray
    iterations: np.ndarray
    corral_rows: list[np.ndarray] | None = None
    corral_signs: list[np.ndarray] | None = None
    corral_weights: list[np.ndarray] | None = None


class _State:
    """Corrals of the pairs of one chunk (rows). Finished rows stay (``live`` False) until fewer than 60 % are
    live; then the state is compacted.

    gid ``[L]`` global pair ids; A, B ``[L]`` block ids; live ``[L]``; idx ``[L, M]`` corral rows of X
    (-1 empty);
    sgn ``[L, M]`` +1 (side A), -1 (side B), 0 (empty); w ``[L, M]`` weights (each side sums to 1);
    Z ``[L, M, d]`` signed coordinates ``sgn * X[idx]``; G ``[L, M, M]`` their inner products (stale where
    empty); x ``[L, d]`` current ``sum_k w_k Z_k``; it ``[L]`` major steps; stall ``[L]``; prev ``[L]`` last
    ``||x||^2``.
    """

    def __init__(self, pa: np.ndarray, pb: np.ndarray, x0: np.ndarray, M: int) -> None:
        P, d = x0.shape
        self.gid = np.arange(P)
        self.A = pa.astype(np.int64).copy()
        self.B = pb.astype(np.int64).copy()
        self.live = np.ones(P, dtype=bool)
        self.idx = np.full((P, M), -1, dtype=np.int64)
        self.sgn = np.zeros((P, M))
        self.w = np.zeros((P, M))
        self.Z = np.zeros((P, M, d))
        self.G = np.zeros((P, M, M))
        self.x = np.array(x0, dtype=np.float64, copy=True)
        self.it = np.zeros(P, dtype=np.int64)
        self.stall = np.zeros(P, dtype=np.int64)
        self.prev = np.full(P, np.inf)

    _FIELDS = ("gid", "A", "B", "live", "idx", "sgn", "w", "Z", "G", "x", "it", "stall", "prev")

    @property
    def M(self) -> int:
        return int(self.idx.shape[1])

    def keep(self, rows: np.ndarray) -> None:
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[rows])

    def grow(self, M_new: int) -> None:
        g = M_new - self.M
        self.idx = np.pad(self.idx, ((0, 0), (0, g)), constant_values=-1)
        self.sgn = np.pad(self.sgn, ((0, 0), (0, g)))
        self.w = np.pad(self.w, ((0, 0), (0, g)))
        self.Z = np.pad(self.Z, ((0, 0), (0, g), (0, 0)))
        self.G = np.pad(self.G, ((0, 0), (0, g), (0, g)))


def _solve(
    blocks: _Blocks,
    pa: np.ndarray,
    pb: np.ndarray,
    x0: np.ndarray,
    *,
    rtol: float,
    atol: float,
    max_iter: int,
    add_per_side: int,
    keep_corral: bool = False,
    progress: ProgressFn | None = None,
    groups: np.ndarray | None = None,
    group_ub: np.ndarray | None = None,
) -> _SolveResult:
    """Minimum-norm point of ``conv(block pa[p]) - conv(block pb[p])`` for every pair p (see the module
    docstring).

    pa, pb: int64 ``[P]`` block ids; x0: float64 ``[P, d]`` initial directions (e.g. centroid differences).
    groups, group_ub: optional "nearest only" mode: ``groups`` ``[P]`` ids into ``group_ub`` (float64, updated
    in place with the smallest upper bound seen in each group). A pair whose certified lower bound exceeds
    ``group_ub * (1 + rtol / (1 - rtol)) + atol`` cannot be (tied with) the nearest of its group: it is
    abandoned and reported with distance NaN (its lower bound is kept).
    """
    X = blocks.X
    P, d = x0.shape
    out_dist = np.full(P, np.nan)
    out_lower = np.full(P, np.nan)
    out_gap = np.full(P, np.nan)
    out_conv = np.zeros(P, dtype=bool)
    out_overlap = np.zeros(P, dtype=bool)
    out_iter = np.zeros(P, dtype=np.int64)
    c_rows: list[np.ndarray] | None = [np.empty(0, np.int64)] * P if keep_corral else None
    c_sgn: list[np.ndarray] | None = [np.empty(0)] * P if keep_corral else None
    c_w: list[np.ndarray] | None = [np.empty(0)] * P if keep_corral else None
    result = _SolveResult(out_dist, out_lower, out_gap, out_conv, out_overlap, out_iter, c_rows, c_sgn, c_w)
    if P == 0:
        return result
    k = max(1, int(add_per_side))
    # start with room for a typical corral (growing copies every state array), never more than the pair sizes
    cap = int((blocks.sizes[pa] + blocks.sizes[pb]).max())
    st = _State(pa, pb, x0, max(2 * k + 2, min(32, cap)))
    n_done = 0

    # ---- start: the extreme point of each side along the initial direction, weight 1
    va, ra, sa = blocks.topk_min(st.A, st.x, 1)
    vb, rb, sb = blocks.topk_min(st.B, -st.x, 1)
    za, zb = X[ra[:, 0]], -X[rb[:, 0]]
    st.idx[:, 0], st.idx[:, 1] = ra[:, 0], rb[:, 0]
    st.sgn[:, 0], st.sgn[:, 1] = 1.0, -1.0
    st.w[:, 0], st.w[:, 1] = 1.0, 1.0
    st.Z[:, 0], st.Z[:, 1] = za, zb
    st.G[:, 0, 0] = np.einsum("pd,pd->p", za, za)
    st.G[:, 1, 1] = np.einsum("pd,pd->p", zb, zb)
    st.G[:, 0, 1] = st.G[:, 1, 0] = np.einsum("pd,pd->p", za, zb)
    st.x = za + zb

    while st.live.any():
        if st.live.sum() < 0.6 * st.live.size:
            st.keep(np.flatnonzero(st.live))
        lr = np.flatnonzero(st.live)
        whole = lr.size == st.live.size

        def sel(arr: np.ndarray, lr: np.ndarray = lr, whole: bool = whole) -> np.ndarray:
            return arr if whole else arr[lr]

        xl, wl, sl = sel(st.x), sel(st.w), sel(st.sgn)
        # ---- major step: scan every point of both sets against x (the certificate needs the exact minima)
        va, ra, sa = blocks.topk_min(st.A[lr], xl, k)
        vb, rb, sb = blocks.topk_min(st.B[lr], -xl, k)
        nx2 = np.einsum("pd,pd->p", xl, xl)
        nx = np.sqrt(nx2)
        m_x = va + vb  # min_i <a_i, x> - max_j <b_j, x>
        gap = nx2 - m_x
        Gw = np.einsum("pij,pj->pi", sel(st.G), wl)  # <Z_k, x> for every slot
        cur_a = np.einsum("pi,pi->p", wl * (sl > 0), Gw)  # <x, alpha @ A>
        cur_b = np.einsum("pi,pi->p", wl * (sl < 0), Gw)  # -<x, beta @ B>
        with np.errstate(divide="ignore", invalid="ignore"):
            lower = np.where(nx > 0, np.maximum(m_x / nx, 0.0), 0.0)
        ovl = nx <= atol
        conv = ovl | (gap <= rtol * nx2)
        stall = np.where(nx2 >= st.prev[lr] * (1 - 1e-13), st.stall[lr] + 1, 0)
        st.stall[lr] = stall
        st.prev[lr] = nx2
        done = conv | (stall >= 3) | (st.it[lr] >= max_iter)
        pruned = np.zeros_like(done)
        if groups is not None and group_ub is not None:
            grp = groups[st.gid[lr]]
            np.minimum.at(group_ub, grp, np.where(ovl, 0.0, nx))
            pruned = ~done & (lower > group_ub[grp] * (1.0 + rtol / (1.0 - rtol)) + atol)
            done |= pruned
        if done.any():
            r = lr[done]
            g = st.gid[r]
            out_dist[g] = np.where(ovl[done], 0.0, np.where(pruned[done], np.nan, nx[done]))
            out_lower[g] = np.where(ovl[done], 0.0, lower[done])
            out_gap[g] = np.maximum(gap[done], 0.0)
            out_conv[g] = conv[done] | pruned[done]
            out_overlap[g] = ovl[done]
            out_iter[g] = st.it[r]
            if keep_corral:
                assert c_rows is not None and c_sgn is not None and c_w is not None
                for rr, gg in zip(r, g, strict=True):
                    m = st.sgn[rr] != 0
                    c_rows[gg], c_sgn[gg], c_w[gg] = (
                        st.idx[rr, m].copy(),
                        st.sgn[rr, m].copy(),
                        st.w[rr, m].copy(),
                    )
            n_done += r.size
            if progress is not None:
                progress(n_done, P)
            st.live[r] = False
            keep = ~done
            lr = lr[keep]
            if lr.size == 0:
                break
            ra, sa, rb, sb, cur_a, cur_b = ra[keep], sa[keep], rb[keep], sb[keep], cur_a[keep], cur_b[keep]
        st.it[lr] += 1
        # ---- candidates: violating points (score below the corral's level on their side) not in the corral
        cand_rows = np.concatenate([ra, rb], axis=1)  # [l, 2k]
        cand_viol = np.concatenate([sa - cur_a[:, None], sb - cur_b[:, None]], axis=1)
        cand_sign = np.concatenate([np.ones(ra.shape), -np.ones(rb.shape)], axis=1)
        ok = (cand_rows >= 0) & (cand_viol < 0)
        cur_idx, cur_sgn = st.idx[lr], st.sgn[lr]
        dup = (
            (cand_rows[:, :, None] == cur_idx[:, None, :]) & (cand_sign[:, :, None] == cur_sgn[:, None, :])
        ).any(2)
        ok &= ~dup
        n_new = ok.sum(1)
        free = (cur_sgn == 0).sum(1)
        need = int((n_new - free).max(initial=0))
        if need > 0:
            st.grow(max(2 * st.M, st.M + need))
        st.stall[lr[n_new == 0]] += 3  # nothing to add although not converged: floating point limit
        if n_new.max(initial=0) > 0:
            L = st.live.size
            ok_full = np.zeros((L, ok.shape[1]), dtype=bool)
            ok_full[lr] = ok
            rows_full = np.full((L, ok.shape[1]), -1, dtype=np.int64)
            rows_full[lr] = cand_rows
            sign_full = np.zeros((L, ok.shape[1]))
            sign_full[lr] = cand_sign
            _insert(X, st, rows_full, sign_full, ok_full)
            _minor_cycles(lr[n_new > 0], st)
        st.x = np.matmul(st.w[:, None, :], st.Z)[:, 0, :]
    return result


def _insert(X: np.ndarray, st: _State, cand_rows: np.ndarray, cand_sign: np.ndarray, ok: np.ndarray) -> None:
    """Put the accepted candidates (``ok`` ``[L, c]``) into free corral slots (weight 0), writing their signed
    coordinates into ``Z`` and their inner products with every slot into ``G``."""
    L, M = st.idx.shape
    free = st.sgn == 0
    rank_free = np.cumsum(free, axis=1) - 1
    slot_of_rank = np.full((L, M), -1, dtype=np.int64)
    li, si = np.nonzero(free)
    slot_of_rank[li, rank_free[li, si]] = si
    rank_new = np.cumsum(ok, axis=1) - 1
    pi, ci = np.nonzero(ok)
    rk = rank_new[pi, ci]
    slots = slot_of_rank[pi, rk]
    rr = cand_rows[pi, ci]
    ss = cand_sign[pi, ci]
    st.idx[pi, slots] = rr
    st.sgn[pi, slots] = ss
    st.w[pi, slots] = 0.0
    zn = ss[:, None] * X[rr]
    st.Z[pi, slots] = zn
    kmax = int(rk.max()) + 1
    Zn = np.zeros((L, kmax, X.shape[1]))
    Zn[pi, rk] = zn
    inner = np.matmul(st.Z, Zn.transpose(0, 2, 1))  # [L, M, kmax]; stale empty slots are masked in the solve
    vals = inner[pi, :, rk]  # [q, M]
    st.G[pi, slots, :] = vals
    st.G[pi, :, slots] = vals


def _affine_min(G: np.ndarray, sgn: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Affine minimiser on each corral: ``argmin w^T G w`` s.t. the weights of each side sum to 1.

    G ``[q, M, M]`` (or the whole state ``[L, M, M]`` with ``rows`` ``[q]`` selecting the q corrals, without a
    copy), sgn ``[q, M]`` (0 = empty slot). Returns v ``[q, M]`` (0 on empty slots). Rows are packed
    by their number of active slots so that each batched KKT solve is only as large as its corrals.
    """
    q, M = sgn.shape
    act = sgn != 0
    cnt = act.sum(1)
    out = np.zeros((q, M))
    order = np.argsort(cnt, kind="stable")
    cs = cnt[order]
    # buckets of similar size: boundaries where the count passes a power of 2 (at most ~log2 M solves)
    bucket = np.ceil(np.log2(np.maximum(cs, 2))).astype(np.int64)
    cuts = np.flatnonzero(np.diff(bucket)) + 1
    for grp in np.split(order, cuts):
        if grp.size == 0:
            continue
        m = int(cnt[grp].max())
        a = act[grp]
        pos = np.argsort(~a, axis=1, kind="stable")[:, :m]  # active slots first
        valid = np.take_along_axis(a, pos, 1)
        s = np.take_along_axis(sgn[grp], pos, 1) * valid
        g_rows = grp if rows is None else rows[grp]
        Gg = np.take(G.reshape(-1), (g_rows[:, None, None] * M + pos[:, :, None]) * M + pos[:, None, :])
        vf = valid.astype(np.float64)
        Gg = Gg * (vf[:, :, None] * vf[:, None, :])
        diag = np.einsum("pii->pi", Gg)
        scale = np.maximum(diag.max(1), 1e-300)
        KKT = np.zeros((grp.size, m + 2, m + 2))
        KKT[:, :m, :m] = Gg
        di = np.arange(m)
        KKT[:, di, di] += np.where(valid, _RIDGE * scale[:, None], 1.0)
        a_side = (s > 0).astype(np.float64)
        b_side = (s < 0).astype(np.float64)
        KKT[:, :m, m] = a_side
        KKT[:, :m, m + 1] = b_side
        KKT[:, m, :m] = a_side
        KKT[:, m + 1, :m] = b_side
        rhs = np.zeros((grp.size, m + 2, 1))
        rhs[:, m:] = 1.0
        v = np.linalg.solve(KKT, rhs)[:, :m, 0] * vf
        res = np.zeros((grp.size, M))
        np.put_along_axis(res, pos, v, 1)
        out[grp] = np.where(a, res, 0.0)
    return out


def _minor_cycles(rows: np.ndarray, st: _State) -> None:
    """Wolfe's minor cycles on state rows ``rows``: affine minimiser on the corral, step back, drop zero
    weights."""
    sub = rows
    for _ in range(4 * st.M + 8):
        if sub.size == 0:
            return
        s = st.sgn[sub]
        act = s != 0
        v = _affine_min(st.G, s, sub)
        bad = act & (v <= 0)
        feasible = ~bad.any(1)
        if feasible.any():
            st.w[sub[feasible]] = v[feasible]
        inf_rows = np.flatnonzero(~feasible)
        if inf_rows.size == 0:
            return
        r = sub[inf_rows]
        wo = st.w[r]
        v, bad, act, s = v[inf_rows], bad[inf_rows], act[inf_rows], s[inf_rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bad, wo / (wo - v), np.inf)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)
        amin = ratio.argmin(1)
        theta = np.clip(ratio[np.arange(r.size), amin], 0.0, 1.0)
        wn = wo + theta[:, None] * (v - wo)
        # drop the blocking point and old points that reached 0. Entering points (weight 0) with v <= 0 block
        # with theta = 0: drop all of them at once, except when that would drop every entering point of the
        # pair (then only the most negative one goes, so that an entering point survives: Wolfe's argument)
        hit = np.zeros_like(act)
        hit[np.arange(r.size), amin] = True
        entering = act & (wo <= 0)
        block0 = entering & bad
        all_new_blocked = (entering & ~bad).sum(1) == 0
        drop = act & (hit | ((wo > 0) & (wn <= 1e-15)) | (block0 & ~all_new_blocked[:, None]))
        s = np.where(drop, 0.0, s)
        wn = np.where(drop, 0.0, np.maximum(wn, 0.0))
        sa = (wn * (s > 0)).sum(1, keepdims=True)
        sb = (wn * (s < 0)).sum(1, keepdims=True)
        wn = np.where(
            s > 0, wn / np.where(sa > 0, sa, 1.0), np.where(s < 0, wn / np.where(sb > 0, sb, 1.0), 0.0)
        )
        st.sgn[r] = s
        st.w[r] = wn
        st.idx[r] = np.where(s != 0, st.idx[r], -1)
        sub = r
    # out of minor iterations (should not happen): the last weights are feasible and are kept


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
    A = _as_points(A, "A")
    B = _as_points(B, "B")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A and B have different dimensions ({A.shape[1]} vs {B.shape[1]})")
    mu = np.concatenate([A, B]).mean(0)
    Xc = np.concatenate([A, B]) - mu
    blocks = _Blocks(Xc, np.array([0, A.shape[0]]), np.array([A.shape[0], B.shape[0]]))
    tol = _default_atol(Xc, atol)
    x0 = (Xc[: A.shape[0]].mean(0) - Xc[A.shape[0] :].mean(0))[None]
    res = _solve(
        blocks,
        np.array([0]),
        np.array([1]),
        x0,
        rtol=rtol,
        atol=tol,
        max_iter=max_iter,
        add_per_side=add_per_side,
        keep_corral=True,
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
    backend: str = "numpy",
    device: str | None = None,
    progress: ProgressFn | None = None,
) -> PairDistances:
    """Hull-to-hull distances between clusters, with certificates' bounds and convergence flags.

    X: ``[n, d]`` the points the clustering was fitted on (any float dtype; computed in float64).
    Computes every pair of clusters with different labels (and same-label pairs when ``same_label``).
    Returns :class:`PairDistances` with ``[K, K]`` symmetric arrays; the diagonal is 0 and pairs not computed
    are NaN. ``chunk_pairs`` bounds the pairs solved together (memory ~ chunk x corral size x d x 8 bytes).
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
    backend: str = "numpy",
    device: str | None = None,
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
    """Limit BLAS to one thread: the solver makes many small BLAS calls, which multi-threaded BLAS slows down
    badly (by 10x on a loaded 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


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
    chunk_pairs: int | None,
    backend: str,
    device: str | None,
    progress: ProgressFn | None,
    groups: np.ndarray | None = None,
    group_ub: np.ndarray | None = None,
) -> _SolveResult:
    """Solve the pairs in chunks (bounded memory) with the chosen backend; results in input order.

    With ``groups``/``group_ub`` (see :func:`_solve`) pairs are ordered by group, so a chunk holds whole
    groups.
    """
    if backend == "torch":
        raise ValueError("backend='torch' is not implemented yet; use backend='numpy'")
    if backend != "numpy":
        raise ValueError(f"backend must be 'numpy' (or, later, 'torch'), got {backend!r}")
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    P = pa.shape[0]
    d = Xs.shape[1]
    if chunk_pairs is None:
        # 512 pairs at d = 384 (~64 MB of corral coordinates at a corral size of 40); fastest in our timings
        chunk_pairs = max(64, min(512, int(64e6 / (40 * max(d, 1) * 8))))
    # deterministic order: pairs of similar size together (corral arrays are padded to the largest corral of
    # their chunk), or whole groups together in nearest-only mode
    order = np.lexsort((pb, pa, sizes[pa] + sizes[pb])) if groups is None else np.lexsort((pa, groups))
    parts: list[_SolveResult] = []
    with _single_thread_blas():
        for c0 in range(0, P, chunk_pairs):
            sel = order[c0 : c0 + chunk_pairs]
            parts.append(
                _solve(
                    _Blocks(Xs, starts, sizes),
                    pa[sel],
                    pb[sel],
                    x0[sel],
                    rtol=rtol,
                    atol=atol,
                    max_iter=max_iter,
                    add_per_side=add_per_side,
                    progress=_pair_progress(progress, c0, P),
                    groups=None if groups is None else groups[sel],
                    group_ub=group_ub,
                )
            )
    inv = np.empty(P, dtype=np.int64)
    inv[order] = np.arange(P)

    def cat(name: str, dtype: type) -> np.ndarray:
        if not parts:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([getattr(p, name) for p in parts])[inv]

    return _SolveResult(
        cat("distance", float),
        cat("lower", float),
        cat("gap", float),
        cat("converged", bool),
        cat("overlap", bool),
        cat("iterations", np.int64),
    )
