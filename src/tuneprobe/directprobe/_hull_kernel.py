"""Compiled (numba) Wolfe minimum-norm-point solver over the product of two simplices (see ``hulls.py``).

One pair at a time: ``min ||A^T alpha - B^T beta||`` over ``alpha in simplex(n_A)``, ``beta in simplex(n_B)``.
Signed points ``z = a`` (side A) and ``z = -b`` (side B). The corral (active set) is kept with the upper
Cholesky factor ``R`` of its *augmented* Gram matrix

    Ghat = Z Z^T + c E E^T + ridge I        (E ``[m, 2]`` the side indicators, c > 0 the data scale squared)

On the affine set ``E^T w = 1`` the term ``w^T E E^T w`` is the constant 2, so minimising ``w^T Ghat w`` there
gives the affine minimiser of ``||Z^T w||``; ``Ghat`` is positive definite exactly when the corral is affinely
independent in the product sense (the KKT system is non-singular). Adding a point is an O(m^2) column append
(the pivot doubles as the independence safeguard: a point whose pivot is tiny is not added); dropping one is a
column delete with Givens rotations, O(m^2). The affine minimiser costs two triangular solves per side
indicator and a 2x2 system.

Every major step scans all points of both sets against ``x`` (the exact minima give the certified bound
``LB = max(0, m(x) / ||x||)``), so the certificate never depends on the factor's accuracy: ``x`` is always
recomputed from feasible weights.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_RIDGE = 1e-13  # relative diagonal regularisation of Ghat
_DEP = 1e-11  # a new point whose squared pivot is below _DEP * its diagonal is affinely dependent: not added
_MINOR_EXTRA = 8
# reassociation / FMA contraction only (no nnan/ninf: the kernel compares against inf)
_FM = {"reassoc", "contract", "nsz", "arcp"}
# Every helper is inlined into ``solve_pairs`` by numba (``inline="always"``), so the kernel is one compiled
# function with no calls to other jitted functions. Called jitted functions made the bits depend on the
# process: ``solve_pairs``'s object carries its own copies of the helpers (optimised again after linking),
# but a process that had compiled (or loaded) a helper on its own -- every process that compiled the kernel
# instead of loading it from numba's on-disk cache -- bound the calls to that separately optimised copy, and
# with reassociation/contraction the two copies round differently: a cold-cache run and a warm-cache run
# (e.g. a test process and fresh Dask workers) gave hull distances that differed in the last bits.
# tests/directprobe/test_kernel_state.py checks both.


@njit(cache=True, fastmath=_FM, inline="always")
def _scores_x(X: np.ndarray, s0: int, n: int, x: np.ndarray, sign: float, sc: np.ndarray, off: int) -> None:
    """``sc[off + i] = sign * <X[s0 + i], x>`` for i < n (the d-space scan)."""
    d = x.shape[0]
    for i in range(n):
        r = s0 + i
        s = 0.0
        for t in range(d):
            s += X[r, t] * x[t]
        sc[off + i] = sign * s


@njit(cache=True, fastmath=_FM, inline="always")
def _scores_gram(
    gram: np.ndarray,
    goff: int,
    na: int,
    px: np.ndarray,
    sa: int,
    pp: float,
    idx: np.ndarray,
    w: np.ndarray,
    m: int,
    sc: np.ndarray,
    ca: np.ndarray,
    cw: np.ndarray,
) -> None:
    """Gram mode (B is one point p): ``sc[i] = <a_i, x>`` for i < na and ``sc[na] = <-p, x>`` with ``x =
    sum_k w_k a_k - p``, from the block ``gram[goff:]`` (``[na, na]``, row-major) and ``px[sa + i] = <p,
    a_i>``; O(na * m)."""
    q = 0
    for k in range(m):
        if idx[k] < na:
            ca[q] = idx[k]
            cw[q] = w[k]
            q += 1
    pxa = 0.0
    for j in range(q):
        pxa += cw[j] * px[sa + ca[j]]
    for i in range(na):
        base = goff + i * na
        s = -px[sa + i]
        for j in range(q):
            s += cw[j] * gram[base + ca[j]]
        sc[i] = s
    sc[na] = pp - pxa


@njit(cache=True, fastmath=_FM, inline="always")
def _topk(sc: np.ndarray, off: int, n: int, k: int, best_v: np.ndarray, best_i: np.ndarray) -> None:
    """k smallest of ``sc[off : off + n]``: values ``best_v[:k]`` (ascending, +inf padded), local indices
    ``best_i[:k]`` (-1 padded)."""
    for j in range(k):
        best_v[j] = np.inf
        best_i[j] = -1
    for i in range(n):
        s = sc[off + i]
        if s < best_v[k - 1]:
            j = k - 1
            while j > 0 and best_v[j - 1] > s:
                best_v[j] = best_v[j - 1]
                best_i[j] = best_i[j - 1]
                j -= 1
            best_v[j] = s
            best_i[j] = i


@njit(cache=True, fastmath=_FM, inline="always")
def _row(li: int, sa: int, na: int, sb: int) -> int:
    return sa + li if li < na else sb + li - na


@njit(cache=True, fastmath=_FM, inline="always")
def _zdot(
    X: np.ndarray,
    li: int,
    lj: int,
    sa: int,
    na: int,
    sb: int,
    gm: bool,
    gram: np.ndarray,
    goff: int,
    px: np.ndarray,
    pp: float,
) -> float:
    """``<z_li, z_lj>`` of two local points (signed: side B points enter as ``-b``)."""
    if gm:
        if li < na:
            if lj < na:
                return gram[goff + li * na + lj]
            return -px[sa + li]
        if lj < na:
            return -px[sa + lj]
        return pp
    ri = _row(li, sa, na, sb)
    rj = _row(lj, sa, na, sb)
    s = 0.0
    for t in range(X.shape[1]):
        s += X[ri, t] * X[rj, t]
    if (li < na) != (lj < na):
        s = -s
    return s


@njit(cache=True, fastmath=_FM, inline="always")
def _chol_add(
    X: np.ndarray,
    R: np.ndarray,
    idx: np.ndarray,
    m: int,
    q: int,
    sa: int,
    na: int,
    sb: int,
    cc: float,
    ridge: float,
    gm: bool,
    gram: np.ndarray,
    goff: int,
    px: np.ndarray,
    pp: float,
) -> bool:
    """Append local point q as column m of R (Ghat = R^T R). False (nothing changed) if it is dependent."""
    sq = q < na
    for k in range(m):
        g = _zdot(X, idx[k], q, sa, na, sb, gm, gram, goff, px, pp)
        if (idx[k] < na) == sq:
            g += cc
        for j in range(k):
            g -= R[j, k] * R[j, m]
        R[k, m] = g / R[k, k]
    gqq = _zdot(X, q, q, sa, na, sb, gm, gram, goff, px, pp) + cc + ridge
    rho2 = gqq
    for k in range(m):
        rho2 -= R[k, m] * R[k, m]
    if rho2 <= _DEP * gqq:
        return False
    R[m, m] = np.sqrt(rho2)
    idx[m] = q
    return True


@njit(cache=True, fastmath=_FM, inline="always")
def _chol_del(R: np.ndarray, idx: np.ndarray, w: np.ndarray, m: int, j: int) -> None:
    """Remove corral slot j (of m) from R, idx and w (Givens re-triangularisation, O(m^2))."""
    for col in range(j, m - 1):
        idx[col] = idx[col + 1]
        w[col] = w[col + 1]
        for r in range(col + 2):
            R[r, col] = R[r, col + 1]
    for k in range(j, m - 1):
        a = R[k, k]
        b = R[k + 1, k]
        h = np.hypot(a, b)
        c = a / h
        s = b / h
        R[k, k] = h
        R[k + 1, k] = 0.0
        for col in range(k + 1, m - 1):
            t1 = R[k, col]
            t2 = R[k + 1, col]
            R[k, col] = c * t1 + s * t2
            R[k + 1, col] = -s * t1 + c * t2


@njit(cache=True, fastmath=_FM, inline="always")
def _affine(
    R: np.ndarray, idx: np.ndarray, m: int, na: int, ua: np.ndarray, ub: np.ndarray, v: np.ndarray
) -> None:
    """Affine minimiser weights ``v[:m]`` of the corral (each side sums to 1)."""
    # forward: R^T y = e
    for k in range(m):
        ya = 1.0 if idx[k] < na else 0.0
        yb = 1.0 - ya
        for j in range(k):
            ya -= R[j, k] * ua[j]
            yb -= R[j, k] * ub[j]
        ua[k] = ya / R[k, k]
        ub[k] = yb / R[k, k]
    # backward: R u = y
    for k in range(m - 1, -1, -1):
        ya = ua[k]
        yb = ub[k]
        for j in range(k + 1, m):
            ya -= R[k, j] * ua[j]
            yb -= R[k, j] * ub[j]
        ua[k] = ya / R[k, k]
        ub[k] = yb / R[k, k]
    m11 = 0.0
    m12 = 0.0
    m21 = 0.0
    m22 = 0.0
    for k in range(m):
        if idx[k] < na:
            m11 += ua[k]
            m12 += ub[k]
        else:
            m21 += ua[k]
            m22 += ub[k]
    m12 = 0.5 * (m12 + m21)
    det = m11 * m22 - m12 * m12
    la = (m22 - m12) / det
    lb = (m11 - m12) / det
    for k in range(m):
        v[k] = la * ua[k] + lb * ub[k]


@njit(cache=True, fastmath=_FM, inline="always")
def _compute_x(
    X: np.ndarray, idx: np.ndarray, w: np.ndarray, m: int, sa: int, na: int, sb: int, x: np.ndarray
) -> None:
    x[:] = 0.0
    d = x.shape[0]
    for k in range(m):
        li = idx[k]
        r = _row(li, sa, na, sb)
        c = w[k] if li < na else -w[k]
        for t in range(d):
            x[t] += c * X[r, t]


@njit(cache=True, fastmath=_FM, inline="always")
def _normalise(idx: np.ndarray, w: np.ndarray, m: int, na: int) -> None:
    sa_ = 0.0
    sb_ = 0.0
    for k in range(m):
        if idx[k] < na:
            sa_ += w[k]
        else:
            sb_ += w[k]
    for k in range(m):
        if idx[k] < na:
            w[k] /= sa_
        else:
            w[k] /= sb_


@njit(cache=True, fastmath=_FM, inline="always")
def _solve_pair(
    X: np.ndarray,
    X32: np.ndarray,
    sa: int,
    na: int,
    sb: int,
    nb: int,
    x0: np.ndarray,
    rtol: float,
    atol: float,
    cc: float,
    max_iter: int,
    k_add: int,
    ub_ref: np.ndarray,
    g: int,
    gm0: bool,
    gram: np.ndarray,
    goff: int,
    px: np.ndarray,
    pp: float,
    out_f: np.ndarray,
    out_i: np.ndarray,
    c_idx: np.ndarray,
    c_w: np.ndarray,
    R: np.ndarray,
    idx: np.ndarray,
    ca: np.ndarray,
    fw: np.ndarray,
    x: np.ndarray,
    sc: np.ndarray,
    in_c: np.ndarray,
) -> None:
    """Solve one pair. ``ub_ref[g]`` (inf when unused) is the group's best upper bound: the pair is abandoned
    when its lower bound exceeds ``ub_ref[g] * (1 + rtol / (1 - rtol)) + atol`` (and updated with every UB).

    X32: the same rows as X before centring, float32 (``[N, d]``; ``[0, d]`` if the input was not float32).
    d-space scans read it instead of X (half the memory traffic; the values are exact): every score of
    side A is shifted by ``<mu, x>`` and every score of side B by ``-<mu, x>``, which cancels in ``m(x)`` and
    in the violations (differences of scores on one side).

    Gram mode (``gm0``; B must be one point p): inner products come from ``gram[goff:]`` (A's Gram block,
    ``[na, na]``), ``px`` (``<p, X[r]>`` by row r) and ``pp = ||p||^2`` instead of d-space products, so a
    scan costs O(na * corral) instead of O(na * d). Near an overlap (``||x||^2 < 1e-6 c``) the solver
    switches to d-space products (cancellation in the Gram expansion would hide an overlap below ``atol``).

    out_f float64 ``[4]``: distance (NaN when abandoned), lower, gap, ||x||; out_i int64 ``[8]``: converged,
    overlap, iterations, corral size, points added, points dropped, minor steps. c_idx/c_w (length >= corral
    size, or 0 to skip): local corral indices (``< na``: row ``sa + i`` of A, else row ``sb + i - na`` of B)
    and weights. Workspace (reused across pairs, sizes at least those needed): R ``[M, M]``, idx and ca
    int64 ``[M]``, fw float64 ``[5, M]``, x ``[d]``, sc ``[na + nb]``, in_c bool ``[na + nb]``, with
    ``M = min(na + nb, d + 2)``.
    """
    d = X.shape[1]
    mmax = min(na + nb, d + 2)
    w = fw[0]
    v = fw[1]
    ua = fw[2]
    ub = fw[3]
    cw = fw[4]
    in_c[: na + nb] = False
    kk = max(1, min(k_add, 16))
    bav = np.empty(kk)
    bai = np.empty(kk, dtype=np.int64)
    bbv = np.empty(kk)
    bbi = np.empty(kk, dtype=np.int64)
    ridge = _RIDGE * cc
    slack = rtol / (1.0 - rtol)
    gm = gm0 and nb == 1
    raw = X32.shape[0] > 0

    # start: the extreme points along x0 (Gram mode: the nearest point of A to p)
    if gm:
        for i in range(na):
            sc[i] = gram[goff + i * na + i] - 2.0 * px[sa + i]
        sc[na] = 0.0
    elif raw:
        _scores_x(X32, sa, na, x0, 1.0, sc, 0)
        _scores_x(X32, sb, nb, x0, -1.0, sc, na)
    else:
        _scores_x(X, sa, na, x0, 1.0, sc, 0)
        _scores_x(X, sb, nb, x0, -1.0, sc, na)
    _topk(sc, 0, na, 1, bav, bai)
    _topk(sc, na, nb, 1, bbv, bbi)
    m = 0
    _chol_add(X, R, idx, m, bai[0], sa, na, sb, cc, ridge, gm, gram, goff, px, pp)
    m = 1
    if not _chol_add(X, R, idx, m, na + bbi[0], sa, na, sb, cc, ridge, gm, gram, goff, px, pp):
        # cannot happen for Ghat (different sides), kept as a guard
        R[0, 1] = 0.0
        R[1, 1] = np.sqrt(cc)
        idx[1] = na + bbi[0]
    m = 2
    w[0] = 1.0
    w[1] = 1.0
    in_c[idx[0]] = True
    in_c[idx[1]] = True
    it = 0
    stall = 0
    n_add = 0
    n_drop = 0
    n_minor = 0
    prev = np.inf
    dist = np.nan
    lower = np.nan
    gap = np.nan
    conv = False
    ovl = False
    nx = 0.0
    while True:
        nx2 = 0.0
        if gm:
            _scores_gram(gram, goff, na, px, sa, pp, idx, w, m, sc, ca, cw)
            for k in range(m):
                nx2 += w[k] * sc[idx[k]]
            if nx2 < 1e-6 * cc:
                gm = False
        if not gm:
            _compute_x(X, idx, w, m, sa, na, sb, x)
            nx2 = 0.0
            for t in range(d):
                nx2 += x[t] * x[t]
            if raw:
                _scores_x(X32, sa, na, x, 1.0, sc, 0)  # <a, x> (+ <mu, x>)
                _scores_x(X32, sb, nb, x, -1.0, sc, na)  # <-b, x> (- <mu, x>)
            else:
                _scores_x(X, sa, na, x, 1.0, sc, 0)  # <a, x>
                _scores_x(X, sb, nb, x, -1.0, sc, na)  # <-b, x>
        nx = np.sqrt(nx2)
        _topk(sc, 0, na, kk, bav, bai)
        _topk(sc, na, nb, kk, bbv, bbi)
        mx = bav[0] + bbv[0]
        gap = nx2 - mx
        lower = max(mx / nx, 0.0) if nx > 0 else 0.0
        ovl = nx <= atol
        conv = ovl or gap <= rtol * nx2
        if nx2 >= prev * (1.0 - 1e-13):
            stall += 1
        else:
            stall = 0
        prev = nx2
        if ovl:
            ub_ref[g] = 0.0
        elif ub_ref[g] > nx:
            ub_ref[g] = nx
        if conv or stall >= 3 or it >= max_iter:
            dist = 0.0 if ovl else nx
            if ovl:
                lower = 0.0
            break
        if lower > ub_ref[g] * (1.0 + slack) + atol:
            dist = np.nan
            conv = True
            break
        it += 1
        # levels of the corral on each side: <z_k, x> = mu_side for the affine minimiser
        mu_a = 0.0
        mu_b = 0.0
        for k in range(m):
            if idx[k] < na:
                mu_a += w[k] * sc[idx[k]]
            else:
                mu_b += w[k] * sc[idx[k]]
        # candidates, most violating first, alternating sides
        added = 0
        ia = 0
        ib = 0
        while ia < kk or ib < kk:
            va = bav[ia] - mu_a if ia < kk and bai[ia] >= 0 else 0.0
            vb = bbv[ib] - mu_b if ib < kk and bbi[ib] >= 0 else 0.0
            if va >= 0.0 and vb >= 0.0:
                break
            if va <= vb:
                q = bai[ia]
                ia += 1
            else:
                q = na + bbi[ib]
                ib += 1
            if in_c[q] or m >= mmax:
                continue
            if _chol_add(X, R, idx, m, q, sa, na, sb, cc, ridge, gm, gram, goff, px, pp):
                w[m] = 0.0
                in_c[q] = True
                m += 1
                added += 1
                n_add += 1
        if added == 0:
            stall += 3
            continue
        # minor cycles (Wolfe): affine minimiser; step back to the boundary and drop while infeasible
        for _minor in range(mmax + _MINOR_EXTRA):
            _affine(R, idx, m, na, ua, ub, v)
            n_minor += 1
            ok = True
            for k in range(m):
                if v[k] <= 0.0:
                    ok = False
                    break
            if ok:
                for k in range(m):
                    w[k] = v[k]
                break
            theta = 1.0
            kb = -1
            for k in range(m):
                if v[k] <= 0.0:
                    t = w[k] / (w[k] - v[k])
                    if t < theta:
                        theta = t
                        kb = k
            for k in range(m):
                w[k] = (1.0 - theta) * w[k] + theta * v[k]
            if kb >= 0:
                w[kb] = 0.0
                v[kb] = -1.0
            # drop the blocking point and any that reached 0, keeping at least one point per side
            k = m - 1
            while k >= 0:
                if w[k] <= 1e-15 and v[k] <= 0.0:
                    n_side = 0
                    for j in range(m):
                        if (idx[j] < na) == (idx[k] < na):
                            n_side += 1
                    if n_side > 1:
                        in_c[idx[k]] = False
                        _chol_del(R, idx, w, m, k)
                        m -= 1
                        n_drop += 1
                k -= 1
            for k in range(m):
                if w[k] < 0.0:
                    w[k] = 0.0
            _normalise(idx, w, m, na)
    out_f[0] = dist
    out_f[1] = lower
    out_f[2] = max(gap, 0.0)
    out_f[3] = nx
    out_i[0] = 1 if conv else 0
    out_i[1] = 1 if ovl else 0
    out_i[2] = it
    out_i[3] = m
    out_i[4] = n_add
    out_i[5] = n_drop
    out_i[6] = n_minor
    if c_idx.shape[0] >= m:
        for k in range(m):
            c_idx[k] = idx[k]
            c_w[k] = w[k]


@njit(cache=True, nogil=True, fastmath=_FM)
def solve_pairs(
    X: np.ndarray,
    X32: np.ndarray,
    sa: np.ndarray,
    na: np.ndarray,
    sb: np.ndarray,
    nb: np.ndarray,
    x0: np.ndarray,
    group_ptr: np.ndarray,
    ub_ref: np.ndarray,
    rtol: float,
    atol: float,
    cc: float,
    max_iter: int,
    k_add: int,
    keep: int,
    gram: np.ndarray,
    goff: np.ndarray,
    px: np.ndarray,
    prow: np.ndarray,
    pp: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve every pair p (blocks ``X[sa[p] : sa[p] + na[p]]`` vs ``X[sb[p] : sb[p] + nb[p]]``, float64
    ``[N, d]``; ``X32`` see :func:`_solve_pair`), start direction ``x0[p]`` (``[P, d]``). Pairs of group
    ``g`` are ``group_ptr[g] : group_ptr[g + 1]`` and run in that order, sharing ``ub_ref[g]`` (inf: no
    abandoning). Releases the GIL
    (callers run disjoint group ranges in threads). Gram mode for pair p when ``goff[p] >= 0`` (see
    :func:`_solve_pair`): its Gram block starts at ``gram[goff[p]]``,
    ``px[prow[p]]`` (``[N]``) holds ``<p, X[r]>`` and ``pp[p] = ||p||^2``.
    Returns (out_f ``[P, 4]``, out_i ``[P, 8]``, corral indices ``[P, keep]``, weights ``[P, keep]``) as in
    :func:`_solve_pair`.
    """
    P = sa.shape[0]
    out_f = np.empty((P, 4))
    out_i = np.zeros((P, 8), dtype=np.int64)
    c_idx = np.full((P, keep), -1, dtype=np.int64)
    c_w = np.zeros((P, keep))
    G = group_ptr.shape[0] - 1
    d = X.shape[1]
    nmax = 1
    for p in range(P):
        nmax = max(nmax, na[p] + nb[p])
    M = min(nmax, d + 2)
    R = np.empty((M, M))
    idx = np.empty(M, dtype=np.int64)
    ca = np.empty(M, dtype=np.int64)
    fw = np.empty((5, M))
    x = np.empty(d)
    sc = np.empty(nmax)
    in_c = np.zeros(nmax, dtype=np.bool_)
    for g in range(G):
        for p in range(group_ptr[g], group_ptr[g + 1]):
            _solve_pair(
                X,
                X32,
                sa[p],
                na[p],
                sb[p],
                nb[p],
                x0[p],
                rtol,
                atol,
                cc,
                max_iter,
                k_add,
                ub_ref,
                g,
                goff[p] >= 0,
                gram,
                max(goff[p], 0),
                px[max(prow[p], 0)],
                pp[p],
                out_f[p],
                out_i[p],
                c_idx[p],
                c_w[p],
                R,
                idx,
                ca,
                fw,
                x,
                sc,
                in_c,
            )
    return out_f, out_i, c_idx, c_w
