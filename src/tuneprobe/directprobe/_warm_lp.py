"""Warm-started separation LPs for G's growing clusters (private helper of ``_engine``).

In G a large cluster often absorbs a few points at a time, and each absorption must be re-checked against the
same near-threshold neighbour Q of another label. The cached plane of the previous check then fails on the new
points, and a cold LP over a working set of 10^3 dense rows in d = 384 costs HiGHS several seconds to tens of
seconds (EWT POS, 25k-50k points: 96 % of G's time). The LP of the next check differs from the previous one by
a few rows, so a kept HiGHS model (``highspy``) with those rows added is re-solved from the previous optimal
basis by the dual simplex in a few pivots.

Only "separable" answers come from here, and each is a plane verified in float64 on every point of both
clusters (:func:`~tuneprobe.directprobe.separability.verify_separation`), like every other certificate. Any
other outcome (infeasible, unknown, time limit, numerical trouble) returns None and the caller runs the
ordinary exact LP (:func:`~tuneprobe.directprobe.separability.lp_separate`), so overlaps are still proven only
by that LP and the verdicts are unchanged.

The LP is the working-set form of PAPER §6.3 with the least-``||w||_1`` objective (a large-margin plane, so
that the next absorbed points tend to be on the right side already): variables ``u, v >= 0`` (``w = u - v``)
and a free ``b``; rows ``x·w + b >= 1`` for x in A and ``<= -1`` for x in B, on coordinates divided by the
largest point norm (fixed for the whole fit, so rows can be added to a kept model).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import numpy as np

from .separability import verify_separation

WARM_MIN_POINTS = 600
"""Pairs with fewer points in all go straight to the cold LP (small LPs are fast anyway)."""

WARM_MODELS = 8
"""Models kept (least recently used dropped first); one holds at most a few thousand rows (~10 MB each)."""

WARM_ROUNDS = 6
"""Violated-row rounds per check before giving up (then the cold LP decides)."""

WARM_SEED = 200
"""Rows per side of a new model: the points of each side deepest towards the other along the given normal."""

WARM_TIME_LIMIT = 60.0
"""HiGHS time limit (seconds) per solve."""


_BANNER_SHOWN = False


def _highs() -> object:
    """A new ``highspy.Highs``; the first one of a process prints HiGHS's copyright banner on the C-level
    stdout, which would land in the middle of a command's output, so stdout is pointed at /dev/null while it
    is made."""
    import os
    import sys

    import highspy

    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return highspy.Highs()
    _BANNER_SHOWN = True
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def available() -> bool:
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


class _Model:
    """One kept HiGHS model: the rows of A (``ra``) and of B (``rb``) it holds (global row ids)."""

    def __init__(self, h: object, d: int) -> None:
        self.h = h
        self.d = d
        self.ra = np.zeros(0, dtype=np.int64)
        self.rb = np.zeros(0, dtype=np.int64)


class WarmSeparator:
    """Kept HiGHS models keyed by (cluster uid of the A side, cluster uid of the B side).

    X: float64 ``[n, d]`` the (whitened) points of the fit; rows are addressed by index.
    """

    def __init__(self, X: np.ndarray) -> None:
        self.X = X
        self.scale = float(np.sqrt(np.einsum("ij,ij->i", X, X).max())) if X.size else 1.0
        self.scale = self.scale or 1.0
        self.models: OrderedDict[tuple[int, int], _Model] = OrderedDict()
        self.solves = 0
        self.hits = 0
        self.seconds = 0.0

    # ------------------------------------------------------------------------------------ models
    def _new(self) -> _Model:
        import highspy

        d = self.X.shape[1]
        h: Any = _highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", WARM_TIME_LIMIT)
        h.setOptionValue("threads", 1)
        inf = highspy.kHighsInf
        h.addVars(2 * d, np.zeros(2 * d), np.full(2 * d, inf))
        h.addVar(-inf, inf)
        h.changeColsCost(2 * d, np.arange(2 * d, dtype=np.int32), np.ones(2 * d))
        return _Model(h, d)

    def _add(self, m: _Model, rows: np.ndarray, side_a: bool) -> None:
        if rows.size == 0:
            return
        import highspy

        P = self.X[rows] / self.scale
        n, d = P.shape
        vals = np.empty((n, 2 * d + 1))
        vals[:, :d] = P
        vals[:, d : 2 * d] = -P
        vals[:, 2 * d] = 1.0
        inf = highspy.kHighsInf
        lo, hi = (np.ones(n), np.full(n, inf)) if side_a else (np.full(n, -inf), -np.ones(n))
        ncol = 2 * d + 1
        starts = np.arange(0, n * ncol, ncol, dtype=np.int32)
        idx = np.tile(np.arange(ncol, dtype=np.int32), n)
        m.h.addRows(n, lo, hi, n * ncol, starts, idx, vals.ravel())
        if side_a:
            m.ra = np.concatenate([m.ra, rows])
        else:
            m.rb = np.concatenate([m.rb, rows])

    def drop(self, key: tuple[int, int]) -> None:
        self.models.pop(key, None)

    def rekey(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        """The A side of ``old`` became cluster ``new[0]`` (a merge whose check this model answered)."""
        m = self.models.pop(old, None)
        if m is not None:
            self.models[new] = m

    # ------------------------------------------------------------------------------------ solve
    def separate(
        self,
        A: np.ndarray,
        B: np.ndarray,
        keys: list[tuple[int, int]],
        direction: np.ndarray | None = None,
    ) -> tuple[tuple[np.ndarray, float] | None, tuple[int, int] | None]:
        """Try to separate rows A ``[n_a]`` from rows B ``[n_b]`` (global row ids) with a kept model.

        keys: model keys to look for, best first (e.g. (part of A, B) for each part of a tentative merge); the
        model found (or a new one, stored under ``keys[0]``) is returned with its key so that the caller can
        re-key it after the merge. A new model is only started when ``direction`` is given (the normal of a
        plane that separated a part of A from B: the pair is likely still separable); its first rows are the
        points of each side closest to that plane. Returns ``(plane, key)``: plane ``(w, b)`` in the
        coordinates of ``X``, verified on every point, or None (then nothing is proven and the cold LP must
        decide).
        """
        if A.size + B.size < WARM_MIN_POINTS:
            return None, None
        t0 = time.perf_counter()
        try:
            key = next((k for k in keys if k in self.models), None)
            if key is None and direction is None:
                return None, None
            XA, XB = self.X[A], self.X[B]
            if key is None:
                assert direction is not None
                key = keys[0]
                m = self._new()
                ia = A[np.argsort(XA @ direction, kind="stable")[:WARM_SEED]]
                ib = B[np.argsort(-(XB @ direction), kind="stable")[:WARM_SEED]]
                self._add(m, ia, True)
                self._add(m, ib, False)
            else:
                m = self.models.pop(key)
                self.hits += 1
            self.models[key] = m
            while len(self.models) > WARM_MODELS:
                self.models.popitem(last=False)
            # rows the model holds that are no longer part of A or B cannot be removed cheaply: start afresh
            if not (np.isin(m.ra, A).all() and np.isin(m.rb, B).all()):
                self.models.pop(key, None)
                return None, None
            for _ in range(WARM_ROUNDS):
                plane = self._solve(m)
                if plane is None:
                    self.models.pop(key, None)
                    return None, None
                w, b = plane
                if verify_separation(w, b, XA, XB):
                    return (w, b), key
                va = XA @ w + b
                vb = XB @ w + b
                # the most violated rows of each side (rows of the full LP) that the model lacks join it
                ja = np.flatnonzero(va < 1.0 - 1e-7)
                jb = np.flatnonzero(vb > -1.0 + 1e-7)
                bad_a = A[ja[np.argsort(va[ja], kind="stable")]]
                bad_b = B[jb[np.argsort(-vb[jb], kind="stable")]]
                bad_a = bad_a[~np.isin(bad_a, m.ra)][:WARM_SEED]
                bad_b = bad_b[~np.isin(bad_b, m.rb)][:WARM_SEED]
                if bad_a.size == 0 and bad_b.size == 0:
                    break
                self._add(m, bad_a, True)
                self._add(m, bad_b, False)
            self.models.pop(key, None)
            return None, None
        finally:
            self.seconds += time.perf_counter() - t0

    def _solve(self, m: _Model) -> tuple[np.ndarray, float] | None:
        import highspy

        self.solves += 1
        m.h.run()
        if m.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        x = np.asarray(m.h.getSolution().col_value)
        d = m.d
        w = (x[:d] - x[d : 2 * d]) / self.scale
        return w, float(x[2 * d])
