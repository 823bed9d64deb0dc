"""The DirectProbe search engine (private helper of ``cluster``): state checks, the unchecked run, G.

Overlap checks are organised so that almost every pair is answered by a batched certificate:

* **batched projection** (the ``projection`` certificate for many pairs at once): for a pair (P, Q) the normal
  is ``w = c_P - c_Q``; with ``own[x] = x·c_{cluster(x)}`` and a GEMM of points against centroids, ``min_{x in
  P} w·x`` and ``max_{x in Q} w·x`` of *every* point of both clusters come out of one matrix product and a
  segmented min/max. The pair is certified iff ``min_P - max_Q > tau``, ``tau = 4e-9 * max|x| * (|c_P| +
  |c_Q|)``, which exceeds the float64 error of the two dot products by orders of magnitude. It strictly
  dominates the bounding-sphere test (same normal, exact extents instead of radii). In G the normals
  ``c_M - c_Q``, ``c_a - c_Q`` and ``c_b - c_Q`` (M = a ∪ b) are all tried, from an ``n x K`` table of dot
  products when it fits in memory; otherwise balls are tested first (one GEMV) and the projections are
  computed only where the balls meet.
* **multiclass** model over the clusters still involved (state checks), then per pair: **cached** hyperplanes
  (a plane that separated one part of a merged cluster from Q, re-checked on the other part), **affine**
  (Cover), **gilbert**, **svm**, and the **LP**. Only an infeasible LP answers "overlap".

State checks use monotonicity: if state ``base`` is clean, every pair of clusters that exists unchanged in a
later state is separable, so only pairs involving a cluster created after ``base`` are examined.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ._agglo import LabelQueue
from ._warm_lp import WarmSeparator
from ._warm_lp import available as warm_available
from .separability import (
    SEPARATION_RTOL,
    SPHERE_RTOL,
    MulticlassCertificate,
    SeparabilityStats,
    affine_certificate,
    direction_certificate,
    gilbert_certificate,
    lp_separate,
    svm_certificate,
)

if TYPE_CHECKING:
    from .cluster import DirectProbe

_BLOCK_BYTES = 128 * 2**20
_WITNESS_ROWS = 20_000_000
"""Most row indices kept in overlap witnesses during G (160 MB)."""


class BudgetExceeded(Exception):
    """The fit's ``max_seconds`` ran out; ``args[0]`` is the phase it was in."""


class SearchMismatch(Exception):
    """The shortcut's preconditions failed (ordering or oracle inconsistency); G is rerun from scratch."""


def replay(n: int, log_a: np.ndarray, log_b: np.ndarray, k: int) -> np.ndarray:
    """Root ``[n]`` (smallest member index of its cluster) of every point after the first k logged merges.

    ``log_a[t] < log_b[t]`` are the smallest member indices of the two clusters merged at step t (union-find
    by pointer jumping, O(n log k)).
    """
    parent = np.arange(n, dtype=np.int64)
    parent[log_b[:k]] = log_a[:k]
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent
        parent = nxt


def whiten(X: np.ndarray) -> np.ndarray:
    """PCA-whitened copy ``[n, d]`` of X ``[n, d]`` (eigenvalues floored at 1e-10 of the largest).

    An invertible affine map, so linear separability is unchanged; every certificate and LP runs on these
    coordinates, where the centroid-difference direction is the LDA-like ``Sigma^-1 (c_P - c_Q)`` of the
    original space and the LP is well conditioned. The merge order always uses the original coordinates.
    """
    n, d = X.shape
    if n < 2:
        return X.copy()
    mu = X.mean(axis=0)
    Xc = X - mu
    ev, U = np.linalg.eigh(Xc.T @ Xc / n)
    top = float(ev.max())
    if top <= 0:
        return Xc
    T = U / np.sqrt(np.maximum(ev, top * 1e-10))
    return Xc @ T


class Oracle:
    """Per-pair overlap test (certificates, then the LP) and the counters of one fit."""

    def __init__(self, X: np.ndarray, gid: np.ndarray, cache_limit: int = 100_000) -> None:
        self.X = X
        self.warm: WarmSeparator | None = None
        self.warm_key: tuple[int, int] | None = None
        self.gid = gid
        self.xmax = float(np.sqrt(np.einsum("ij,ij->i", X, X).max())) if X.size else 0.0
        self.stats = SeparabilityStats()
        self.cache: dict[tuple[int, int], tuple[np.ndarray, float, float]] = {}
        self.cache_limit = cache_limit
        self.witness: tuple[np.ndarray, np.ndarray] | None = None

    def single_id(self, members: np.ndarray) -> int:
        """Duplicate-group id if every member is the same vector, else -1."""
        g = self.gid[members]
        return int(g[0]) if (g == g[0]).all() else -1

    def store(self, ua: int, ub: int, h: tuple[np.ndarray, float, float]) -> None:
        """Remember normal w and the extents ``lo = min_A w·x > hi = max_B w·x`` for clusters (uid) ua, ub."""
        if len(self.cache) < self.cache_limit:
            self.cache[(ua, ub)] = h

    def get(self, ua: int, ub: int) -> tuple[np.ndarray, float, float] | None:
        h = self.cache.get((ua, ub))
        if h is not None:
            return h
        h = self.cache.get((ub, ua))
        if h is not None:
            return -h[0], -h[2], -h[1]
        return None

    def extents(self, w: np.ndarray, A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, float, float]:
        return w, float((self.X[A] @ w).min()), float((self.X[B] @ w).max())

    def _clear(self, w: np.ndarray, lo: float, hi: float) -> bool:
        """The threshold ``b = -(lo + hi) / 2`` clears every point by the documented margin."""
        b = -0.5 * (lo + hi)
        return 0.5 * (lo - hi) > SEPARATION_RTOL * (float(np.linalg.norm(w)) * self.xmax + abs(b))

    def extend(self, ua: int, ub: int, extra: np.ndarray) -> tuple[np.ndarray, float, float] | None:
        """Cached plane of (ua, ub) re-checked after rows ``extra`` joined ua (only they are projected)."""
        h = self.get(ua, ub)
        if h is None:
            return None
        w, lo, hi = h
        lo = min(lo, float((self.X[extra] @ w).min()))
        if lo > hi and self._clear(w, lo, hi):
            self.stats.answered["cached"] += 1
            return w, lo, hi
        return None

    def pair(
        self,
        A: np.ndarray,
        B: np.ndarray,
        hints: list[np.ndarray] | None = None,
        warm_keys: list[tuple[int, int]] | None = None,
    ) -> tuple[bool, tuple[np.ndarray, float] | None]:
        """Are the hulls of rows A and rows B (index arrays) disjoint? Returns (separable, hyperplane).

        ``hints``: normals to try first (each with its best threshold), e.g. cached planes of sub-clusters.
        ``warm_keys``: keys of kept LP models for this pair (``_warm_lp``), tried before the cold LP when
        ``self.warm`` is set; ``self.warm_key`` then names the model that answered (else None).
        After an overlap, ``self.witness`` holds the rows of A and of B whose LP alone was infeasible.
        """
        st = self.stats.answered
        hints = hints or []
        self.warm_key = None
        XA, XB = self.X[A], self.X[B]
        for w in hints:
            h2 = direction_certificate(w, XA, XB)
            if h2 is not None:
                st["cached"] += 1
                return True, h2
        if A.size + B.size <= self.X.shape[1] + 1:
            h = affine_certificate(XA, XB)
            if h is not None:
                st["affine"] += 1
                return True, h
        h = gilbert_certificate(XA, XB, z0=hints[0] if hints else None)
        if h is not None:
            st["gilbert"] += 1
            return True, h
        h = svm_certificate(XA, XB, stats=self.stats)
        if h is not None:
            st["svm"] += 1
            return True, h
        if self.warm is not None and warm_keys:
            n0, t0 = self.warm.solves, self.warm.seconds
            h, self.warm_key = self.warm.separate(A, B, warm_keys, direction=hints[0] if hints else None)
            self.stats.warm_solves += self.warm.solves - n0
            self.stats.warm_seconds += self.warm.seconds - t0
            if h is not None:
                st["warm_lp"] += 1
                return True, h
        r = lp_separate(XA, XB, self.stats)
        self.witness = None
        if r.separable is False and r.witness_a is not None and r.witness_b is not None:
            self.witness = (A[r.witness_a], B[r.witness_b])
        if r.separable is None:
            raise RuntimeError(f"HiGHS gave no verdict on clusters of sizes {A.size}, {B.size}: {r.message}")
        st["lp"] += 1
        if r.separable:
            assert r.w is not None
            return True, (r.w, r.b)
        return False, None


def _segment_min(V: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.minimum.reduceat(V, starts, axis=0)


class Engine:
    """One fit: X float64 ``[n, d]``, y int64 ``[n]``, gid int64 ``[n]`` (duplicate groups)."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        gid: np.ndarray,
        opts: DirectProbe,
        stats: dict[str, Any],
        deadline: float | None = None,
    ):
        self.X = X
        self.y = y
        self.gid = gid
        self.opts = opts
        self.stats = stats
        self.n = X.shape[0]
        self.labels = np.unique(y)
        self.label_rows = {int(lab): np.flatnonzero(y == lab) for lab in self.labels}
        self.Xw = whiten(X)
        self.oracle = Oracle(self.Xw, gid)
        self._uid = 0
        # time budget (``time.perf_counter()`` deadline) and the finest-known clean partition to fall back on
        self.deadline = deadline
        self.phase = "end_check"
        self.partial = np.arange(self.n, dtype=np.int64)

    def _bar(self, total: int | None, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.opts.progress, leave=False)

    def _tick(self, key: str, t0: float) -> None:
        tm = self.stats.setdefault("seconds_detail", {})
        tm[key] = round(tm.get(key, 0.0) + time.perf_counter() - t0, 4)

    def _budget(self) -> None:
        """Raise :class:`BudgetExceeded` once the deadline has passed (called between units of work: LPs,
        state checks, merges)."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise BudgetExceeded(self.phase)

    # ------------------------------------------------------------------------------------ top level
    def run(self) -> np.ndarray:
        """Root (smallest member) ``[n]`` of every point's final cluster.

        With a deadline, a run that reaches it stops between two units of work and returns the finest clean
        partition it knows instead: the current state of G, else the last clean state of the search, else
        singletons. It is label-pure and overlap-free, and G's result would coarsen it. ``stats`` then holds
        ``finished=False``, ``stopped_in`` (``end_check``, ``unchecked``, ``search``, ``label_pairs`` or
        ``forward``) and, from G, ``pairs_left``: same-label cluster pairs not yet decided, each of which a
        finished run would still pop and check (a lower bound on the checks left).
        """
        try:
            root = self._run()
        except BudgetExceeded:
            self.stats["finished"] = False
            self.stats["stopped_in"] = self.phase
            if self.phase == "forward":
                self.stats["pairs_left"] = int(sum(q.pairs_left() for q in self.queues.values()))
                return self.cl_of.copy()
            return self.partial.copy()
        self.stats["finished"] = True
        return root

    def _run(self) -> np.ndarray:
        n = self.n
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        singletons = np.arange(n, dtype=np.int64)
        if self.opts.search == "naive":
            t0 = time.perf_counter()
            root = self.forward(singletons)
            self.stats["seconds_forward"] = round(time.perf_counter() - t0, 4)
            return root
        # 1. the label partition (the end state of U, whatever U's order)
        t0 = time.perf_counter()
        label_root = np.empty(n, dtype=np.int64)
        for rows in self.label_rows.values():
            label_root[rows] = rows[0]
        clean_end = self.check_state(label_root, singletons)
        self.stats["seconds_end_check"] = round(time.perf_counter() - t0, 4)
        self.stats["end_state_clean"] = clean_end
        if clean_end:
            self.stats["k_star"] = None
            return label_root
        # 2. the unchecked run U
        t0 = time.perf_counter()
        self.phase = "unchecked"
        log_a, log_b = self.unchecked_run()
        m = int(log_a.size)
        self.stats["seconds_unchecked"] = round(time.perf_counter() - t0, 4)
        self.stats["n_unchecked_merges"] = m
        # 3. first overlapping state: gallop from the clean state 0, then bisect; each check relative to the
        # last clean
        t0 = time.perf_counter()
        self.phase = "search"
        lo, lo_root, hi = 0, singletons, m
        checks: list[tuple[int, bool]] = []
        step = 1
        with self._bar(None, "first overlapping state (state checks)") as bar:
            while lo + step < hi:
                cand = lo + step
                r = replay(n, log_a, log_b, cand)
                clean = self.check_state(r, lo_root)
                checks.append((cand, clean))
                bar.update(1)
                bar.set_postfix(clean=lo, overlap=hi if hi < m else "?", checked=cand)
                if clean:
                    lo, lo_root = cand, r
                    self.partial = r
                    step *= 2
                else:
                    hi = cand
                    break
            while hi - lo > 1:
                mid = (lo + hi) // 2
                r = replay(n, log_a, log_b, mid)
                clean = self.check_state(r, lo_root)
                checks.append((mid, clean))
                if clean:
                    lo, lo_root = mid, r
                    self.partial = r
                else:
                    hi = mid
                bar.update(1)
                bar.set_postfix(clean=lo, overlap=hi)
        k_star = hi
        self.stats["k_star"] = int(k_star)
        self.stats["search_checks"] = checks
        self.stats["seconds_search"] = round(time.perf_counter() - t0, 4)
        # 4. G from state k*-1; its first pop must be U's merge k*, and it must be rejected
        t0 = time.perf_counter()
        expect = (int(log_a[k_star - 1]), int(log_b[k_star - 1]))
        try:
            root = self.forward(lo_root, expect_first_rejected=expect, legacy=self.opts.legacy_forward_loop)
            self.stats["search_fallback"] = False
        except SearchMismatch as e:
            self.stats["search_fallback"] = str(e)
            root = self.forward(singletons)
        self.stats["seconds_forward"] = round(time.perf_counter() - t0, 4)
        return root

    # ------------------------------------------------------------------------------------ U
    def unchecked_run(self) -> tuple[np.ndarray, np.ndarray]:
        """Merge log of U: ``(log_a, log_b)`` int64 ``[m]``, smallest member indices (a < b) of each merged
        pair."""
        queues = {lab: LabelQueue(self.X, rows) for lab, rows in self.label_rows.items()}
        heap: list[tuple[float, int, int, int]] = []
        for lab, q in queues.items():
            h = q.head()
            if h is not None:
                heapq.heappush(heap, (h[0], int(q.idx[h[1]]), int(q.idx[h[2]]), lab))
        m = self.n - len(queues)
        log_a = np.empty(m, dtype=np.int64)
        log_b = np.empty(m, dtype=np.int64)
        t = 0
        with self._bar(m, "unchecked merges") as bar:
            while heap:
                _, ga, gb, lab = heapq.heappop(heap)
                q = queues[lab]
                i = int(np.searchsorted(q.idx, ga))
                j = int(np.searchsorted(q.idx, gb))
                q.merge(i, j)
                log_a[t], log_b[t] = ga, gb
                t += 1
                if t % 256 == 0:
                    self._budget()
                bar.update(1)
                h = q.head()
                if h is not None:
                    heapq.heappush(heap, (h[0], int(q.idx[h[1]]), int(q.idx[h[2]]), lab))
        assert t == m
        return log_a, log_b

    # ------------------------------------------------------------------------------------ state check
    def check_state(self, root: np.ndarray, base: np.ndarray) -> bool:
        """Is the partition ``root`` ``[n]`` overlap-free, given that the finer partition ``base`` ``[n]``
        is?"""
        X = self.Xw
        n = self.n
        t0 = time.perf_counter()
        order = np.argsort(root, kind="stable")
        rs = root[order]
        starts = np.flatnonzero(np.r_[True, rs[1:] != rs[:-1]])
        K = int(starts.size)
        sizes = np.diff(np.r_[starts, n])
        cid = np.empty(n, dtype=np.int64)
        cid[order] = np.repeat(np.arange(K), sizes)
        lab = self.y[order[starts]]
        C = np.add.reduceat(X[order], starts, axis=0) / sizes[:, None]
        gmin = np.minimum.reduceat(self.gid[order], starts)
        gmax = np.maximum.reduceat(self.gid[order], starts)
        single = np.where(gmin == gmax, gmin, -1)
        changed = np.zeros(K, dtype=bool)
        np.logical_or.at(changed, cid, base != root)
        new = np.flatnonzero(changed)
        if new.size == 0:
            return True
        own = np.einsum("ij,ij->i", X, C[cid])
        cn = np.sqrt(np.einsum("ij,ij->i", C, C))
        xmax = self.oracle.xmax
        # D1[p, Q] = min_{x in P} (own[x] - x·c_Q) for new P; D2[Q, p] = min_{x in Q} (own[x] - x·c_P);
        # new clusters are processed in chunks so that memory stays O(n d + chunk K)
        isnew = np.zeros(K, dtype=bool)
        isnew[new] = True
        Xo, own_o = X[order], own[order]
        cum = np.r_[0, np.cumsum(sizes)]
        st = self.oracle.stats.answered
        chunk = max(1, min(new.size, _BLOCK_BYTES // (8 * max(K, n))))
        Pi_l, Pj_l, sc_l = [], [], []
        ar = np.arange(K)
        for c0 in range(0, new.size, chunk):
            nw = new[c0 : c0 + chunk]
            rows_new = np.concatenate([order[cum[k] : cum[k + 1]] for k in nw.tolist()])
            nstarts = np.r_[0, np.cumsum(sizes[nw])[:-1]]
            D1 = np.empty((nw.size, K))
            blk = max(1, _BLOCK_BYTES // (8 * max(rows_new.size, 1)))
            Xn, own_n = X[rows_new], own[rows_new]
            for s in range(0, K, blk):
                G = Xn @ C[s : s + blk].T
                np.subtract(own_n[:, None], G, out=G)
                D1[:, s : s + blk] = _segment_min(G, nstarts)
            D2 = np.empty((K, nw.size))
            blk = max(1, _BLOCK_BYTES // (8 * n))
            for s in range(0, nw.size, blk):
                G = Xo @ C[nw[s : s + blk]].T
                np.subtract(own_o[:, None], G, out=G)
                D2[:, s : s + blk] = _segment_min(G, starts)
            S = D1 + D2.T  # [chunk, K]
            del D1, D2
            tau = 2 * SEPARATION_RTOL * 4 * xmax * (cn[nw][:, None] + cn[None, :])
            diff = lab[nw][:, None] != lab[None, :]
            once = ~(isnew[None, :] & (ar[None, :] <= nw[:, None]))  # a pair of new clusters counts once
            diff &= once
            cand = (tau >= S) & diff
            tol = (single[nw][:, None] == single[None, :]) & (single[nw][:, None] >= 0)
            n_tol = int((cand & tol).sum())
            cand &= ~tol
            pi, pj = np.nonzero(cand)
            st["projection"] += int(diff.sum()) - n_tol - int(pi.size)
            st["duplicate"] += n_tol
            Pi_l.append(nw[pi])
            Pj_l.append(pj)
            sc_l.append(S[pi, pj])
        Pi = np.concatenate(Pi_l)
        Pj = np.concatenate(Pj_l)
        score = np.concatenate(sc_l) / np.maximum(np.sqrt(((C[Pi] - C[Pj]) ** 2).sum(axis=1)), 1e-300)
        self._tick("state_projection", t0)
        if Pi.size == 0:
            return True
        members = np.split(order, starts[1:])
        involved = np.unique(np.r_[Pi, Pj])
        self._budget()
        if 2 < involved.size <= self.opts.multiclass_max_classes:
            t0 = time.perf_counter()
            pos = np.full(K, -1)
            pos[involved] = np.arange(involved.size)
            mem = np.concatenate([members[k] for k in involved.tolist()])
            sub = pos[cid[mem]]
            mc = MulticlassCertificate()
            mc.fit(X[mem], sub, int(involved.size), self.oracle.stats, whiten=False)
            P = mc.pair_min_margins(X[mem], sub, int(involved.size))
            ok = (P[pos[Pi], pos[Pj]] > 0) & (P[pos[Pj], pos[Pi]] > 0)
            st["multiclass"] += int(ok.sum())
            Pi, Pj, score = Pi[~ok], Pj[~ok], score[~ok]
            self._tick("state_multiclass", t0)
        t0 = time.perf_counter()
        try:
            for t in np.argsort(score, kind="stable").tolist():
                self._budget()
                ok1, _ = self.oracle.pair(members[int(Pi[t])], members[int(Pj[t])])
                if not ok1:
                    return False
            return True
        finally:
            self._tick("state_pairs", t0)

    # ------------------------------------------------------------------------------------ label pairs
    def label_certificates(self) -> np.ndarray:
        """``ok[a, b]`` ``[L, L]`` (bool, symmetric, diagonal True): labels a and b (positions in
        ``self.labels``) have disjoint hulls, certified by a verified plane (projection on the centroid
        difference, the multiclass model over the labels, Gilbert, the SVM; never the LP, so "False" only
        means "not certified"). Every cluster of a is a subset of a's points, so such pairs need no check in
        G.
        """
        X = self.Xw
        L = int(self.labels.size)
        ok = np.eye(L, dtype=bool)
        if L < 2:
            return ok
        cid = np.searchsorted(self.labels, self.y)
        C = np.stack([X[self.label_rows[int(lab)]].mean(axis=0) for lab in self.labels.tolist()])
        st = self.oracle.stats.answered
        rt = 4 * SEPARATION_RTOL * self.oracle.xmax
        cn = np.sqrt(np.einsum("ij,ij->i", C, C))
        # projection: P[a, b] = min_{x in a} x·(c_a - c_b), computed label by label
        P = np.empty((L, L))
        for a in range(L):
            Xa = X[self.label_rows[int(self.labels[a])]]
            P[a] = (Xa @ (C[a][None, :] - C).T).min(axis=0)
        gap = P + P.T  # min_a x·(c_a - c_b) - max_b x·(c_a - c_b)
        proj = gap > rt * (cn[:, None] + cn[None, :])
        np.fill_diagonal(proj, False)
        st["projection"] += int(np.triu(proj, 1).sum())
        ok |= proj
        if not ok.all() and self.opts.multiclass_max_classes >= L:
            mc = MulticlassCertificate()
            mc.fit(X, cid, L, self.oracle.stats, whiten=False)
            Pm = mc.pair_min_margins(X, cid, L)
            mok = (Pm > 0) & (Pm.T > 0) & ~ok
            st["multiclass"] += int(np.triu(mok, 1).sum())
            ok |= mok
        for a, b in zip(*np.nonzero(np.triu(~ok, 1)), strict=True):
            self._budget()
            A = X[self.label_rows[int(self.labels[a])]]
            B = X[self.label_rows[int(self.labels[b])]]
            if gilbert_certificate(A, B) is not None:
                st["gilbert"] += 1
            elif svm_certificate(A, B, stats=self.oracle.stats) is not None:
                st["svm"] += 1
            else:
                continue
            ok[a, b] = ok[b, a] = True
        return ok

    # ------------------------------------------------------------------------------------ G
    def forward(
        self, root: np.ndarray, expect_first_rejected: tuple[int, int] | None = None, legacy: bool = False
    ) -> np.ndarray:
        """Run G from the partition ``root`` ``[n]`` (smallest member of each point's cluster); return the
        final roots."""
        X = self.X
        n = self.n
        queues: dict[int, LabelQueue] = {}
        for lab, rows in self.label_rows.items():
            part = np.searchsorted(rows, root[rows])
            queues[lab] = LabelQueue(X, rows, part=part, keep_members=True)
        self.queues = queues
        # global per-slot state (slot = smallest member index of a cluster), in whitened coordinates
        Xw = self.Xw
        self.Cg = np.zeros_like(Xw)
        self.act = np.zeros(n, dtype=bool)
        self.lab_g = self.y.copy()
        self.cl_of = root.astype(np.int64).copy()
        self.uid = np.zeros(n, dtype=np.int64)
        self.single = np.full(n, -1, dtype=np.int64)
        for q in queues.values():
            assert q.members is not None
            for s in np.flatnonzero(q.active).tolist():
                g = int(q.idx[s])
                mem = q.members[s]
                assert mem is not None
                self.Cg[g] = Xw[mem].mean(axis=0)
                self.act[g] = True
                self._uid += 1
                self.uid[g] = self._uid
                self.single[g] = self.oracle.single_id(mem)
        slots = np.flatnonzero(self.act)
        self.rad = np.zeros(n)
        dev = np.sqrt(((Xw - self.Cg[self.cl_of]) ** 2).sum(axis=1))
        np.maximum.at(self.rad, self.cl_of, dev)
        self.cnorm2 = np.einsum("ij,ij->i", self.Cg, self.Cg)
        # dot products of every point with every centroid, one column per starting cluster, if it fits in
        # memory
        self.col = np.full(n, -1, dtype=np.int64)
        self.Gmat: np.ndarray | None = None
        if self.opts.forward_check != "sphere" and n * slots.size * 8 <= self.opts.max_gram_bytes:
            self.col[slots] = np.arange(slots.size)
            self.Gmat = Xw @ self.Cg[slots].T
            self.own = self.Gmat[np.arange(n), self.col[self.cl_of]].copy()
            self.col_slot = slots.copy()
        else:
            self.own = np.einsum("ij,ij->i", Xw, self.Cg[self.cl_of])
        n_start = int(self.act.sum())
        # label pairs whose whole point sets are certified separable: their clusters never need a check
        t0 = time.perf_counter()
        self.partial = root
        self.phase = "label_pairs"
        self.label_ok = self.label_certificates()
        self.phase = "forward"
        self.lab_pos = {int(lab): k for k, lab in enumerate(self.labels.tolist())}
        self.lab_of_slot = np.searchsorted(self.labels, self.y)
        self._tick("forward_label_pairs", t0)
        # rows each label's checks read: its own and those of the labels not certified against it
        lab_row = self.lab_of_slot
        self.need_rows = [
            np.flatnonzero(~ok_row[lab_row] | (lab_row == k)) for k, ok_row in enumerate(self.label_ok)
        ]
        self.other_rows = [np.flatnonzero(~ok_row[lab_row]) for ok_row in self.label_ok]
        self.stats["label_pairs_certified"] = int(np.triu(self.label_ok, 1).sum())
        self.stats["label_pairs"] = int(self.labels.size * (self.labels.size - 1) // 2)
        # kept LP models of (growing cluster, neighbour) pairs, re-keyed when their merge is accepted
        self.oracle.warm = WarmSeparator(Xw) if self.opts.warm_lp and warm_available() else None
        self._warm_done: list[tuple[tuple[int, int], int]] = []
        # overlap witnesses (rows of an infeasible LP: A side of label lab, B side of another label); per
        # label the first A-side row of each, to find the ones whose A side may lie in a tentative merge
        self.wit: list[tuple[np.ndarray, np.ndarray]] = []
        self.wit_first: dict[int, list[int]] = {lab: [] for lab in queues}
        self.wit_ids: dict[int, list[int]] = {lab: [] for lab in queues}
        self.wit_size = 0
        heap: list[tuple[float, int, int, int]] = []

        def push(lab: int) -> None:
            q = queues[lab]
            h = q.head()
            if h is not None:
                heapq.heappush(heap, (h[0], int(q.idx[h[1]]), int(q.idx[h[2]]), lab))

        for lab in queues:
            push(lab)
        pops = accepted = rejected = 0
        first = True
        with self._bar(None, "checked merges") as bar:
            try:
                while heap:
                    self._budget()
                    d2, ga, gb, lab = heapq.heappop(heap)
                    q = queues[lab]
                    h = q.head()
                    if h is None:
                        continue
                    i, j = h[1], h[2]
                    if (int(q.idx[i]), int(q.idx[j]), h[0]) != (ga, gb, d2):
                        continue  # outdated entry; the label's current head is in the heap too
                    if legacy and pops >= n_start:
                        break
                    pops += 1
                    ok = self._check_merge(lab, q, i, j)
                    if first and expect_first_rejected is not None:
                        first = False
                        if (ga, gb) != expect_first_rejected:
                            raise SearchMismatch(
                                f"G popped {(ga, gb)} first, U's merge k* is {expect_first_rejected}"
                            )
                        if ok:
                            raise SearchMismatch(f"U's merge k* {(ga, gb)} was accepted by G")
                    if ok:
                        accepted += 1
                        self._accept(q, i, j)
                    else:
                        rejected += 1
                        q.reject(i, j)
                    bar.update(1)
                    if pops % 64 == 0:
                        bar.set_postfix(clusters=n_start - accepted, rejected=rejected, refresh=False)
                    push(lab)
            finally:
                self.stats["forward_pops"] = pops
                self.stats["forward_accepted"] = accepted
                self.stats["forward_rejected"] = rejected
                self.stats["forward_start_clusters"] = n_start
        return self.cl_of.copy()

    def _accept(self, q: LabelQueue, i: int, j: int) -> None:
        gi, gj = int(q.idx[i]), int(q.idx[j])
        assert q.members is not None
        mj = q.members[j]
        assert mj is not None
        q.merge(i, j)
        M = q.members[i]
        assert M is not None
        self.Cg[gi] = self._cM
        self.Cg[gj] = 0.0
        self.cnorm2[gi] = float(self._cM @ self._cM)
        self.cnorm2[gj] = 0.0
        self.rad[gi] = self._rM
        self.rad[gj] = 0.0
        self.act[gj] = False
        self.cl_of[mj] = gi
        # a cluster of a label certified against every other label is never read: no dot products needed
        if self.Gmat is not None:
            if self._tM is not None:
                self.Gmat[self._tR, self.col[gi]] = self._tM[self._tR]
                self.own[M] = self._tM[M]
            self.col_slot[self.col[gj]] = -1
            self.col[gj] = -1
        elif self.other_rows[self.lab_pos[int(self.y[gi])]].size:
            self.own[M] = self.Xw[M] @ self._cM
        self._uid += 1
        self.uid[gi] = self._uid
        self.single[gi] = self.oracle.single_id(M)
        for uo, h in self._pending:
            self.oracle.store(self._uid, uo, h)
        if self.oracle.warm is not None:
            for key, uo in self._warm_done:
                self.oracle.warm.rekey(key, (self._uid, uo))

    def _check_merge(self, lab: int, q: LabelQueue, i: int, j: int) -> bool:
        """Does the union M of slots i, j of label ``lab`` overlap no other-label cluster?"""
        t0 = time.perf_counter()
        X = self.Xw
        assert q.members is not None
        mi, mj = q.members[i], q.members[j]
        assert mi is not None and mj is not None
        gi, gj = int(q.idx[i]), int(q.idx[j])
        M = np.concatenate([mi, mj])
        ni, nj = mi.size, mj.size
        cM = (self.Cg[gi] * ni + self.Cg[gj] * nj) / (ni + nj)
        self._cM = cM
        sM = self.oracle.single_id(M)
        self._pending: list[tuple[int, tuple[np.ndarray, float, float]]] = []
        self._warm_done = []
        self._rM = float(np.sqrt(((X[M] - cM) ** 2).sum(axis=1).max()))
        lp = self.lab_pos[lab]
        self._tM = None
        if self.other_rows[lp].size == 0:
            return True  # every other label is certified separable from this one
        if self._witness_rejects(lab, gi, gj, sM):
            self._tick("forward_witness", t0)
            return False
        others = np.flatnonzero(self.act & ~self.label_ok[lp][self.lab_of_slot])
        if self.Gmat is None:
            if others.size == 0:
                return True
            bad, gap = self._sphere_then_projection(M, mi, mj, gi, gj, cM, others)
            return self._finish_check(lab, q, i, j, M, mi, mj, gi, gj, sM, others, bad, gap, t0)
        # x·c_M on the rows this label's clusters are ever compared on (its own, the uncertified labels')
        R, Ro = self.need_rows[lp], self.other_rows[lp]
        t = np.empty(self.n)
        t[R] = X[R] @ cM
        self._tM = t
        self._tR = R
        if others.size == 0:
            return True
        pM = t[M]
        cn = np.sqrt(np.einsum("ij,ij->i", self.Cg[others], self.Cg[others]))
        rt = 4 * SEPARATION_RTOL * self.oracle.xmax
        if self.Gmat is not None:
            # normals c_M - c_Q, c_a - c_Q and c_b - c_Q, each with its best threshold, for every Q at once
            Gm = self.Gmat[M][:, self.col[others]]
            bad = np.ones(others.size, dtype=bool)
            gap = np.full(others.size, -np.inf)
            clo, owno = self.cl_of[Ro], self.own[Ro]
            for dM, dO, cnorm in (
                (pM, t[Ro], float(np.sqrt(cM @ cM))),
                (
                    self.Gmat[M, self.col[gi]],
                    self.Gmat[Ro, self.col[gi]],
                    float(np.sqrt(self.Cg[gi] @ self.Cg[gi])),
                ),
                (
                    self.Gmat[M, self.col[gj]],
                    self.Gmat[Ro, self.col[gj]],
                    float(np.sqrt(self.Cg[gj] @ self.Cg[gj])),
                ),
            ):
                minM = (dM[:, None] - Gm[:, bad]).min(axis=0)
                maxQ = np.full(self.n, -np.inf)
                np.maximum.at(maxQ, clo, dO - owno)
                g = minM - maxQ[others[bad]]
                gap[bad] = np.maximum(gap[bad], g / np.maximum(cnorm + cn[bad], 1e-300))
                sub = g > rt * (cnorm + cn[bad])
                idx = np.flatnonzero(bad)
                bad[idx[sub]] = False
                if not bad.any():
                    break
        else:
            XM = X[M]
            minM = np.full(others.size, np.inf)
            blk = max(1, _BLOCK_BYTES // (8 * M.size))
            for s in range(0, others.size, blk):
                G = XM @ self.Cg[others[s : s + blk]].T
                np.subtract(pM[:, None], G, out=G)
                minM[s : s + blk] = G.min(axis=0)
            maxQ = np.full(self.n, -np.inf)
            np.maximum.at(maxQ, self.cl_of[Ro], t[Ro] - self.own[Ro])
            g = minM - maxQ[others]
            cnM = float(np.sqrt(cM @ cM))
            bad = g <= rt * (cnM + cn)
            gap = g / np.maximum(cnM + cn, 1e-300)
        self.oracle.stats.answered["projection"] += int(others.size - bad.sum())
        return self._finish_check(lab, q, i, j, M, mi, mj, gi, gj, sM, others, bad, gap, t0)

    def _finish_check(
        self,
        lab: int,
        q: LabelQueue,
        i: int,
        j: int,
        M: np.ndarray,
        mi: np.ndarray,
        mj: np.ndarray,
        gi: int,
        gj: int,
        sM: int,
        others: np.ndarray,
        bad: np.ndarray,
        gap: np.ndarray,
        t0: float,
    ) -> bool:
        """Duplicate tolerance, then the per-pair certificates and the LP for the pairs still ``bad``."""
        st = self.oracle.stats.answered
        if sM >= 0:
            tolm = bad & (self.single[others] == sM)
            st["duplicate"] += int(tolm.sum())
            bad &= ~tolm
        todo = others[bad]
        self._tick("forward_projection", t0)
        if todo.size == 0:
            return True
        t0 = time.perf_counter()
        score = gap[bad]
        ui, uj = int(self.uid[gi]), int(self.uid[gj])
        try:
            for k in np.argsort(score, kind="stable").tolist():
                go = int(todo[k])
                uo = int(self.uid[go])
                oq = self.queues[int(self.lab_g[go])]
                oq_members = oq.members[int(np.searchsorted(oq.idx, go))]  # type: ignore[index]
                assert oq_members is not None
                # a plane that separated one part from Q: only the other part's points are new
                h = self.oracle.extend(ui, uo, mj) if mi.size >= mj.size else self.oracle.extend(uj, uo, mi)
                if h is None:
                    h = (
                        self.oracle.extend(uj, uo, mi)
                        if mi.size >= mj.size
                        else self.oracle.extend(ui, uo, mj)
                    )
                if h is not None:
                    self._pending.append((uo, h))
                    continue
                hints = [hh[0] for hh in (self.oracle.get(ui, uo), self.oracle.get(uj, uo)) if hh is not None]
                self._budget()
                keys = [(ui, uo), (uj, uo)] if mi.size >= mj.size else [(uj, uo), (ui, uo)]
                ok, plane = self.oracle.pair(M, oq_members, hints, warm_keys=keys)
                if self.oracle.warm_key is not None:
                    self._warm_done.append((self.oracle.warm_key, uo))
                if not ok:
                    self._store_witness(lab)
                    return False
                assert plane is not None
                self._pending.append((uo, self.oracle.extents(plane[0], M, oq_members)))
            return True
        finally:
            self._tick("forward_pairs", t0)

    def _store_witness(self, lab: int) -> None:
        """Keep the oracle's last overlap witness (A side in label ``lab``), within ``_WITNESS_ROWS`` rows in
        all."""
        w = self.oracle.witness
        if w is None or self.wit_size + w[0].size + w[1].size > _WITNESS_ROWS:
            return
        self.wit_first[lab].append(int(w[0][0]))
        self.wit_ids[lab].append(len(self.wit))
        self.wit.append(w)
        self.wit_size += w[0].size + w[1].size

    def _witness_rejects(self, lab: int, gi: int, gj: int, sM: int) -> bool:
        """Does a stored witness prove that slots gi ∪ gj (label ``lab``) overlap a current cluster?

        A witness (S_A, S_B) is an infeasible LP: hull(S_A) ∩ hull(S_B) is not empty, so every cluster that
        contains S_A overlaps every cluster that contains S_B. Clusters only grow, so a witness found once
        answers every later merge whose union contains S_A, against the cluster that then contains S_B.
        """
        first = self.wit_first[lab]
        if not first:
            return False
        f = self.cl_of[np.asarray(first, dtype=np.int64)]
        cand = np.flatnonzero((f == gi) | (f == gj))
        ids = self.wit_ids[lab]
        for c in cand.tolist():
            SA, SB = self.wit[ids[c]]
            ra = self.cl_of[SA]
            if not ((ra == gi) | (ra == gj)).all():
                continue
            rb = self.cl_of[SB]
            go = int(rb[0])
            if not (rb == go).all():
                continue
            if sM >= 0 and int(self.single[go]) == sM:
                continue  # tolerated duplicate overlap (duplicate_policy="keep")
            self.oracle.stats.answered["witness"] += 1
            return True
        return False

    def _sphere_then_projection(
        self,
        M: np.ndarray,
        mi: np.ndarray,
        mj: np.ndarray,
        gi: int,
        gj: int,
        cM: np.ndarray,
        others: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sphere test of M against every Q in ``others`` (one GEMV over the centroids), then the exact
        batched projection (normals c_M - c_Q, c_a - c_Q, c_b - c_Q) for the pairs whose balls meet.

        Returns ``bad`` ``[len(others)]`` (not certified) and ``gap`` (a suspicion score, lowest first).
        """
        X = self.Xw
        st = self.oracle.stats.answered
        dots = self.Cg @ cM
        cm2 = float(cM @ cM)
        d2 = cm2 - 2 * dots[others] + self.cnorm2[others]
        err = 4.0 * (X.shape[1] + 8) * np.finfo(np.float64).eps * (cm2 + self.cnorm2[others])
        dist_lo = np.sqrt(np.maximum(d2 - err, 0.0))
        rsum = self._rM + self.rad[others]
        sph = dist_lo - rsum > SPHERE_RTOL * (dist_lo + rsum) + 1e-300
        st["sphere"] += int(sph.sum())
        bad = ~sph
        gap = np.full(others.size, np.inf)
        sub = np.flatnonzero(bad)
        if sub.size == 0:
            return bad, gap
        Q = others[sub]
        gap[sub] = (dist_lo - rsum)[sub] / np.maximum(dist_lo + rsum, 1e-300)[sub]
        # rows of the suspicious clusters, grouped
        mem = [self._members(int(g)) for g in Q.tolist()]
        sizes = np.array([m.size for m in mem])
        rows = np.concatenate(mem)
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        D3 = np.stack([cM, self.Cg[gi], self.Cg[gj]])  # [3, d]
        XM = X[M]
        PM = XM @ D3.T  # [|M|, 3]
        GQ = XM @ self.Cg[Q].T  # [|M|, k]
        XR = X[rows]
        PR = XR @ D3.T - self.own[rows][:, None]  # [rows, 3]: x·c_dir - x·c_Q
        maxQ = np.maximum.reduceat(PR, starts, axis=0)  # [k, 3]
        cn = np.sqrt(self.cnorm2[Q])
        dn = np.sqrt(np.einsum("ij,ij->i", D3, D3))
        rt = 4 * SEPARATION_RTOL * self.oracle.xmax
        ok = np.zeros(Q.size, dtype=bool)
        for k in range(3):
            minM = (PM[:, k][:, None] - GQ).min(axis=0)
            g = minM - maxQ[:, k]
            ok |= g > rt * (dn[k] + cn)
        st["projection"] += int(ok.sum())
        bad[sub[ok]] = False
        return bad, gap

    def _members(self, g: int) -> np.ndarray:
        oq = self.queues[int(self.lab_g[g])]
        m = oq.members[int(np.searchsorted(oq.idx, g))]  # type: ignore[index]
        assert m is not None
        return m
