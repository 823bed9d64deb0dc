"""The batched torch hull solver (run on the CPU here) against the compiled solver and an independent QP."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tuneprobe.directprobe.clustering import Clustering  # noqa: E402
from tuneprobe.directprobe.hulls import (  # noqa: E402
    _sorted_blocks,
    cluster_distances,
    hull_distance,
    point_hull_distance_details,
    resolve_backend,
)
from tuneprobe.directprobe.hulls_torch import TorchSolveStats, resolve_device, solve_pairs_torch  # noqa: E402

from .test_hulls import qp_distance  # noqa: E402


def _solve(blocks: list[np.ndarray], pairs: list[tuple[int, int]], **kw: object) -> tuple[np.ndarray, ...]:
    """Torch-only solve of ``pairs`` of ``blocks`` (float64, centred like hulls.py does)."""
    X = np.concatenate(blocks)
    X = X - X.mean(0)
    sizes = np.array([len(b) for b in blocks])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pa = np.array([p[0] for p in pairs])
    pb = np.array([p[1] for p in pairs])
    atol = 1e-9 * float(np.sqrt((X * X).sum(1).max()))
    return solve_pairs_torch(X, starts, sizes, pa, pb, rtol=1e-4, atol=atol, device="cpu", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(6))
def test_batched_pairs_match_numba_and_qp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 9))
    blocks = [rng.normal(size=(int(rng.integers(1, 25)), d)) + rng.normal(size=d) * 3 for _ in range(5)]
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    dist, lower, gap, conv, ovl, _ = _solve(blocks, pairs)
    assert conv.all()
    for p, (i, j) in enumerate(pairs):
        ref = hull_distance(blocks[i], blocks[j])
        if ref.overlap:
            assert ovl[p] and dist[p] == 0.0
            continue
        assert dist[p] == pytest.approx(ref.distance, rel=1e-4)
        assert lower[p] <= dist[p] and dist[p] - lower[p] <= 1e-4 * dist[p] * (1 + 1e-9)
        assert gap[p] <= 1e-4 * dist[p] ** 2 * (1 + 1e-9)
    i, j = pairs[0]
    q = qp_distance(blocks[i], blocks[j])
    assert dist[0] == pytest.approx(q, rel=1e-4, abs=1e-7)


def test_high_dimension_and_chunking_agree() -> None:
    """d = 40 with clusters bigger than d; a tiny memory budget (one pair per chunk) changes nothing."""
    rng = np.random.default_rng(7)
    blocks = [rng.normal(size=(n, 40)) + 2.5 * rng.normal(size=40) for n in (60, 45, 30, 8)]
    pairs = [(0, 1), (0, 2), (1, 3), (2, 3)]
    st = TorchSolveStats()
    one = _solve(blocks, pairs, stats=st)
    many = _solve(blocks, pairs, memory_bytes=1)
    assert one[3].all() and many[3].all()
    np.testing.assert_allclose(one[0], many[0], rtol=1e-12)
    assert st.chunks == 1 and st.majors > 0
    for p, (i, j) in enumerate(pairs):
        assert one[0][p] == pytest.approx(hull_distance(blocks[i], blocks[j]).distance, rel=1e-4)


def test_overlapping_hulls_and_point_inside_are_zero() -> None:
    rng = np.random.default_rng(3)
    A = rng.normal(size=(30, 5))
    B = rng.normal(size=(25, 5)) * 0.5  # inside A's cloud: the hulls overlap
    p_in = A[:10].mean(0)[None, :]  # a convex combination of A's points
    p_out = (A.max(0) + 1.0)[None, :]
    dist, lower, _, conv, ovl, _ = _solve([A, B, p_in, p_out], [(0, 1), (0, 2), (0, 3)])
    assert conv.all()
    assert ovl[0] and dist[0] == 0.0 and lower[0] == 0.0
    assert ovl[1] and dist[1] == 0.0
    assert not ovl[2]
    assert dist[2] == pytest.approx(hull_distance(A, p_out).distance, rel=1e-4)


def test_identical_and_single_point_sets() -> None:
    A = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    dist, _, _, conv, ovl, _ = _solve([A, A.copy(), np.array([[3.0, 3.0]])], [(0, 1), (0, 2), (2, 1)])
    assert conv.all() and ovl[0] and dist[0] == 0.0
    assert dist[1] == pytest.approx(np.sqrt(2.0) * 2.0, rel=1e-4)
    assert dist[2] == pytest.approx(dist[1], rel=1e-12)


def _clustered(seed: int, d: int = 6) -> tuple[np.ndarray, Clustering]:
    rng = np.random.default_rng(seed)
    sizes = [12, 7, 20, 3, 9, 15]
    X = np.concatenate([rng.normal(size=(n, d)) + 3 * rng.normal(size=d) for n in sizes])
    assign = np.repeat(np.arange(len(sizes)), sizes)
    return X, Clustering(assign, np.array([0, 1, 2, 0, 1, 2]), 3)


def test_public_api_torch_backend_matches_numpy() -> None:
    X, cl = _clustered(11)
    ref = cluster_distances(X.astype(np.float32), cl, backend="numpy")
    got = cluster_distances(X.astype(np.float32), cl, backend="torch", device="cpu")
    fin = np.isfinite(ref.distance)
    assert np.array_equal(fin, np.isfinite(got.distance))
    np.testing.assert_allclose(got.distance[fin], ref.distance[fin], rtol=1e-4, atol=1e-9)
    assert np.array_equal(got.overlap, ref.overlap)
    assert got.converged.all()
    rng = np.random.default_rng(1)
    P = np.concatenate([X[:3].mean(0, keepdims=True), rng.normal(size=(5, X.shape[1])) * 4])
    rp = point_hull_distance_details(P, X, cl, backend="numpy")
    gp = point_hull_distance_details(P, X, cl, backend="torch", device="cpu")
    np.testing.assert_allclose(gp.distance, rp.distance, rtol=1e-4, atol=1e-9)
    assert gp.distance[0, 0] == 0.0 and gp.overlap[0, 0]


def test_unconverged_pairs_are_flagged_and_resolved_exactly() -> None:
    """With max_iter=0 the torch solver certifies (almost) nothing; its bounds stay valid, and the public
    API re-solves the uncertified pairs on the CPU."""
    X, cl = _clustered(5, d=8)
    order, starts, sizes, mu = _sorted_blocks(X, cl)
    Xs = X[order] - mu
    pa, pb = np.array([0, 1, 2]), np.array([1, 2, 3])
    dist, lower, _, conv, _, _ = solve_pairs_torch(
        Xs, starts, sizes, pa, pb, rtol=1e-4, atol=1e-12, max_iter=0, device="cpu"
    )
    ref = cluster_distances(X, cl, backend="numpy", same_label=True)
    for p in range(3):
        true = ref.distance[pa[p], pb[p]]
        assert lower[p] <= true * (1 + 1e-9) + 1e-12 and dist[p] >= true * (1 - 1e-4) - 1e-12
    assert not conv.all()


def test_backend_and_device_resolution() -> None:
    assert resolve_backend("numpy", "cuda") == "numpy"
    assert resolve_backend("torch", "cpu") == "torch"
    assert resolve_backend("auto", "cpu") == "numpy"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("auto", "auto") == ("torch" if torch.cuda.is_available() else "numpy")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("jax", "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_degenerate_sets_match_qp() -> None:
    """Duplicated rows, collinear sets (segments, skew lines), many more points than d + 1, single points."""
    rng = np.random.default_rng(21)
    t = np.linspace(0.0, 1.0, 9)[:, None]
    cases = [
        (
            np.repeat(rng.normal(size=(6, 4)), 3, axis=0),
            np.repeat(rng.normal(size=(4, 4)) + [3.0, 0, 0, 0], 2, 0),
        ),
        (t * np.array([1.0, 0.0, 0.0]), np.array([0.2, -0.5, 1.0]) + t * np.array([0.0, 1.0, 0.0])),
        (rng.normal(size=(60, 2)), rng.normal(size=(45, 2)) + np.r_[6.0, 1.0]),
        (np.array([[1.0, 1.0]] * 5), np.array([[1.0, 1.0], [2.0, 2.0]])),
        (np.array([[1.0, 1.0]] * 5), np.array([[4.0, 5.0]] * 3)),
    ]
    for A, B in cases:
        dist, lower, _, conv, ovl, _ = _solve([A, B], [(0, 1)])
        q = qp_distance(A, B)
        assert conv[0]
        if q < 1e-6:
            assert ovl[0] and dist[0] == 0.0
        else:
            assert dist[0] == pytest.approx(q, rel=1e-4) and lower[0] <= q * (1 + 1e-6)
