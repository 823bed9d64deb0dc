"""Exact centroid-linkage merge order for one label, with nearest-neighbour caching (helper of ``cluster``).

Order of candidate pairs (PAPER §6.2): by the float64 squared Euclidean distance between centroids, then by
the smaller and then the larger of the two clusters' minimum member indices. The *canonical* squared distance
is

    dist2(a, b) = np.sum((c_a - c_b) ** 2)     (float64, numpy's pairwise summation over the coordinates)

with ``c = S / n``, S the float64 sum of the member rows, kept as ``S_a + S_b`` on a merge (for float32 inputs
of a bounded exponent range these sums are exact, so centroids do not depend on the merge history).

Speed without giving up exactness: distances to many centroids are first computed with the BLAS expansion
``|c_i|^2 - 2 c_i·c_j + |c_j|^2``, whose rounding error is below ``_err * (|c_i|^2 + |c_j|^2)``; every
candidate that could be the minimum within that bound is recomputed canonically, and the exact lexicographic
minimum is taken.

Data structure (Müllner's generic algorithm): every active slot i keeps ``nn[i]``, its nearest active slot j >
i not rejected with i, and ``md[i]``, the canonical squared distance; a heap holds ``(md[i], i, nn[i])``.
After a merge, entries that pointed at a merged slot keep their old distance as a *lower bound* and are marked
stale (``nn = -1``); a stale entry is recomputed only when it reaches the top of the heap. Slots are positions
of the label's rows in ascending global order; a cluster lives in the slot of its smallest member, so
comparing slots compares minimum member indices. When fewer than half the slots are active the arrays are
compacted (order-preserving), so each scan touches O(active) rows. Memory O(n·d); no per-pair objects.
"""

from __future__ import annotations

import heapq

import numpy as np

_EPS = np.finfo(np.float64).eps


class LabelQueue:
    """Centroid-linkage candidate queue for the points of one label.

    X: float64 ``[N, d]`` all points; idx: int64 ``[n]`` ascending rows of this label. part: optional int64
    ``[n]``, for each of these rows the position (in idx) of the smallest member of its starting cluster;
    default: singletons. keep_members: also keep each cluster's member rows (``members[slot]``).
    """

    def __init__(
        self, X: np.ndarray, idx: np.ndarray, part: np.ndarray | None = None, keep_members: bool = False
    ) -> None:
        self.idx = np.asarray(idx, dtype=np.int64)
        n = self.idx.shape[0]
        d = X.shape[1]
        self.n = n
        self.d = d
        self._err = 4.0 * (d + 8) * _EPS
        Xl = np.asarray(X[self.idx], dtype=np.float64)
        if part is None:
            self.S = Xl.copy()
            self.cnt = np.ones(n, dtype=np.int64)
        else:
            part = np.asarray(part, dtype=np.int64)
            self.S = np.zeros((n, d))
            np.add.at(self.S, part, Xl)
            self.cnt = np.bincount(part, minlength=n).astype(np.int64)
        del Xl
        self.active = self.cnt > 0
        self.C = self.S / np.maximum(self.cnt, 1)[:, None]
        self.C[~self.active] = 0.0
        self.sq = np.einsum("ij,ij->i", self.C, self.C)
        self.nn = np.full(n, -1, dtype=np.int64)
        self.md = np.full(n, np.inf)
        self.ver = np.zeros(n, dtype=np.int64)
        self.gen = np.zeros(n, dtype=np.int64)  # bumped whenever the cluster in a slot changes
        self.heap: list[tuple[float, int, int, int]] = []
        self.rejected: dict[int, set[tuple[int, int]]] = {}
        self.n_active = int(self.active.sum())
        self.members: list[np.ndarray | None] | None = None
        if keep_members:
            if part is None:
                self.members = [np.array([g], dtype=np.int64) for g in self.idx]
            else:
                order = np.argsort(part, kind="stable")
                ps = part[order]
                starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
                self.members = [None] * n
                for s, e in zip(starts.tolist(), np.r_[starts[1:], n].tolist(), strict=True):
                    self.members[int(ps[s])] = self.idx[order[s:e]]
        if self.n_active < n // 2:
            self._compact()
        self._init_nn()

    # ------------------------------------------------------------------ distances
    def dist2(self, i: int, js: np.ndarray) -> np.ndarray:
        """Canonical squared distances ``[len(js)]`` from slot i to slots js."""
        return ((self.C[js] - self.C[i]) ** 2).sum(axis=1)

    def _row(self, i: int, lo: int, hi: int) -> np.ndarray:
        """Fast squared distances ``[hi - lo]`` from slot i to slots lo..hi-1 (a view, no gather)."""
        F = self.C[lo:hi] @ self.C[i]
        F *= -2.0
        F += self.sq[i]
        F += self.sq[lo:hi]
        return F

    def _pick(self, i: int, cand: np.ndarray, F: np.ndarray) -> tuple[float, int]:
        """Exact lexicographic (dist2, slot) minimum over slots ``cand`` with fast values ``F``."""
        E = self._err * (self.sq[i] + self.sq[cand])
        upper = (F + E).min()
        near = cand[upper >= F - E]
        exact = self.dist2(i, near)
        k = np.lexsort((near, exact))[0]
        return float(exact[k]), int(near[k])

    def _init_nn(self) -> None:
        n = self.n
        act = self.active
        if self.n_active < 2:
            return
        block = max(1, min(n, 4_000_000 // max(n, 1)))
        sq = self.sq
        cols_all = np.arange(n)
        for s in range(0, n, block):
            e = min(n, s + block)
            F = self.C[s:e] @ self.C.T  # [b, n]
            F *= -2.0
            F += sq[s:e, None]
            F += sq[None, :]
            F[cols_all[None, :] <= np.arange(s, e)[:, None]] = np.inf
            F[:, ~act] = np.inf
            F[~act[s:e]] = np.inf
            E = self._err * (sq[s:e, None] + sq[None, :])
            upper = (F + E).min(axis=1)
            r, c = np.nonzero(np.isfinite(F) & (upper[:, None] >= F - E))
            gi = r + s
            exact = ((self.C[gi] - self.C[c]) ** 2).sum(axis=1)
            order = np.lexsort((c, exact, gi))
            gi, gj, exact = gi[order], c[order], exact[order]
            first = np.r_[True, gi[1:] != gi[:-1]]
            self.nn[gi[first]] = gj[first]
            self.md[gi[first]] = exact[first]
        self.heap = [(float(self.md[i]), int(i), int(self.nn[i]), 0) for i in np.flatnonzero(self.nn >= 0)]
        heapq.heapify(self.heap)

    def _nearest_above(self, i: int) -> tuple[float, int]:
        """Exact (dist2, slot) of the nearest active slot j > i not rejected with i, or (inf, -1)."""
        mask = self.active[i + 1 :].copy()
        rej = self.rejected.get(i)
        if rej:
            for j, g in rej:
                if self.active[j] and self.gen[j] == g:
                    mask[j - i - 1] = False
        if not mask.any():
            return np.inf, -1
        F = self._row(i, i + 1, self.n)[mask]
        cand = np.flatnonzero(mask) + i + 1
        return self._pick(i, cand, F)

    def _set(self, i: int, md: float, nn: int) -> None:
        self.md[i] = md
        self.nn[i] = nn
        self.ver[i] += 1
        if np.isfinite(md):
            heapq.heappush(self.heap, (md, i, nn, int(self.ver[i])))

    # ------------------------------------------------------------------ compaction
    def _compact(self) -> None:
        """Drop inactive slots, keeping the order of the active ones; remap every slot reference."""
        keep = np.flatnonzero(self.active)
        newpos = np.full(self.n, -1, dtype=np.int64)
        newpos[keep] = np.arange(keep.size)
        self.idx = self.idx[keep]
        self.S = self.S[keep]
        self.C = self.C[keep]
        self.sq = self.sq[keep]
        self.cnt = self.cnt[keep]
        self.active = self.active[keep]
        self.ver = self.ver[keep]
        self.gen = self.gen[keep]
        nn = self.nn[keep]
        self.nn = np.where(nn >= 0, newpos[np.maximum(nn, 0)], -1)
        self.md = self.md[keep]
        if self.members is not None:
            self.members = [self.members[k] for k in keep.tolist()]
        self.rejected = {
            int(newpos[i]): {(int(newpos[j]), g) for (j, g) in rs if newpos[j] >= 0}
            for i, rs in self.rejected.items()
            if newpos[i] >= 0
        }
        self.n = int(keep.size)
        self.heap = [
            (float(self.md[i]), int(i), int(self.nn[i]), int(self.ver[i]))
            for i in range(self.n)
            if np.isfinite(self.md[i])
        ]
        heapq.heapify(self.heap)

    # ------------------------------------------------------------------ queue API
    def head(self) -> tuple[float, int, int] | None:
        """The best current pair ``(dist2, i, j)`` (slots, i < j), or None when no candidate is left.

        Slot numbers are valid until the next ``merge``/``reject`` followed by ``head`` (which may compact).
        """
        if self.n > 1024 and self.n_active < self.n // 2:
            self._compact()
        heap = self.heap
        while heap:
            md, i, j, v = heap[0]
            if not self.active[i] or v != self.ver[i]:
                heapq.heappop(heap)
                continue
            if j < 0:  # stale lower bound: recompute
                heapq.heappop(heap)
                nmd, nj = self._nearest_above(i)
                self._set(i, nmd, nj)
                continue
            return md, i, j
        return None

    def merge(self, i: int, j: int) -> None:
        """Merge slot j into slot i (i < j) and update the neighbour caches."""
        self.S[i] += self.S[j]
        self.cnt[i] += self.cnt[j]
        self.C[i] = self.S[i] / self.cnt[i]
        self.sq[i] = float(self.C[i] @ self.C[i])
        self.active[j] = False
        self.n_active -= 1
        self.C[j] = 0.0
        self.sq[j] = 0.0
        self.gen[i] += 1
        self.gen[j] += 1
        self.ver[j] += 1
        self.rejected.pop(i, None)
        self.rejected.pop(j, None)
        if self.members is not None:
            mi, mj = self.members[i], self.members[j]
            assert mi is not None and mj is not None
            self.members[i] = np.concatenate([mi, mj])
            self.members[j] = None
        act = self.active
        # entries that pointed at i or j become lower bounds unless the new cluster is their new neighbour
        pointed = np.flatnonzero(act & ((self.nn == i) | (self.nn == j)))
        pointed = pointed[pointed != i]
        updated: set[int] = set()
        # slots below i: is the new cluster their new nearest neighbour?
        if i > 0:
            F = self._row(i, 0, i)
            E = self._err * (self.sq[i] + self.sq[:i])
            maybe = np.flatnonzero(act[:i] & (self.md[:i] >= F - E))
            if maybe.size:
                exact = self.dist2(i, maybe)
                for k, v in zip(maybe.tolist(), exact.tolist(), strict=True):
                    if v < self.md[k] or (v == self.md[k] and self.nn[k] > i):
                        self._set(k, v, i)
                        updated.add(k)
        for k in pointed.tolist():
            if k not in updated:
                self._set(k, float(self.md[k]), -1)
        nmd, nj = self._nearest_above(i)
        self._set(i, nmd, nj)

    def pairs_left(self) -> int:
        """Same-label pairs of active clusters not yet rejected (each still to be popped and checked)."""
        k = self.n_active
        done = 0
        for i, rej in self.rejected.items():
            if self.active[i]:
                done += sum(1 for j, g in rej if self.active[j] and self.gen[j] == g)
        return k * (k - 1) // 2 - done

    def reject(self, i: int, j: int) -> None:
        """Discard the pair (i, j) (i < j) for good; it is not offered again while both are unchanged."""
        self.rejected.setdefault(i, set()).add((j, int(self.gen[j])))
        nmd, nj = self._nearest_above(i)
        self._set(i, nmd, nj)
