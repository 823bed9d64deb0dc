"""DirectProbe clustering against an independent brute-force G (every merge checked with an LP)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.optimize import linprog

from tuneprobe.directprobe.cluster import DirectProbe, DuplicateLabelsError


def _lp_separable(A: np.ndarray, B: np.ndarray) -> bool:
    """Independent LP: w·a + b >= 1 on A, w·x + b <= -1 on B (raw coordinates, HiGHS)."""
    d = A.shape[1]
    M = np.vstack([np.hstack([-A, -np.ones((len(A), 1))]), np.hstack([B, np.ones((len(B), 1))])])
    r = linprog(
        np.zeros(d + 1), A_ub=M, b_ub=-np.ones(len(M)), bounds=[(None, None)] * (d + 1), method="highs"
    )
    assert r.status in (0, 2), r.message
    return r.status == 0


def brute_force_g(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The paper's greedy G, written as plainly as possible. Returns the smallest member of each point's
    cluster."""
    X = X.astype(np.float64)
    clusters = [[i] for i in range(len(X))]
    rejected: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()

    def key(a: list[int], b: list[int]) -> tuple[float, int, int]:
        ca = X[a].sum(axis=0) / len(a)
        cb = X[b].sum(axis=0) / len(b)
        lo, hi = sorted((min(a), min(b)))
        return (float(np.sum((ca - cb) ** 2)), lo, hi)

    def one_vector(P: list[int]) -> bool:
        return bool((X[P] == X[P[0]]).all())

    while True:
        best = None
        for s in range(len(clusters)):
            for t in range(s + 1, len(clusters)):
                a, b = clusters[s], clusters[t]
                if y[a[0]] != y[b[0]] or (tuple(a), tuple(b)) in rejected:
                    continue
                k = key(a, b)
                if best is None or k < best[0]:
                    best = (k, s, t)
        if best is None:
            break
        _, s, t = best
        merged = sorted(clusters[s] + clusters[t])
        ok = True
        for o in clusters:
            if y[o[0]] == y[merged[0]]:
                continue
            if one_vector(merged) and one_vector(o) and (X[merged[0]] == X[o[0]]).all():
                continue  # identical points of different labels: tolerated (duplicate_policy="keep")
            if not _lp_separable(X[merged], X[o]):
                ok = False
                break
        if ok:
            clusters = [c for u, c in enumerate(clusters) if u not in (s, t)] + [merged]
        else:
            rejected.add((tuple(clusters[s]), tuple(clusters[t])))
    root = np.empty(len(X), dtype=np.int64)
    for c in clusters:
        root[c] = min(c)
    return root


def _roots(cl) -> np.ndarray:
    out = np.empty(cl.assignment.shape[0], dtype=np.int64)
    for k in range(cl.n_clusters):
        m = cl.members(k)
        out[m] = m.min()
    return out


def _data(
    seed: int, n: int, d: int, n_labels: int, spread: float, grid: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_labels, d)) * spread
    y = rng.integers(0, n_labels, size=n)
    X = centres[y] + rng.normal(size=(n, d))
    if grid:
        X = np.round(X * 2) / 2  # many exact ties and some exact duplicates
    return X, y


CASES = [
    (seed, n, d, L, spread)
    for seed, (n, d, L, spread) in enumerate(
        [(30, 2, 3, 1.0), (40, 3, 3, 0.5), (36, 2, 4, 2.0), (45, 4, 5, 1.0), (40, 3, 3, 1.5), (50, 5, 4, 0.8)]
    )
]


@functools.cache
def _expected(seed: int, n: int, d: int, L: int, spread: float, grid: bool = False) -> np.ndarray:
    X, y = _data(seed, n, d, L, spread, grid)
    return brute_force_g(X, y)


@pytest.mark.parametrize(("seed", "n", "d", "L", "spread"), CASES)
@pytest.mark.parametrize("search", ["naive", "auto"])
def test_matches_brute_force(seed: int, n: int, d: int, L: int, spread: float, search: str) -> None:
    X, y = _data(seed, n, d, L, spread)
    cl = DirectProbe(search=search, progress=False).fit(X, y)
    np.testing.assert_array_equal(_roots(cl), _expected(seed, n, d, L, spread))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_with_ties_and_duplicates(seed: int) -> None:
    X, y = _data(100 + seed, 40, 2, 3, 1.0, grid=True)
    expected = _expected(100 + seed, 40, 2, 3, 1.0, True)
    for search in ("naive", "auto"):
        cl = DirectProbe(search=search, progress=False).fit(X, y)
        np.testing.assert_array_equal(_roots(cl), expected)


@pytest.mark.parametrize("forward_check", ["gram", "sphere"])
def test_far_label_is_skipped_and_result_matches_brute_force(forward_check: str) -> None:
    """Label 2 lies far from labels 0 and 1 (which overlap): its pairs are certified once, at the label level,
    and G never checks its clusters, yet the partition is G's."""
    X, y = _data(21, 45, 3, 3, 0.6)
    X[y == 2] += 50.0
    expected = brute_force_g(X, y)
    for search in ("naive", "auto"):
        cl = DirectProbe(search=search, forward_check=forward_check, progress=False).fit(X, y)  # type: ignore[arg-type]
        np.testing.assert_array_equal(_roots(cl), expected)
        assert cl.stats["label_pairs_certified"] == 2 and cl.stats["forward_rejected"] > 0


@pytest.mark.parametrize(("seed", "n", "d", "L", "spread"), [(0, 60, 2, 2, 0.3), (1, 50, 2, 3, 0.7)])
def test_many_rejections_working_set_lp_and_witnesses_match_brute_force(
    seed: int, n: int, d: int, L: int, spread: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heavy overlap (dozens of rejections): with a tiny LP working set, overlaps are proven on subsets and
    their witnesses reject later merges of supersets; the partition is still G's."""
    from tuneprobe.directprobe import separability

    monkeypatch.setattr(separability, "LP_WORK", 3)
    X, y = _data(seed, n, d, L, spread)
    expected = brute_force_g(X, y)
    for search in ("naive", "auto"):
        cl = DirectProbe(search=search, progress=False).fit(X, y)
        np.testing.assert_array_equal(_roots(cl), expected)
        sep = cl.stats["separability"]
        assert cl.stats["forward_rejected"] >= 20
        assert sep["certified_by"]["witness"] >= 5  # merges rejected by a stored witness, no LP
        assert sep["lp_rounds"] > sep["lp_calls"]  # some LPs took several working-set rounds


@pytest.mark.parametrize("seed", [3, 4])
def test_final_clusters_pairwise_separable_and_label_pure(seed: int) -> None:
    X, y = _data(seed, 120, 4, 4, 0.7)
    cl = DirectProbe(progress=False).fit(X, y)
    for k in range(cl.n_clusters):
        assert (y[cl.members(k)] == cl.cluster_labels[k]).all()
    for a in range(cl.n_clusters):
        for b in range(a + 1, cl.n_clusters):
            if cl.cluster_labels[a] != cl.cluster_labels[b]:
                assert _lp_separable(X[cl.members(a)], X[cl.members(b)])
    assert cl.n_clusters >= cl.n_labels


def test_repeated_runs_identical() -> None:
    X, y = _data(7, 150, 5, 4, 0.6)
    a = DirectProbe(progress=False).fit(X, y)
    b = DirectProbe(progress=False).fit(X, y)
    np.testing.assert_array_equal(a.assignment, b.assignment)
    np.testing.assert_array_equal(a.cluster_labels, b.cluster_labels)


def test_linearly_separable_labels_give_one_cluster_per_label() -> None:
    X, y = _data(8, 200, 6, 5, 12.0)
    cl = DirectProbe(progress=False).fit(X, y, label_names=list("abcde"))
    assert cl.is_linear and cl.stats["end_state_clean"] is True
    assert cl.label_names == list("abcde")
    assert cl.stats["separability"]["lp_infeasible"] == 0


def _with_conflicts() -> tuple[np.ndarray, np.ndarray]:
    X, y = _data(9, 40, 3, 3, 1.0)
    X = np.vstack([X, X[[0, 5]], X[[2]]])
    y = np.r_[y, (y[[0, 5]] + 1) % 3, y[[2]]]  # two conflicting copies and one harmless copy
    return X, y


@pytest.mark.parametrize("search", ["naive", "auto"])
def test_duplicates_keep_terminates_and_matches_brute_force(search: str) -> None:
    X, y = _with_conflicts()
    cl = DirectProbe(search=search, progress=False).fit(X, y)
    rep = cl.stats["duplicates"]
    assert rep["n_conflicting_groups"] == 2 and rep["n_conflicting_points"] == 4
    assert rep["n_identical_groups"] == 3
    assert sorted(r for e in rep["examples"] for r in e["rows"]) == [0, 5, 40, 41]
    np.testing.assert_array_equal(_roots(cl), brute_force_g(X, y))


def test_duplicates_drop_and_error() -> None:
    X, y = _with_conflicts()
    cl = DirectProbe(duplicate_policy="drop", progress=False).fit(X, y)
    assert (cl.assignment[[0, 5, 40, 41]] == -1).all() and (cl.assignment[np.r_[1:5, 6:40, 42]] >= 0).all()
    assert cl.stats["duplicates"]["n_dropped"] == 4
    with pytest.raises(DuplicateLabelsError, match="different labels"):
        DirectProbe(duplicate_policy="error", progress=False).fit(X, y)


def test_all_points_identical_two_labels() -> None:
    X = np.ones((6, 3))
    y = np.array([0, 0, 0, 1, 1, 1])
    cl = DirectProbe(progress=False).fit(X, y)
    assert cl.n_clusters == 2  # copies of one vector merge; the two single-point hulls are tolerated


def test_legacy_forward_loop_stops_early_or_equal() -> None:
    X, y = _data(11, 120, 3, 3, 0.5)
    new = DirectProbe(progress=False).fit(X, y)
    old = DirectProbe(progress=False, legacy_forward_loop=True).fit(X, y)
    assert old.n_clusters >= new.n_clusters


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        DirectProbe(progress=False).fit(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError):
        DirectProbe(search="fast")  # type: ignore[arg-type]


@pytest.mark.parametrize(("seed", "n", "rounded"), [(0, 60, False), (1, 60, True), (2, 1300, False)])
def test_unchecked_order_is_exact_centroid_linkage(seed: int, n: int, rounded: bool) -> None:
    """The per-label queue pops pairs in exact (dist2, min index, min index) order, also after compaction.

    float32-representable inputs (like encoder outputs) make every centroid sum exact, so the keys match bit
    for bit.
    """
    from tuneprobe.directprobe._agglo import LabelQueue

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32).astype(np.float64)
    if rounded:
        X = np.round(X)  # many exact ties and duplicates
    q = LabelQueue(X, np.arange(n))
    got = []
    while (h := q.head()) is not None:
        got.append((h[0], int(q.idx[h[1]]), int(q.idx[h[2]])))
        q.merge(h[1], h[2])
    assert len(got) == n - 1
    if n > 100:
        return  # compaction exercised; the brute force below is O(n^3)
    clusters = [[i] for i in range(n)]
    for key in got:
        best = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                ca = X[clusters[a]].sum(axis=0) / len(clusters[a])
                cb = X[clusters[b]].sum(axis=0) / len(clusters[b])
                lo, hi = sorted((min(clusters[a]), min(clusters[b])))
                k = (float(np.sum((ca - cb) ** 2)), lo, hi)
                if best is None or k < best[0]:
                    best = (k, a, b)
        assert best is not None and best[0] == key
        _, a, b = best
        clusters = [c for u, c in enumerate(clusters) if u not in (a, b)] + [clusters[a] + clusters[b]]


def test_duplicate_groups_and_replay() -> None:
    from tuneprobe.directprobe.cluster import find_duplicate_groups, replay

    X = np.array([[1.0, 2.0], [0.0, -0.0], [1.0, 2.0], [0.0, 0.0], [1.0, 3.0]])
    np.testing.assert_array_equal(find_duplicate_groups(X), [0, 1, 0, 1, 2])
    root = replay(5, np.array([0, 1, 0]), np.array([2, 3, 1]), 2)
    np.testing.assert_array_equal(root, [0, 1, 0, 1, 4])
    np.testing.assert_array_equal(replay(5, np.array([0, 1, 0]), np.array([2, 3, 1]), 3), [0, 0, 0, 0, 4])


def _stop_at(monkeypatch: pytest.MonkeyPatch, phase: str, after: int) -> None:
    """Make the fit's budget run out at the ``after``-th budget point reached in ``phase``."""
    from tuneprobe.directprobe import _engine

    calls = {"n": 0}

    def budget(self: _engine.Engine) -> None:
        if self.phase == phase:
            calls["n"] += 1
            if calls["n"] >= after:
                raise _engine.BudgetExceeded(self.phase)

    monkeypatch.setattr(_engine.Engine, "_budget", budget)


@pytest.mark.parametrize(("phase", "after"), [("end_check", 1), ("search", 2), ("forward", 6)])
def test_budget_returns_a_clean_partition_that_g_coarsens(
    phase: str, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fit that runs out of budget stops with finished=False and the phase it was in; its partition is
    label-pure, every pair of different-label clusters is LP-separable, and the finished fit's partition
    coarsens it (every unfinished cluster lies inside one final cluster)."""
    X, y = _data(5, 60, 3, 3, 0.6)
    full = DirectProbe(progress=False).fit(X, y)
    assert full.finished and full.stats["finished"] is True
    _stop_at(monkeypatch, phase, after)
    cl = DirectProbe(progress=False).fit(X, y)
    assert not cl.finished and not cl.is_linear
    assert cl.stats["finished"] is False and cl.stats["stopped_in"] == phase
    assert full.n_clusters < cl.n_clusters <= y.size
    for k in range(cl.n_clusters):
        m = cl.members(k)
        assert (y[m] == cl.cluster_labels[k]).all()
        assert np.unique(full.assignment[m]).size == 1
    for a in range(cl.n_clusters):
        for b in range(a + 1, cl.n_clusters):
            if cl.cluster_labels[a] != cl.cluster_labels[b]:
                assert _lp_separable(X[cl.members(a)], X[cl.members(b)])
    if phase == "forward":
        # undecided same-label pairs: at least the one being checked, at most every same-label pair
        per_label = np.bincount(cl.cluster_labels)
        assert 1 <= cl.stats["pairs_left"] <= int((per_label * (per_label - 1) // 2).sum())
        assert cl.stats["forward_pops"] == cl.stats["forward_accepted"] + cl.stats["forward_rejected"]
    elif phase == "end_check":
        assert cl.n_clusters == y.size  # nothing checked yet: singletons


def test_budget_pairs_left_counts_undecided_pairs_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pairs_left`` equals a direct enumeration of the stopped queues: every pair of active same-label slots
    that is not recorded as rejected against the slot's current cluster."""
    from tuneprobe.directprobe import _engine

    X, y = _data(5, 60, 3, 3, 0.6)
    seen: dict[str, int] = {}
    orig = _engine.Engine.run

    def run(self: _engine.Engine) -> np.ndarray:
        root = orig(self)
        if not self.stats["finished"]:
            left = 0
            for q in self.queues.values():
                act = np.flatnonzero(q.active)
                for a in range(act.size):
                    for b in range(a + 1, act.size):
                        i, j = int(act[a]), int(act[b])
                        left += (j, int(q.gen[j])) not in q.rejected.get(i, set())
            seen["left"] = left
        return root

    monkeypatch.setattr(_engine.Engine, "run", run)
    _stop_at(monkeypatch, "forward", 10)
    cl = DirectProbe(progress=False).fit(X, y)
    assert cl.stats["pairs_left"] == seen["left"] > 0


def test_max_seconds_validation_and_real_deadline() -> None:
    with pytest.raises(ValueError, match="max_seconds"):
        DirectProbe(max_seconds=0)
    X, y = _data(5, 60, 3, 3, 0.6)
    cl = DirectProbe(progress=False, max_seconds=1e-9).fit(X, y)  # already past at the first budget point
    assert not cl.finished and cl.stats["stopped_in"] == "end_check" and cl.n_clusters == y.size
    assert DirectProbe(progress=False, max_seconds=3600).fit(X, y).finished


def test_warm_lp_gives_the_same_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    """With kept HiGHS models used for every pair (no size floor, tiny seeds so that rounds add rows) and the
    cheap iterative certificates switched off, G's partition equals the brute force one and the one without
    kept models, and the kept models answered checks."""
    pytest.importorskip("highspy")
    from tuneprobe.directprobe import _engine, _warm_lp

    monkeypatch.setattr(_warm_lp, "WARM_MIN_POINTS", 0)
    monkeypatch.setattr(_warm_lp, "WARM_SEED", 2)
    monkeypatch.setattr(_engine, "gilbert_certificate", lambda *a, **k: None)
    monkeypatch.setattr(_engine, "svm_certificate", lambda *a, **k: None)
    answered = 0
    for seed, n, d, L, spread in [(0, 60, 2, 2, 0.3), (1, 50, 2, 3, 0.7), (5, 90, 3, 3, 0.8)]:
        X, y = _data(seed, n, d, L, spread)
        warm = DirectProbe(progress=False).fit(X, y)
        cold = DirectProbe(progress=False, warm_lp=False).fit(X, y)
        np.testing.assert_array_equal(_roots(warm), brute_force_g(X, y))
        np.testing.assert_array_equal(cold.assignment, warm.assignment)
        sep = warm.stats["separability"]
        assert sep["warm_lp_solves"] >= sep["certified_by"]["warm_lp"]
        assert cold.stats["separability"]["certified_by"]["warm_lp"] == 0
        answered += sep["certified_by"]["warm_lp"]
    assert answered > 0
