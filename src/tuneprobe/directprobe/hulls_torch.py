"""Batched hull geometry in torch (any device; CUDA when present): many hull pairs solved at once.

The problem is the one of ``hulls.py``: for every pair p, the minimum-norm point of ``conv(A_p) - conv(B_p)``,

    min ||x||,  x = A_p^T alpha - B_p^T beta,  alpha in simplex(n_A), beta in simplex(n_B),

with the same certificate: ``m(x) = min_i <a_i, x> - max_j <b_j, x>``, lower bound ``max(0, m(x) / ||x||)``,
Frank-Wolfe gap ``g = ||x||^2 - m(x)``; a pair stops when ``UB - LB <= rtol UB`` (UB = the smallest ``||x||``
of a feasible iterate, LB = the largest lower bound seen; for one iterate ``UB - LB = g / ||x||``, so this is
the gap rule of ``hulls.py``) or when ``||x|| <= atol`` (overlap). The certificate is computed from feasible
weights and a full scan of both sets, so a pair reported converged is certified whatever the iterations did.

Method: Wolfe's active-set minimum-norm-point algorithm (the one of ``_hull_kernel.py``), batched: every pair
keeps a corral of slots (signed points, weights, their Gram block); one **major** step computes ``x`` and
scores every point of both sets against it (two batched matrix-vector products over the gathered blocks,
the dominant cost, as on the CPU), checks the certificate, and adds the ``add_per_side`` most violating points
per side; **minor** steps solve the affine minimiser of the corral (each side's weights summing to 1) from a
batched Cholesky factor of ``Z Z^T + c E E^T + r I`` (two refinement steps remove the small ridge's bias, so
affinely dependent corrals and touching hulls are handled), step back to the boundary and drop the blocking
point when some weights come out non-positive. The factor is recomputed per minor step (no rank-one updates:
on a GPU a batched factorisation of the whole chunk is cheaper than sequential updates). Pairs leave the batch
as soon as they are certified; pairs still uncertified after ``max_iter`` major steps, or that can add no
point, are flagged ``converged = False`` with their (valid) bounds, and ``hulls.py`` re-solves them with the
compiled CPU solver.

Precision: float64 by default (fast on an H100). ``dtype=torch.float32`` runs the same certificate in
float32: it certifies ``rtol`` only where the distance is large against float32 rounding of the scores
(roughly ``D >= 1e-3 x`` the data scale); other pairs end unconverged and are re-solved on the CPU. Memory:
pairs are processed in chunks whose gathered blocks (``[P, n_A + n_B + corral, d]``) and corral Gram blocks
stay under ``memory_bytes`` (default 4 GiB on CUDA, 256 MiB on the CPU; corrals are counted at 64 points,
their capacity grows only as needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TorchSolveStats", "resolve_device", "solve_pairs_torch"]

_RIDGE = 1e-10  # ridge of the corral's Gram matrix, relative to the data scale squared
_REFINE = 2  # iterative-refinement steps of the affine solve (removes the ridge's bias)


@dataclass
class TorchSolveStats:
    """Counters of one :func:`solve_pairs_torch` call: chunks, major and minor steps (summed over chunks, each
    a batched step over the chunk's live pairs), device."""

    chunks: int = 0
    majors: int = 0
    minors: int = 0
    device: str = ""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None: CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return dev


class _Batch:
    """The live pairs of one chunk: gathered blocks ``A`` ``[P, nA, d]`` / ``B`` ``[P, nB, d]`` (padded,
    masks ``mA``/``mB``), and the corral: slot points ``Z`` ``[P, S, d]`` (signed: side B enters as ``-b``),
    local ids ``idx`` ``[P, S]`` (``< nA``: row of A, else ``nA + row`` of B), ``live`` bool ``[P, S]``,
    weights ``w`` ``[P, S]``, Gram ``G`` ``[P, S, S]`` of the slot points, ``inc`` bool ``[P, nA + nB]``
    (point in the corral), ``ids`` int64 ``[P]`` chunk-local pair ids."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor, mA: torch.Tensor, mB: torch.Tensor) -> None:
        P, nA, d = A.shape
        nB = B.shape[1]
        dev, dt = A.device, A.dtype
        self.A, self.B, self.mA, self.mB = A, B, mA, mB
        self.Z = torch.zeros(P, 0, d, dtype=dt, device=dev)
        self.idx = torch.zeros(P, 0, dtype=torch.int64, device=dev)
        self.live = torch.zeros(P, 0, dtype=torch.bool, device=dev)
        self.w = torch.zeros(P, 0, dtype=dt, device=dev)
        self.G = torch.zeros(P, 0, 0, dtype=dt, device=dev)
        self.inc = torch.zeros(P, nA + nB, dtype=torch.bool, device=dev)
        self.ids = torch.arange(P, device=dev)

    def keep(self, k: torch.Tensor) -> None:
        for name in ("A", "B", "mA", "mB", "Z", "idx", "live", "w", "G", "inc", "ids"):
            setattr(self, name, getattr(self, name)[k])

    def x(self) -> torch.Tensor:
        """``x = sum_k w_k z_k``: ``[P, d]``."""
        return torch.bmm(self.w[:, None, :], self.Z)[:, 0]

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Signed scores ``[<a_i, x>..., <-b_j, x>...]``: ``[P, nA + nB]`` (+inf on padding)."""
        xx = x[:, :, None]
        s = torch.cat([torch.bmm(self.A, xx)[:, :, 0], -torch.bmm(self.B, xx)[:, :, 0]], 1)
        return torch.where(torch.cat([self.mA, self.mB], 1), s, torch.full_like(s, torch.inf))

    def compact(self, extra: int) -> None:
        """Live slots first, then room for ``extra`` more slots (capacity = max live count + extra)."""
        P, S = self.live.shape
        order = torch.argsort((~self.live).to(torch.int32), dim=1, stable=True)
        cap = int(self.live.sum(1).max()) if P else 0
        cap = cap + extra
        order = order[:, : min(cap, S)]
        self.idx = torch.gather(self.idx, 1, order)
        self.live = torch.gather(self.live, 1, order)
        self.w = torch.gather(self.w, 1, order)
        d = self.Z.shape[2]
        self.Z = torch.gather(self.Z, 1, order[:, :, None].expand(-1, -1, d))
        self.G = torch.gather(
            torch.gather(self.G, 1, order[:, :, None].expand(-1, -1, S)),
            2,
            order[:, None, :].expand(-1, order.shape[1], -1),
        )
        if cap > self.live.shape[1]:
            n = cap - self.live.shape[1]
            P_, S_ = self.live.shape
            dev, dt = self.Z.device, self.Z.dtype
            self.idx = torch.cat([self.idx, torch.zeros(P_, n, dtype=torch.int64, device=dev)], 1)
            self.live = torch.cat([self.live, torch.zeros(P_, n, dtype=torch.bool, device=dev)], 1)
            self.w = torch.cat([self.w, torch.zeros(P_, n, dtype=dt, device=dev)], 1)
            self.Z = torch.cat([self.Z, torch.zeros(P_, n, d, dtype=dt, device=dev)], 1)
            G = torch.zeros(P_, cap, cap, dtype=dt, device=dev)
            G[:, :S_, :S_] = self.G
            self.G = G

    def add(self, cand: torch.Tensor, ok: torch.Tensor) -> None:
        """Put local points ``cand`` (int64 ``[P, k]``, used where ``ok``) into free slots (weight 0) and
        extend the Gram block. Requires ``compact(k)`` first (free slots after the live ones)."""
        P, S = self.live.shape
        k = cand.shape[1]
        nA = self.A.shape[1]
        d = self.Z.shape[2]
        n_live = self.live.sum(1)
        # slot of the j-th accepted candidate: n_live + (rank of j among the accepted)
        rank = torch.cumsum(ok.to(torch.int64), 1) - 1
        slot = torch.where(ok, n_live[:, None] + rank, torch.full_like(rank, S))  # S: discarded
        ok = ok & (slot < S)
        slot = torch.where(ok, slot, torch.zeros_like(slot))
        is_a = cand < nA
        ra = torch.where(is_a, cand, torch.zeros_like(cand))
        rb = torch.where(is_a, torch.zeros_like(cand), cand - nA)
        za = torch.gather(self.A, 1, ra[:, :, None].expand(-1, -1, d))
        zb = -torch.gather(self.B, 1, rb[:, :, None].expand(-1, -1, d))
        znew = torch.where(is_a[:, :, None], za, zb)  # [P, k, d]
        for j in range(k):
            rows = torch.nonzero(ok[:, j])[:, 0]
            if rows.numel() == 0:
                continue
            sl = slot[rows, j]
            self.Z[rows, sl] = znew[rows, j]
            self.idx[rows, sl] = cand[rows, j]
            self.live[rows, sl] = True
            self.w[rows, sl] = 0.0
            self.inc[rows, cand[rows, j]] = True
        # Gram rows/columns of the new slots (all slots; dead ones are masked later)
        gnew = torch.bmm(znew, self.Z.transpose(1, 2))  # [P, k, S]
        for j in range(k):
            rows = torch.nonzero(ok[:, j])[:, 0]
            if rows.numel() == 0:
                continue
            sl = slot[rows, j]
            self.G[rows, sl, :] = gnew[rows, j]
            self.G[rows, :, sl] = gnew[rows, j]


def _affine(bt: _Batch, nA: int, cc: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Affine minimiser of every corral (``[P, S]`` weights summing to 1 per side, 0 on dead slots) and a
    bool ``[P]`` flag of pairs where the solve succeeded."""
    P, S = bt.live.shape
    dt, dev = bt.w.dtype, bt.w.device
    live = bt.live
    side_a = (bt.idx < nA) & live
    E = torch.stack([side_a, live & ~side_a], 2).to(dt)  # [P, S, 2]
    both = live[:, :, None] & live[:, None, :]
    Gm = torch.where(both, bt.G + cc * (E @ E.transpose(1, 2)), torch.zeros_like(bt.G))
    Gm = Gm + torch.diag_embed((~live).to(dt))
    Gr = Gm + (_RIDGE * cc) * torch.eye(S, dtype=dt, device=dev)
    L, info = torch.linalg.cholesky_ex(Gr)
    good = info == 0
    eye = torch.eye(S, dtype=dt, device=dev).expand(P, S, S)
    L = torch.where(good[:, None, None], L, eye)

    def solve(r: torch.Tensor) -> torch.Tensor:
        y = torch.linalg.solve_triangular(L, r, upper=False)
        return torch.linalg.solve_triangular(L.transpose(1, 2), y, upper=True)

    U = solve(E)
    for _ in range(_REFINE):
        U = U + solve(E - Gm @ U)
    M = E.transpose(1, 2) @ U  # [P, 2, 2]
    m11, m22 = M[:, 0, 0], M[:, 1, 1]
    m12 = 0.5 * (M[:, 0, 1] + M[:, 1, 0])
    det = m11 * m22 - m12 * m12
    good = good & torch.isfinite(det) & (det.abs() > 0)
    det = torch.where(good, det, torch.ones_like(det))
    v = ((m22 - m12) / det)[:, None] * U[:, :, 0] + ((m11 - m12) / det)[:, None] * U[:, :, 1]
    return torch.where(live, v, torch.zeros_like(v)), good


def _minor(
    bt: _Batch, nA: int, cc: float, todo: torch.Tensor, max_steps: int, stats: TorchSolveStats
) -> None:
    """Wolfe's minor cycles for the pairs flagged ``todo`` (bool ``[P]``): the corral's affine minimiser,
    or a step back to the boundary that drops the blocking point, until the minimiser is feasible."""
    for _ in range(max_steps):
        if not bool(todo.any()):
            return
        stats.minors += 1
        v, good = _affine(bt, nA, cc)
        todo = todo & good
        live = bt.live
        feas = ((v > 0) | ~live).all(1)
        fin = todo & feas
        bt.w = torch.where(fin[:, None], v, bt.w)
        step = todo & ~feas
        neg = live & (v <= 0)
        ratio = torch.where(neg, bt.w / (bt.w - v).clamp(min=1e-300), torch.full_like(v, torch.inf))
        theta, kb = ratio.min(1)
        theta = theta.clamp(0.0, 1.0)
        wn = bt.w + theta[:, None] * (v - bt.w)
        wn = torch.where(live, wn.clamp(min=0.0), torch.zeros_like(wn))
        wn.scatter_(1, kb[:, None], 0.0)
        # drop the blocking point and any other that reached 0 with v <= 0, keeping one per side
        dead = live & (wn <= 1e-15) & (v <= 0)
        side_a = bt.idx < nA
        na_left = (live & side_a & ~dead).sum(1)
        nb_left = (live & ~side_a & ~dead).sum(1)
        dead = torch.where(((na_left > 0) & (nb_left > 0))[:, None], dead, torch.zeros_like(dead))
        dead = dead & step[:, None]
        w = torch.where(step[:, None], wn, bt.w)
        w = torch.where(dead, torch.zeros_like(w), w)
        # renormalise each side
        sa = torch.where(side_a & live, w, torch.zeros_like(w)).sum(1, keepdim=True).clamp(min=1e-300)
        sb = torch.where(~side_a & live, w, torch.zeros_like(w)).sum(1, keepdim=True).clamp(min=1e-300)
        w = torch.where(step[:, None], torch.where(side_a, w / sa, w / sb), w)
        bt.w = torch.where(live & ~dead, w, torch.zeros_like(w))
        rows, cols = torch.nonzero(dead, as_tuple=True)
        bt.inc[rows, bt.idx[rows, cols]] = False
        bt.live = live & ~dead
        todo = step


def _solve_chunk(
    bt: _Batch,
    *,
    rtol: float,
    atol: float,
    cc: float,
    max_iter: int,
    add_per_side: int,
    max_corral: int,
    stats: TorchSolveStats,
) -> tuple[np.ndarray, ...]:
    """Batched Wolfe for one chunk. Returns numpy ``[P]`` arrays (distance, lower, gap, converged, overlap,
    iterations). max_corral: the most points a corral may hold; no ``d + 2`` cap as in the compiled solver,
    because points are added without an independence test here (duplicates and other affinely dependent
    points enter the corral; the ridge and the refinement keep the affine solve exact in ``x``)."""
    P, nA, d = bt.A.shape
    dt, dev = bt.A.dtype, bt.A.device
    out_ub2 = torch.full((P,), torch.inf, dtype=dt, device=dev)
    out_lb = torch.zeros(P, dtype=dt, device=dev)
    out_conv = torch.zeros(P, dtype=torch.bool, device=dev)
    out_it = torch.zeros(P, dtype=torch.int64, device=dev)
    k = max(1, int(add_per_side))
    atol2 = atol * atol
    # start: the centroid difference's extreme points (one per side), weight 1
    ca = (bt.A * bt.mA[:, :, None]).sum(1) / bt.mA.sum(1, keepdim=True)
    cb = (bt.B * bt.mB[:, :, None]).sum(1) / bt.mB.sum(1, keepdim=True)
    s0 = bt.scores(ca - cb)
    first = torch.stack([s0[:, :nA].argmin(1), nA + s0[:, nA:].argmin(1)], 1)
    bt.compact(2)
    bt.add(first, torch.ones_like(first, dtype=torch.bool))
    bt.w = bt.live.to(dt)
    prev = torch.full((P,), torch.inf, dtype=dt, device=dev)
    stall = torch.zeros(P, dtype=torch.int64, device=dev)
    done = torch.zeros(P, dtype=torch.bool, device=dev)  # finished pairs still in the batch (frozen)
    it = 0
    while bt.ids.numel():
        stats.majors += 1
        x = bt.x()
        s = bt.scores(x)
        nx2 = (x * x).sum(1)
        mx = s[:, :nA].min(1).values + s[:, nA:].min(1).values
        nx = torch.sqrt(nx2)
        ids = bt.ids
        ub2 = torch.minimum(out_ub2[ids], nx2)
        lb = torch.maximum(out_lb[ids], torch.where(nx > 0, mx / nx.clamp(min=1e-300), torch.zeros_like(nx)))
        ub = torch.sqrt(ub2)
        conv = (ub - lb <= rtol * ub) | (ub2 <= atol2)
        upd = ~done
        out_ub2[ids] = torch.where(upd, ub2, out_ub2[ids])
        out_lb[ids] = torch.where(upd, lb, out_lb[ids])
        out_it[ids] = torch.where(upd, torch.full_like(out_it[ids], it), out_it[ids])
        out_conv[ids] = torch.where(upd, conv, out_conv[ids])
        stall = torch.where(nx2 >= prev * (1.0 - 1e-13), stall + 1, torch.zeros_like(stall))
        prev = nx2
        done = done | conv | (stall >= 3)
        if it >= max_iter or bool(done.all()):
            break
        # finished pairs stay in the batch, frozen, until dropping them pays for the copy of the blocks
        n_done = int(done.sum())
        if n_done * 4 >= done.numel():
            keep = torch.nonzero(~done)[:, 0]
            bt.keep(keep)
            s, stall, prev, x, done = s[keep], stall[keep], prev[keep], x[keep], done[keep]
        it += 1
        # levels of the corral per side and the most violating points outside it
        live = bt.live
        side_a = bt.idx < nA
        sc = torch.gather(s, 1, bt.idx)
        mu_a = torch.where(live & side_a, bt.w * sc, torch.zeros_like(sc)).sum(1)
        mu_b = torch.where(live & ~side_a, bt.w * sc, torch.zeros_like(sc)).sum(1)
        so = torch.where(bt.inc, torch.full_like(s, torch.inf), s)
        ka, kb_ = min(k, nA), min(k, s.shape[1] - nA)
        va, ia = torch.topk(so[:, :nA], ka, dim=1, largest=False)
        vb, ib = torch.topk(so[:, nA:], kb_, dim=1, largest=False)
        cand = torch.cat([ia, nA + ib], 1)
        viol = torch.cat([va - mu_a[:, None], vb - mu_b[:, None]], 1)
        scale = torch.maximum(mu_a.abs() + mu_b.abs(), (x * x).sum(1))[:, None]
        ok = (viol < -1e-14 * scale) & torch.isfinite(viol) & ~done[:, None]
        room = (max_corral - bt.live.sum(1))[:, None]
        ok = ok & (torch.cumsum(ok.to(torch.int64), 1) <= room)
        none = ~ok.any(1)
        stall = torch.where(none & ~done, stall + 3, stall)
        bt.compact(cand.shape[1])
        bt.add(cand, ok)
        _minor(bt, nA, cc, ~none & ~done, max_steps=max_corral + 8, stats=stats)
    nx = np.sqrt(np.maximum(out_ub2.cpu().numpy(), 0.0))
    ovl = nx <= atol
    lower = np.where(ovl, 0.0, np.minimum(out_lb.cpu().numpy(), nx))
    gap = (nx - lower) * nx  # = ||x||^2 - m(x) when both bounds come from the same iterate
    conv_np = out_conv.cpu().numpy() | ovl
    dist = np.where(ovl, 0.0, nx)
    return dist, lower, gap, conv_np, ovl, out_it.cpu().numpy()


def solve_pairs_torch(
    X: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
    *,
    rtol: float,
    atol: float,
    max_iter: int = 1000,
    add_per_side: int = 4,
    device: str | torch.device | None = "auto",
    dtype: torch.dtype = torch.float64,
    memory_bytes: int | None = None,
    stats: TorchSolveStats | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-norm point of ``conv(block pa[p]) - conv(block pb[p])`` for every pair p, batched.

    X: float ``[N, d]`` points (centred; block c = ``X[starts[c] : starts[c] + sizes[c]]``); pa, pb: int64
    ``[P]`` block ids. Returns numpy ``[P]`` arrays (distance, lower, gap, converged, overlap, iterations)
    with the meaning of :class:`tuneprobe.directprobe.hulls.PairDistances`.
    """
    dev = resolve_device(device)
    stats = stats if stats is not None else TorchSolveStats()
    stats.device = str(dev)
    Pn = int(pa.shape[0])
    out = (
        np.full(Pn, np.nan),
        np.full(Pn, np.nan),
        np.full(Pn, np.nan),
        np.zeros(Pn, dtype=bool),
        np.zeros(Pn, dtype=bool),
        np.zeros(Pn, dtype=np.int64),
    )
    if Pn == 0:
        return out
    X = np.asarray(X)
    N, d = X.shape
    cc = max(float(np.einsum("nd,nd->n", X, X).max(initial=0.0)), 1e-300)
    Xt = torch.cat([torch.as_tensor(np.ascontiguousarray(X)), torch.zeros(1, d, dtype=torch.float64)]).to(
        device=dev, dtype=dtype
    )  # row N: padding
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    na, nb = sizes[pa], sizes[pb]
    order = np.lexsort((nb, -na - nb))  # big pairs first: chunks of similar padded sizes
    if memory_bytes is None:
        memory_bytes = (4 << 30) if dev.type == "cuda" else (256 << 20)
    item = torch.finfo(dtype).bits // 8
    i = 0
    while i < Pn:
        j = i
        mA = mB = 0
        while j < Pn:
            q = order[j]
            a2, b2 = max(mA, int(na[q])), max(mB, int(nb[q]))
            corral = min(a2 + b2, d + 2, 64)  # typical corral; capacity grows only as needed
            per_pair = ((a2 + b2 + corral) * d + 4 * corral * corral) * item
            if j > i and (j - i + 1) * per_pair > memory_bytes:
                break
            mA, mB = a2, b2
            j += 1
        sel = order[i:j]
        ar_a = np.arange(mA)
        ar_b = np.arange(mB)
        ia = starts[pa[sel]][:, None] + ar_a[None, :]
        ib = starts[pb[sel]][:, None] + ar_b[None, :]
        va = ar_a[None, :] < na[sel][:, None]
        vb = ar_b[None, :] < nb[sel][:, None]
        ia_t = torch.as_tensor(np.where(va, ia, N), device=dev)
        ib_t = torch.as_tensor(np.where(vb, ib, N), device=dev)
        bt = _Batch(Xt[ia_t], Xt[ib_t], torch.as_tensor(va, device=dev), torch.as_tensor(vb, device=dev))
        res = _solve_chunk(
            bt,
            rtol=rtol,
            atol=atol,
            cc=cc,
            max_iter=max_iter,
            add_per_side=add_per_side,
            max_corral=mA + mB,
            stats=stats,
        )
        for o, r in zip(out, res, strict=True):
            o[sel] = r
        stats.chunks += 1
        del bt
        i = j
    return out
