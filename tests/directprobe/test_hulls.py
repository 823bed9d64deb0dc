"""Hull distances against an independent QP (SLSQP over simplex weights), overlaps, certificates, batching."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from tuneprobe.directprobe.clustering import Clustering
from tuneprobe.directprobe.hulls import (
    cluster_distance_matrix,
    cluster_distances,
    hull_distance,
    point_hull_distance,
    point_hull_distance_details,
    point_hull_distances,
)


def qp_distance(A: np.ndarray, B: np.ndarray) -> float:
    """min ||alpha A - beta B|| over two simplices, by SLSQP (independent of the code under test)."""
    nA, nB = len(A), len(B)

    def f(z: np.ndarray) -> float:
        x = z[:nA] @ A - z[nA:] @ B
        return float(x @ x)

    def g(z: np.ndarray) -> np.ndarray:
        x = z[:nA] @ A - z[nA:] @ B
        return np.concatenate([2 * A @ x, -2 * B @ x])

    z0 = np.concatenate([np.full(nA, 1 / nA), np.full(nB, 1 / nB)])
    ea = np.r_[np.ones(nA), np.zeros(nB)]
    eb = np.r_[np.zeros(nA), np.ones(nB)]
    cons = [
        {"type": "eq", "fun": lambda z: z @ ea - 1, "jac": lambda z: ea},
        {"type": "eq", "fun": lambda z: z @ eb - 1, "jac": lambda z: eb},
    ]
    r = minimize(
        f,
        z0,
        jac=g,
        bounds=[(0, 1)] * (nA + nB),
        constraints=cons,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 3000},
    )
    return float(np.sqrt(max(r.fun, 0.0)))


def make_clustering(
    assign: list[int] | np.ndarray, labels: list[int], names: list[str] | None = None
) -> Clustering:
    a = np.asarray(assign, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    n_labels = int(lab.max()) + 1 if names is None else len(names)
    return Clustering(assignment=a, cluster_labels=lab, n_labels=n_labels, label_names=names)


CASES = [
    (d, nA, nB, seed)
    for seed, (d, nA, nB) in enumerate(
        [(2, 5, 7), (3, 12, 4), (5, 20, 20), (10, 8, 30), (30, 25, 15), (60, 40, 35), (3, 1, 9), (8, 1, 1)]
    )
]


@pytest.mark.parametrize("d,nA,nB,seed", CASES)
def test_hull_distance_matches_qp(d: int, nA: int, nB: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(nA, d))
    B = rng.normal(size=(nB, d)) + 4.0 * rng.normal(size=d) / np.sqrt(d) + np.r_[3.0, np.zeros(d - 1)]
    r = hull_distance(A, B)
    q = qp_distance(A, B)
    assert q > 1e-3
    assert r.converged and not r.overlap
    assert abs(r.distance - q) <= 1e-4 * q
    # certificate: the points are convex combinations and realise the distance; the bound brackets the truth
    assert np.isclose(r.alpha.sum(), 1) and np.isclose(r.beta.sum(), 1)
    assert (r.alpha >= 0).all() and (r.beta >= 0).all()
    np.testing.assert_allclose(r.a, r.alpha @ A, atol=1e-12)
    assert np.isclose(np.linalg.norm(r.a - r.b), r.distance, rtol=1e-9)
    assert r.lower <= q * (1 + 1e-9) and r.distance >= q * (1 - 1e-9)
    assert r.distance - r.lower <= 1e-4 * r.distance
    assert np.isclose(r.gap, (r.distance - r.lower) * r.distance, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_hull_distance_random_shifts_vs_qp(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    d = int(rng.choice([2, 4, 16]))
    A = rng.normal(size=(int(rng.integers(2, 15)), d))
    B = rng.normal(size=(int(rng.integers(2, 15)), d)) + rng.uniform(1.0, 4.0) * np.eye(d)[0]
    q = qp_distance(A, B)
    r = hull_distance(A, B)
    if q < 1e-6:
        assert r.overlap and r.distance == 0.0
    else:
        assert abs(r.distance - q) <= 1e-4 * q


def test_overlapping_hulls_are_zero() -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(30, 3))
    B = rng.normal(size=(25, 3)) * 0.5
    r = hull_distance(A, B)
    assert r.overlap and r.converged and r.distance == 0.0 and r.lower == 0.0
    # crossing segments in the plane
    r = hull_distance(np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([[0.0, -1.0], [0.0, 1.0]]))
    assert r.overlap and r.distance == 0.0
    # touching hulls (shared vertex)
    r = hull_distance(np.array([[0.0, 0.0], [-1.0, 1.0]]), np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert r.distance == 0.0


def test_parallel_segments_exact() -> None:
    A = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    B = np.array([[0.5, 2.0, 0.0], [3.0, 2.0, 0.0]])
    r = hull_distance(A, B)
    assert r.distance == pytest.approx(2.0, rel=1e-12)


def test_point_hull_distance() -> None:
    rng = np.random.default_rng(3)
    C = rng.normal(size=(20, 5))
    inside = C[:6].mean(0)
    r = point_hull_distance(inside, C)
    assert r.overlap and r.distance == 0.0
    for k in range(4):
        p = rng.normal(size=5) * 3 + 4 * np.eye(5)[k]
        r = point_hull_distance(p, C)
        q = qp_distance(C, p[None])
        assert abs(r.distance - q) <= 1e-4 * max(q, 1e-12)
        np.testing.assert_allclose(r.b, p)
    # a vertex of the hull is at distance 0
    assert point_hull_distance(C[3], C).distance == 0.0


def test_cluster_distance_matrix_matches_pairwise() -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(5, 6)) * 6
    sizes = [1, 4, 9, 15, 2]
    X = np.concatenate([c + rng.normal(size=(s, 6)) for c, s in zip(centres, sizes, strict=True)])
    assign = np.repeat(np.arange(5), sizes)
    perm = rng.permutation(len(X))  # rows need not be grouped by cluster
    X, assign = X[perm], assign[perm]
    cl = make_clustering(assign, [0, 1, 1, 2, 0])
    D = cluster_distance_matrix(X, cl)
    assert D.shape == (5, 5)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    np.testing.assert_array_equal(D, D.T)
    for i in range(5):
        for j in range(5):
            if i == j:
                continue
            same = cl.cluster_labels[i] == cl.cluster_labels[j]
            if same:
                assert np.isnan(D[i, j])
            else:
                q = qp_distance(X[assign == i], X[assign == j])
                assert abs(D[i, j] - q) <= 1e-4 * q
    full = cluster_distances(X, cl, same_label=True)
    q = qp_distance(X[assign == 1], X[assign == 2])
    assert abs(full.distance[1, 2] - q) <= 1e-4 * max(q, 1e-9)
    assert full.converged.all()
    assert (full.lower <= full.distance + 1e-12).all()
    # small chunks give the same answer
    np.testing.assert_allclose(cluster_distances(X, cl, chunk_pairs=2).distance, D, rtol=1e-4, equal_nan=True)


def test_dropped_rows_are_ignored() -> None:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [1.0, 0.5], [3.0, 0.0]])
    cl = make_clustering([0, 0, 1, -1, 1], [0, 1])
    D = cluster_distance_matrix(X, cl)
    assert D[0, 1] == pytest.approx(3.0, rel=1e-9)


def test_point_hull_distances_matrix() -> None:
    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(size=(12, 4)), rng.normal(size=(7, 4)) + 5, rng.normal(size=(1, 4)) - 5])
    cl = make_clustering(np.repeat([0, 1, 2], [12, 7, 1]), [0, 1, 0])
    P = np.concatenate([rng.normal(size=(5, 4)) * 3, X[:1], X[:3].mean(0, keepdims=True)])
    M = point_hull_distances(P, X, cl)
    assert M.shape == (7, 3)
    for t in range(7):
        for c in range(3):
            q = qp_distance(X[cl.assignment == c], P[t][None])
            assert abs(M[t, c] - q) <= 1e-4 * max(q, 1e-9) + 1e-9
    assert M[5, 0] == 0.0 and M[6, 0] == 0.0
    mask = np.zeros((7, 3), dtype=bool)
    mask[:, 1] = True
    det = point_hull_distance_details(P, X, cl, clusters=mask)
    assert np.isnan(det.distance[:, 0]).all()
    np.testing.assert_allclose(det.distance[:, 1], M[:, 1])


def test_duplicates_and_degenerate_inputs() -> None:
    A = np.array([[1.0, 1.0]] * 5)
    B = np.array([[1.0, 1.0], [2.0, 2.0]])
    assert hull_distance(A, B).distance == 0.0
    r = hull_distance(A, np.array([[4.0, 5.0]] * 3))
    assert r.distance == pytest.approx(5.0, rel=1e-12)
    with pytest.raises(ValueError):
        hull_distance(np.zeros((0, 2)), B)
    with pytest.raises(ValueError):
        hull_distance(np.array([[np.nan, 0.0]]), B)


def test_unknown_backend_is_a_clear_error() -> None:
    X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    cl = make_clustering([0, 0, 1], [0, 1])
    with pytest.raises(ValueError, match="backend"):
        cluster_distance_matrix(X, cl, backend="jax")


def test_nearest_only_abandons_far_clusters() -> None:
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(size=(10, 3)) + 10 * k for k in range(4)])
    cl = make_clustering(np.repeat(np.arange(4), 10), [0, 1, 2, 3])
    P = rng.normal(size=(3, 3)) * 0.3 + 4.0
    full = point_hull_distance_details(P, X, cl)
    near = point_hull_distance_details(P, X, cl, nearest_only=True)
    best = full.distance.argmin(1)
    np.testing.assert_allclose(
        near.distance[np.arange(3), best], full.distance[np.arange(3), best], rtol=1e-4
    )
    assert np.isnan(near.distance).any()
    assert (
        near.lower[np.isnan(near.distance)] > full.distance.min(1).repeat(4)[np.isnan(near.distance).ravel()]
    ).all()


def _certified(r: object, q: float, rtol: float = 1e-4) -> None:
    """Reported distance within rtol of the QP value and the certificate brackets it."""
    assert abs(r.distance - q) <= rtol * q  # type: ignore[attr-defined]
    assert r.lower <= q * (1 + 1e-9) <= r.distance * (1 + 2e-9)  # type: ignore[attr-defined]
    assert r.distance - r.lower <= rtol * r.distance * (1 + 1e-9)  # type: ignore[attr-defined]


def test_degenerate_point_sets_vs_qp() -> None:
    rng = np.random.default_rng(21)
    # duplicates: every point of A three times, B with repeated rows
    A = np.repeat(rng.normal(size=(6, 4)), 3, axis=0)
    B = np.repeat(rng.normal(size=(4, 4)) + np.r_[3.0, 0, 0, 0], 2, axis=0)
    _certified(hull_distance(A, B), qp_distance(A, B))
    # collinear points on each side (hulls are segments), skew lines in 3-d
    t = np.linspace(0.0, 1.0, 9)[:, None]
    A = np.array([0.0, 0.0, 0.0]) + t * np.array([1.0, 0.0, 0.0])
    B = np.array([0.2, -0.5, 1.0]) + t * np.array([0.0, 1.0, 0.0])
    r = hull_distance(A, B)
    assert r.distance == pytest.approx(1.0, rel=1e-4) and r.converged
    # many more points than dimensions + 1 (corral limited by affine independence)
    A = rng.normal(size=(60, 2))
    B = rng.normal(size=(45, 2)) + np.r_[6.0, 1.0]
    _certified(hull_distance(A, B), qp_distance(A, B))
    # single points on both sides
    r = hull_distance(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 2.0, 5.0]]))
    assert r.distance == pytest.approx(2.0, rel=1e-12) and r.converged


def test_float32_input_matches_float64() -> None:
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(30, 16)) + 3 * k for k in range(4)]).astype(np.float32)
    cl = make_clustering(np.repeat(np.arange(4), 30), [0, 1, 2, 3])
    d32 = cluster_distances(X, cl)
    d64 = cluster_distances(X.astype(np.float64), cl)
    np.testing.assert_allclose(d32.distance, d64.distance, rtol=1e-12)
    assert (d32.lower <= d32.distance).all() and d32.converged.all()


def test_gram_mode_point_hull_matches_single_pairs_and_qp() -> None:
    # enough pairs per point for the Gram-mode path; compare with one-pair calls (d-space) and SLSQP
    rng = np.random.default_rng(9)
    X = np.concatenate([rng.normal(size=(25, 6)) + 2.5 * rng.normal(size=6) for _ in range(6)])
    cl = make_clustering(np.repeat(np.arange(6), 25), [0, 1, 2, 3, 4, 5])
    P = np.concatenate([rng.normal(size=(8, 6)) * 2.0, X[[0, 30]], X[50:53].mean(0, keepdims=True)])
    det = point_hull_distance_details(P, X, cl)
    assert det.converged.all()
    for t in range(P.shape[0]):
        for c in range(6):
            C = X[cl.assignment == c]
            single = point_hull_distance(P[t], C)
            if single.overlap:
                assert det.overlap[t, c] and det.distance[t, c] == 0.0
                continue
            assert abs(det.distance[t, c] - single.distance) <= 1e-4 * single.distance
            assert det.lower[t, c] <= single.distance * (1 + 1e-9)
            if t < 2 and c < 3:
                q = qp_distance(C, P[t][None])
                assert abs(det.distance[t, c] - q) <= 1e-4 * q
    assert det.overlap[8, 0] and det.overlap[9, 1] and det.overlap[10, 2]


def test_results_are_deterministic_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import tuneprobe.directprobe.hulls as hulls_mod

    rng = np.random.default_rng(13)
    K, n, d = 50, 100, 6
    X = np.concatenate([rng.normal(size=(n, d)) + 6 * rng.normal(size=d) for _ in range(K)])
    cl = make_clustering(np.repeat(np.arange(K), n), list(range(K)))
    first = cluster_distances(X, cl, same_label=True)
    second = cluster_distances(X, cl, same_label=True)
    monkeypatch.setattr(hulls_mod, "_n_threads", lambda work, n_groups: 1)
    serial = cluster_distances(X, cl, same_label=True)
    for name in ("distance", "lower", "gap", "iterations"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
        np.testing.assert_array_equal(getattr(first, name), getattr(serial, name))
    assert first.converged.all()
    iu = np.triu_indices(K, 1)
    ok = ~first.overlap[iu]
    assert (first.distance[iu][ok] - first.lower[iu][ok] <= 1e-4 * first.distance[iu][ok] * (1 + 1e-9)).all()
