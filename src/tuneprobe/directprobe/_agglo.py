"""Exact centroid-linkage merge order for one label, with nearest-neighbour caching (private helper of
``cluster``).

Order of candidate pairs (PAPER §6.2): by the float64 squared Euclidean distance between centroids, then by
the smaller
and then the larger of the two clusters' minimum member indices. The *canonical* squared distance is

    dist2(a, b) = np.sum((c_a - c_b) ** 2)        (float64, numpy's pairwise summation over the d coordinates)

with ``c = S / n`` (S = float64 sum of the member rows, maintained as ``S_a + S_b`` on a merge; for float32
inputs of a
bounded exponent range these sums are exact, so the centroids do not depend on the merge history).

Speed without giving up exactness: distances to many centroids are first computed with the BLAS expansion
``|c_i|^2 - 2 c_i·c_j + |c_j|^2``, whose rounding error is bounded by ``_ERR * (|c_i|^2 + |c_j|^2)``; every
candidate that
could be the minimum within that bound is then recomputed canonically, and the exact lexicographic minimum is
taken.

Data structure (Müllner's generic algorithm): every active slot i keeps ``nn[i]``, its nearest active slot j
> i (not
rejected with i), and ``md[i]``, the canonical squared distance; a heap holds ``(md[i], i, nn[i])``. After a
merge the
entries that pointed at a merged slot keep their old distance as a *lower bound* and are marked stale (``nn =
-1``); a stale
entry is recomputed only when it reaches the top of the heap. Memory O(n·d); no per-pair objects.
Slots are the local positions of the label's rows in ascending global order; a cluster lives in the slot of
its smallest
member, so comparing slots compares minimum member indices.
"""

from __future__ import annotations

import heapq

import numpy as np

_EPS = np.finfo(np.float64).eps


class LabelQueue:
    """Centroid-linkage candidate queue for the points of one label.

    idx: int64 ``[n]`` ascending global row indices of this label's points. X: float64 ``[N, d]`` all points.
    part: optional int64 ``[n]``: slot (local index of the smallest member) of each point's initial cluster;
    default:
        singletons.
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
            self.active = np.ones(n, dtype=bool)
        else:
            part = np.asarray(part, dtype=np.int64)
            self.S = np.zeros((n, d))
            np.add.at(self.S, part, Xl)
            self.cnt = np.bincount(part, minlength=n).astype(np.int64)
            self.active = self.cnt > 0
        self.C = self.S / np.maximum(self.cnt, 1)[:, None]
        self.C[~self.active] = 0.0
        self.sq = np.einsum("ij,ij->i", self.C, self.C)
        self.nn = np.full(n, -1, dtype=np.int64)
        self.md = np.full(n, np.inf)
        self.ver = np.zeros(n, dtype=np.int64)
        self.heap: list[tuple[float, int, int, int]] = []
        self.rejected: dict[int, set[tuple[int, int]]] = {}
        self.gen = np.zeros(n, dtype=np.int64)  # bumped whenever the cluster in a slot changes
        self.members: list[np.ndarray | None] | None = None
        if keep_members:
            if part is None:
                self.members = [np.array([g], dtype=np.int64) for g in self.idx]
            else:
                order = np.argsort(part, kind="stable")
                ps = part[order]
                starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
                self.members = [None] * n
                for s, e in zip(starts, np.r_[starts[1:], n], strict=True):
                    self.members[int(ps[s])] = self.idx[order[s:e]]
        self._init_nn()

    # ------------------------------------------------------------------ distances
    def dist2(self, i: int, js: np.ndarray) -> np.ndarray:
        """Canonical squared distances ``[len(js)]`` from slot i to slots js."""
        return ((self.C[js] - self.C[i]) ** 2).sum(axis=1)

    def _fast(self, rows: np.ndarray | slice, cols: np.ndarray | slice) -> np.ndarray:
        G = self.C[rows] @ self.C[cols].T
        G *= -2.0
        G += self.sq[rows][:, None]
        G += self.sq[cols][None, :]
        return G

    def _init_nn(self) -> None:
        n = self.n
        act = np.flatnonzero(self.active)
        if act.size < 2:
            return
        block = max(1, min(act.size, 4_000_000 // max(act.size, 1)))
        sq = self.sq
        for s in range(0, act.size - 1, block):
            rows = act[s : s + block]
            cols = act[s + 1 :]
            F = self._fast(rows, cols)
            # keep only cols > row
            F[np.arange(rows.size)[:, None] >= (np.arange(cols.size)[None, :] + 1)] = np.inf
            E = self._err * (sq[rows][:, None] + sq[cols][None, :])
            upper = (F + E).min(axis=1)
            r, c = np.nonzero(np.isfinite(F) & (upper[:, None] >= F - E))
            gi = rows[r]
            gj = cols[c]
            exact = ((self.C[gi] - self.C[gj]) ** 2).sum(axis=1)
            order = np.lexsort((gj, exact, gi))
            gi, gj, exact = gi[order], gj[order], exact[order]
            first = np.r_[True, gi[1:] != gi[:-1]]
            for i, j, v in zip(gi[first], gj[first], exact[first], strict=True):
                self.nn[i] = j
                self.md[i] = v
        del n
        self.heap = [(float(self.md[i]), int(i), int(self.nn[i]), 0) for i in act if self.nn[i] >= 0]
        heapq.heapify(self.heap)

    def _nearest_above(self, i: int) -> tuple[float, int]:
        """Exact (dist2, slot) of the nearest active slot j > i not rejected with i, or (inf, -1)."""
        cand = np.flatnonzero(self.active[i + 1 :]) + i + 1
        rej = self.rejected.get(i)
        if rej:
            bad = [j for (j, g) in rej if self.active[j] and self.gen[j] == g]
            if bad:
                cand = np.setdiff1d(cand, np.asarray(bad, dtype=np.int64), assume_unique=True)
        if cand.size == 0:
            return np.inf, -1
        F = self._fast(np.array([i]), cand)[0]
        E = self._err * (self.sq[i] + self.sq[cand])
        upper = (F + E).min()
        near = cand[upper >= F - E]
        exact = self.dist2(i, near)
        k = np.lexsort((near, exact))[0]
        return float(exact[k]), int(near[k])

    def _set(self, i: int, md: float, nn: int) -> None:
        self.md[i] = md
        self.nn[i] = nn
        self.ver[i] += 1
        if np.isfinite(md):
            heapq.heappush(self.heap, (md, i, nn, int(self.ver[i])))

    # ------------------------------------------------------------------ queue API
    def head(self) -> tuple[float, int, int] | None:
        """The best current pair ``(dist2, i, j)`` (slots, i < j), or None when no candidate is left."""
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
        act = np.flatnonzero(self.active)
        # entries that pointed at i or j become lower bounds unless the new cluster is their new neighbour
        pointed = act[((self.nn[act] == i) | (self.nn[act] == j)) & (act != i)]
        updated: set[int] = set()
        # slots below i: is the new cluster their new nearest neighbour?
        below = act[act < i]
        if below.size:
            F = self._fast(np.array([i]), below)[0]
            E = self._err * (self.sq[i] + self.sq[below])
            mdb = self.md[below]
            maybe = below[mdb >= F - E]
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

    def reject(self, i: int, j: int) -> None:
        """Discard the pair (i, j) (i < j) for good: it is not offered again while both clusters are
        unchanged."""
        self.rejected.setdefault(i, set()).add((j, int(self.gen[j])))
        nmd, nj = self._nearest_above(i)
        self._set(i, nmd, nj)

    def centroid(self, i: int) -> np.ndarray:
        return self.C[i]
