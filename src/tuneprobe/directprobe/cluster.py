"""DirectProbe clustering (PAPER §6): ``DirectProbe(...).fit(X, y) -> Clustering``.

The result is, by definition, the partition of the paper's greedy **G**: start from singletons; repeatedly
take the same-label pair of clusters whose centroids are closest; merge it iff the merged cluster's convex
hull overlaps no other-label cluster's hull; a rejected pair is discarded for good; stop when no candidate
pair is left.

Order and ties (see ``_agglo``): float64 squared centroid distance ``np.sum((c_a - c_b)**2)``, then the
smaller, then the larger of the two clusters' minimum member indices. Deterministic; no randomness anywhere.

``search="auto"`` (default) reaches G's partition with the reference's shortcut (PAPER §6.4):

1. check the label partition (= the end state of the unchecked run U, whatever U's order); if it is clean, the
   labels are linearly separable and G accepts every merge: done, U is never computed;
2. otherwise run U (per-label exact centroid linkage, interleaved in global order) and log its merges;
3. binary-search the first overlapping state k* (monotone, PAPER §6.4; state 0 is clean by construction);
4. rebuild state k*-1 by replaying the merge log (union-find) and run G from there. The first pair G pops must
   be U's merge k* and it must be rejected; k*-1 was checked clean and k* overlapping during the search. If
   any of this fails, G is rerun from scratch (``stats["search_fallback"]``).

``search="naive"`` runs G from the singletons, checking every merge.

Identical vectors with different labels (PAPER §6.7) are detected before clustering. ``duplicate_policy``:
``"keep"`` (default) tolerates exactly one kind of overlap: a pair of clusters all of whose points are copies
of one and the same vector (so both hulls are that single point); every other check stands, so such points
stay in clusters made of copies of themselves. ``"drop"`` removes every copy of a conflicting vector before
clustering (their ``assignment`` is -1). ``"error"`` raises :class:`DuplicateLabelsError`. The report is in
``stats["duplicates"]``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import TuneprobeError
from ._engine import Engine, replay
from .clustering import Clustering

__all__ = ["DirectProbe", "DuplicateLabelsError", "duplicate_report", "find_duplicate_groups", "replay"]

SearchMode = Literal["auto", "naive"]
DuplicatePolicy = Literal["keep", "drop", "error"]


class DuplicateLabelsError(TuneprobeError, ValueError):
    """Identical vectors carry different labels and ``duplicate_policy="error"`` was chosen."""


# ============================================================================================ duplicates


def find_duplicate_groups(X: np.ndarray) -> np.ndarray:
    """Group id ``[n]`` (int64) of every row of X ``[n, d]``; rows share an id iff they are identical vectors.

    Ids are numbered by first occurrence. ``-0.0`` and ``0.0`` count as equal. Rows are sorted on their first
    8 coordinates; only runs that agree there are compared in full.
    """
    Xc = np.ascontiguousarray(X, dtype=np.float64) + 0.0  # turns -0.0 into 0.0
    n, d = Xc.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = Xc[:, : min(d, 8)]
    order = np.lexsort(keys.T[::-1])
    ks = keys[order]
    same = np.all(ks[1:] == ks[:-1], axis=1) if n > 1 else np.zeros(0, dtype=bool)
    rep = np.arange(n)
    if same.any():
        edge = np.diff(np.r_[0, same.astype(np.int8), 0])
        run_s = np.flatnonzero(edge == 1)
        run_e = np.flatnonzero(edge == -1) + 1
        void = np.dtype((np.void, Xc.dtype.itemsize * d))
        for s, e in zip(run_s.tolist(), run_e.tolist(), strict=True):
            rows = np.sort(order[s:e])
            v = np.ascontiguousarray(Xc[rows]).view(void).ravel()
            _, first, inv = np.unique(v, return_index=True, return_inverse=True)
            rep[rows] = rows[first][inv.ravel()]
    _, gid = np.unique(rep, return_inverse=True)
    return gid.astype(np.int64)


def duplicate_report(gid: np.ndarray, y: np.ndarray, max_examples: int = 10) -> dict[str, Any]:
    """Conflicting duplicate groups: identical vectors (same ``gid`` ``[n]``) with more than one label (``y``
    ``[n]``)."""
    n = gid.shape[0]
    ng = int(gid.max()) + 1 if n else 0
    order = np.lexsort((y, gid))
    g, lab = gid[order], y[order]
    new_pair = np.r_[True, (g[1:] != g[:-1]) | (lab[1:] != lab[:-1])]
    nlab = np.bincount(g[new_pair], minlength=ng)
    conflict_groups = np.flatnonzero(nlab > 1)
    in_conflict = np.isin(gid, conflict_groups)
    examples = []
    for cg in conflict_groups[:max_examples].tolist():
        rows = np.flatnonzero(gid == cg)
        examples.append({"rows": rows[:10].tolist(), "labels": sorted({int(v) for v in y[rows]})})
    return {
        "n_identical_groups": int((np.bincount(gid, minlength=ng) > 1).sum()),
        "n_conflicting_groups": int(conflict_groups.size),
        "n_conflicting_points": int(in_conflict.sum()),
        "conflicting_labels": sorted({int(v) for v in y[in_conflict]}),
        "examples": examples,
        "conflict_mask": in_conflict,
    }


# ============================================================================================ estimator


class DirectProbe:
    """DirectProbe clustering (PAPER §6.1-6.4, strict profile).

    Parameters
    ----------
    search: ``"auto"`` (label-partition check, unchecked run, galloping + binary search, forward G) or
        ``"naive"`` (G checking every merge). Both give the same partition.
    duplicate_policy: ``"keep"``, ``"drop"`` or ``"error"`` (module docstring).
    legacy_forward_loop: reproduce the pre-2022 reference bug (PAPER §6.7): the forward phase stops after
        as many pops (accepted or rejected) as there were clusters when it started. Only affects
        ``search="auto"``.
    progress: show tqdm progress bars.
    multiclass_max_classes: the multiclass-model certificate is tried in state checks with at most this
        many clusters.
    blas_threads: BLAS threads during the fit (threadpoolctl; None = leave as is). The work is many small
        matrix products, for which one thread is fastest and robust on a shared machine.
    max_gram_bytes: the forward phase keeps the dot products of every point with every cluster centroid
        (``n x K`` float64) when they fit in this many bytes; otherwise it recomputes them per check.
    forward_check: how G checks a tentative merge M against all other-label clusters before the per-pair
        certificates: ``"sphere"`` (ball test for every cluster, exact batched projection only where the balls
        meet; O(K d) per check) or ``"gram"`` (batched projection for every cluster from the kept ``n x K``
        dot products); ``"auto"``: gram when it fits in ``max_gram_bytes``.
    max_seconds: wall-clock budget of one fit (None: no limit). When it runs out, the fit stops between two
        units of work (an LP, a state check, a merge; an LP in progress is not interrupted and may overrun
        it) and returns the finest clean partition it has reached, marked ``finished=False`` (see
        :class:`~tuneprobe.directprobe.clustering.Clustering`), instead of G's result. For large or hard
        inputs (non-separable labels with tens of thousands of points), where G can run for hours: a clear
        "not finished" instead of a hang.
    warm_lp: in G, re-solve the separation LP of a pair whose one side has absorbed a few points from a
        kept HiGHS model (``highspy``) of its previous check, from the previous optimal basis, before a cold
        LP. Only verified separating planes come from it; every other outcome falls through to the cold LP,
        so the partition is the same either way.
    """

    def __init__(
        self,
        search: SearchMode = "auto",
        duplicate_policy: DuplicatePolicy = "keep",
        legacy_forward_loop: bool = False,
        progress: bool = True,
        multiclass_max_classes: int = 400,
        blas_threads: int | None = 1,
        max_gram_bytes: int = 2 * 2**30,
        forward_check: Literal["auto", "sphere", "gram"] = "auto",
        max_seconds: float | None = None,
        warm_lp: bool = True,
    ) -> None:
        if search not in ("auto", "naive"):
            raise ValueError(f"search must be 'auto' or 'naive', got {search!r}")
        if duplicate_policy not in ("keep", "drop", "error"):
            raise ValueError(f"duplicate_policy must be 'keep', 'drop' or 'error', got {duplicate_policy!r}")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive (or None), got {max_seconds!r}")
        self.max_seconds = max_seconds
        self.warm_lp = warm_lp
        self.search = search
        self.duplicate_policy = duplicate_policy
        self.legacy_forward_loop = legacy_forward_loop
        self.progress = progress
        self.multiclass_max_classes = multiclass_max_classes
        self.blas_threads = blas_threads
        self.max_gram_bytes = max_gram_bytes
        self.forward_check = forward_check
        self.clustering_: Clustering | None = None

    # ------------------------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: np.ndarray, label_names: list[str] | None = None) -> Clustering:
        """Cluster X ``[n, d]`` (any float dtype; used in float64) with labels y ``[n]`` (ints).

        Returns a :class:`Clustering` (also stored as ``self.clustering_``); ``cluster_labels`` holds the
        values of y.
        """
        t_start = time.perf_counter()
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise ValueError(f"expected X [n, d] and y [n], got {X.shape} and {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer label ids, got dtype {y.dtype}")
        X64 = np.ascontiguousarray(X, dtype=np.float64)
        if not np.isfinite(X64).all():
            raise ValueError("X contains NaN or infinite values")
        n = X64.shape[0]
        y = y.astype(np.int64)
        stats: dict[str, Any] = {"n": n, "d": int(X64.shape[1]), "search": self.search}

        t0 = time.perf_counter()
        gid = find_duplicate_groups(X64)
        rep = duplicate_report(gid, y)
        mask = rep.pop("conflict_mask")
        rep["policy"] = self.duplicate_policy
        stats["duplicates"] = rep
        stats["seconds_duplicates"] = round(time.perf_counter() - t0, 4)
        if rep["n_conflicting_groups"] and self.duplicate_policy == "error":
            raise DuplicateLabelsError(
                f"{rep['n_conflicting_groups']} vectors occur with different labels "
                f"({rep['n_conflicting_points']} rows; labels {rep['conflicting_labels'][:20]}; "
                f"examples {rep['examples'][:3]}); choose duplicate_policy='keep' or 'drop'"
            )
        keep = ~mask if self.duplicate_policy == "drop" else np.ones(n, dtype=bool)
        rows = np.flatnonzero(keep)
        rep["n_dropped"] = int(n - rows.size)

        Xk, yk, gk = X64[rows], y[rows], gid[rows]
        with threadpool_limits(self.blas_threads):
            deadline = None if self.max_seconds is None else t_start + self.max_seconds
            eng = Engine(Xk, yk, gk, self, stats, deadline=deadline)
            root = eng.run()

        # number clusters by smallest member index
        assignment = np.full(n, -1, dtype=np.int64)
        roots, local = np.unique(root, return_inverse=True)  # roots ascending = smallest member ascending
        assignment[rows] = local
        cluster_labels = yk[roots] if roots.size else np.zeros(0, dtype=np.int64)
        stats["separability"] = eng.oracle.stats.as_dict()
        stats["n_clusters"] = int(roots.size)
        stats["seconds_total"] = round(time.perf_counter() - t_start, 4)
        n_labels = int(np.unique(yk).size)
        self.clustering_ = Clustering(
            assignment=assignment,
            cluster_labels=cluster_labels.astype(np.int64),
            n_labels=n_labels,
            label_names=list(label_names) if label_names is not None else None,
            stats=stats,
            finished=bool(stats.get("finished", True)),
        )
        return self.clustering_
