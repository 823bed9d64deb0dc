"""Certificates and the exact LP: every "separable" hyperplane really separates; the LP finds real
overlaps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from tuneprobe.directprobe.separability import (
    MulticlassCertificate,
    SeparabilityStats,
    affine_certificate,
    lp_separate,
    projection_certificate,
    sphere_certificate,
    svm_certificate,
    verify_separation,
)


def _independent_lp(A: np.ndarray, B: np.ndarray) -> bool:
    d = A.shape[1]
    M = np.vstack([np.hstack([-A, -np.ones((len(A), 1))]), np.hstack([B, np.ones((len(B), 1))])])
    r = linprog(
        np.zeros(d + 1), A_ub=M, b_ub=-np.ones(len(M)), bounds=[(None, None)] * (d + 1), method="highs"
    )
    assert r.status in (0, 2)
    return r.status == 0


def _plane_separates(h: tuple[np.ndarray, float], A: np.ndarray, B: np.ndarray) -> bool:
    w, b = h
    return bool((A @ w + b > 0).all() and (B @ w + b < 0).all())


def _two_clouds(seed: int, na: int, nb: int, d: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(na, d))
    B = rng.normal(size=(nb, d))
    B[:, 0] += shift
    return A, B


XOR_A = np.array([[0.0, 0.0], [1.0, 1.0]])
XOR_B = np.array([[0.0, 1.0], [1.0, 0.0]])


def test_lp_says_overlap_on_xor() -> None:
    st = SeparabilityStats()
    r = lp_separate(XOR_A, XOR_B, st)
    assert r.separable is False and r.status == 2
    assert st.lp_calls == 1 and st.lp_infeasible == 1
    assert not _independent_lp(XOR_A, XOR_B)


def test_lp_overlap_when_a_point_is_inside_the_other_hull() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 5))
    B = np.vstack(
        [rng.normal(size=(30, 5)) + 10, A[:4].mean(axis=0, keepdims=True)]
    )  # a point inside conv(A)
    assert lp_separate(A, B).separable is False


def test_no_certificate_claims_xor_separable() -> None:
    assert sphere_certificate(XOR_A, XOR_B) is None
    assert projection_certificate(XOR_A, XOR_B) is None
    assert affine_certificate(XOR_A, XOR_B) is None
    assert svm_certificate(XOR_A, XOR_B) is None


@pytest.mark.parametrize("seed", range(6))
def test_certificates_really_separate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 9))
    shift = float(rng.choice([0.5, 2.0, 6.0, 20.0]))
    A, B = _two_clouds(seed, int(rng.integers(1, 40)), int(rng.integers(1, 40)), d, shift)
    truth = _independent_lp(A, B)
    r = lp_separate(A, B)
    assert r.separable is truth
    if truth:
        assert r.verified and _plane_separates((r.w, r.b), A, B)
    for cert in (sphere_certificate, projection_certificate, affine_certificate, svm_certificate):
        h = cert(A, B)
        if h is not None:
            assert truth, cert.__name__
            assert _plane_separates(h, A, B), cert.__name__
            assert verify_separation(h[0], h[1], A, B)


def test_sphere_and_projection_on_far_clouds() -> None:
    A, B = _two_clouds(1, 20, 25, 4, 50.0)
    for cert in (sphere_certificate, projection_certificate):
        h = cert(A, B)
        assert h is not None and _plane_separates(h, A, B)


def test_affine_certificate_cover_case() -> None:
    rng = np.random.default_rng(3)
    P = rng.normal(size=(7, 8))  # 7 <= d + 1 points in general position: any labelling is separable
    A, B = P[:3], P[3:]
    h = affine_certificate(A, B)
    assert h is not None and _plane_separates(h, A, B)
    # affinely dependent: four collinear points with alternating labels are not separable
    L = np.outer(np.arange(4.0), np.ones(8))
    assert affine_certificate(L[[0, 2]], L[[1, 3]]) is None
    assert lp_separate(L[[0, 2]], L[[1, 3]]).separable is False


def test_svm_warm_start() -> None:
    A, B = _two_clouds(4, 60, 60, 6, 9.0)
    r = lp_separate(A, B)
    assert r.separable
    h = svm_certificate(A, B, init=(r.w, r.b))
    assert h is not None and _plane_separates(h, A, B)


def test_verify_rejects_a_plane_through_a_point() -> None:
    A = np.array([[0.0, 0.0], [1.0, 0.0]])
    B = np.array([[3.0, 0.0]])
    w = np.array([-1.0, 0.0])
    assert verify_separation(w, 2.0, A, B)
    assert not verify_separation(w, 1.0, A, B)  # w·x + b = 0 at x = (1, 0)
    assert not verify_separation(w, 3.0, A, B)


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_certificate_pairs_really_separate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    K, d = 5, 4
    centres = rng.normal(size=(K, d)) * 4
    cid = rng.integers(0, K, size=120)
    X = centres[cid] + rng.normal(size=(120, d))
    mc = MulticlassCertificate()
    mc.fit(X, cid, K)
    P = mc.pair_min_margins(X, cid, K)
    for i in range(K):
        for j in range(i + 1, K):
            A, B = X[cid == i], X[cid == j]
            if P[i, j] > 0 and P[j, i] > 0:
                assert _plane_separates(mc.hyperplane(i, j), A, B)
                assert _independent_lp(A, B)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_working_set_lp_overlap_has_infeasible_witness(seed: int) -> None:
    """Large overlapping sets: the LP on a working set proves the overlap; the witness rows alone overlap."""
    A, B = _two_clouds(seed, 250, 200, 4, 1.0)
    st = SeparabilityStats()
    r = lp_separate(A, B, st, work=10)
    assert r.separable is False and r.status == 2
    assert r.witness_a is not None and r.witness_b is not None
    assert r.witness_a.size + r.witness_b.size < A.shape[0] + B.shape[0]  # a proper subset sufficed
    assert not _independent_lp(A[r.witness_a], B[r.witness_b])
    assert not _independent_lp(A, B)
    assert st.lp_calls == 1 and st.lp_rounds == r.rounds


@pytest.mark.parametrize("seed", [0, 1])
def test_working_set_lp_separable_plane_holds_on_every_point(seed: int) -> None:
    A, B = _two_clouds(seed, 300, 250, 6, 9.0)
    A[0, 0] = 4.5  # one A point deep towards B (B's smallest first coordinate is about 6)
    r = lp_separate(A, B, work=10)
    assert r.separable is True and r.verified
    assert r.w is not None and _plane_separates((r.w, r.b), A, B)
    assert _independent_lp(A, B)
