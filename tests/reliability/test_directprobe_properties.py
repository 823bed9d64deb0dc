"""Hypothesis properties of DirectProbe on small inputs (n <= 30, d <= 4, up to 4 labels).

1. Every cluster is label-pure (and ``cluster_labels`` names its label).
2. Every pair of clusters with different labels is linearly separable, checked by an LP written here
   (scipy ``linprog``/HiGHS on the raw coordinates), independent of the package's certificates.
3. The partition (as a set of sets of row indices) is unchanged when X is rotated, translated or scaled
   uniformly.

Data and tolerances. Hypothesis draws the *shape* (n, d, number of labels, spread, seed) and the transform;
the coordinates come from ``numpy.random.default_rng(seed)`` (Gaussian blobs), not from Hypothesis' own
floats, which shrink towards small integers and so towards exact ties between centroid distances. A tie
makes the merge order — and so the partition — depend on the last bit of a distance, which a rotation
changes; such inputs are a property of the data, not a fault. So the inputs are *well-conditioned*: every
pairwise distance between points is distinct by a relative gap of at least 1e-6 (``assume``), no two
points coincide, and the scale factor lies in [1e-2, 1e2]. ``derandomize=True`` makes CI runs reproducible.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.spatial.distance import pdist

from tuneprobe.directprobe.cluster import DirectProbe

SETTINGS = settings(
    max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def lp_separable(A: np.ndarray, B: np.ndarray) -> bool:
    """Is there (w, b) with w.a + b >= 1 on every row of A and w.x + b <= -1 on every row of B?"""
    d = A.shape[1]
    M = np.vstack([np.hstack([-A, -np.ones((len(A), 1))]), np.hstack([B, np.ones((len(B), 1))])])
    r = linprog(
        np.zeros(d + 1), A_ub=M, b_ub=-np.ones(len(M)), bounds=[(None, None)] * (d + 1), method="highs"
    )
    assert r.status in (0, 2), r.message  # 0 feasible, 2 infeasible; anything else is a solver failure
    return r.status == 0


@st.composite
def labelled_points(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """X float64 ``[n, d]`` (Gaussian blobs, one centre per label) and y int ``[n]`` (every label used)."""
    d = draw(st.integers(1, 4))
    n_labels = draw(st.integers(2, 4))
    n = draw(st.integers(2 * n_labels, 30))
    spread = draw(st.sampled_from([0.3, 1.0, 3.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = np.concatenate([np.arange(n_labels), rng.integers(0, n_labels, n - n_labels)])
    centres = rng.normal(size=(n_labels, d)) * 3
    X = centres[y] + rng.normal(size=(n, d)) * spread
    dist = np.sort(pdist(X))
    assume(dist[0] > 1e-6 * dist[-1])  # no coincident points
    assume((np.diff(dist) > 1e-6 * dist[1:]).all())  # no near-ties between point distances
    return X, y


def partition(assignment: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(assignment == c).tolist()) for c in np.unique(assignment)}


def fit(X: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    return DirectProbe(progress=False).fit(X, y)


@SETTINGS
@given(labelled_points())
def test_clusters_are_label_pure_and_cross_label_pairs_separable(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    cl = fit(X, y)
    assign = np.asarray(cl.assignment)
    assert (assign >= 0).all() and cl.n_clusters == len(np.unique(assign))
    members = [np.flatnonzero(assign == c) for c in range(cl.n_clusters)]
    for c, rows in enumerate(members):
        assert set(y[rows].tolist()) == {int(cl.cluster_labels[c])}
    for a in range(cl.n_clusters):
        for b in range(a + 1, cl.n_clusters):
            if cl.cluster_labels[a] != cl.cluster_labels[b]:
                assert lp_separable(X[members[a]], X[members[b]]), (a, b)


@SETTINGS
@given(
    labelled_points(),
    st.integers(0, 2**32 - 1),
    st.floats(-100, 100),
    st.floats(1e-2, 1e2),
)
def test_partition_invariant_under_rotation_translation_scaling(
    data: tuple[np.ndarray, np.ndarray], seed: int, shift: float, scale: float
) -> None:
    X, y = data
    base = partition(np.asarray(fit(X, y).assignment))
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.normal(size=(X.shape[1], X.shape[1])))
    Q = Q * np.sign(np.diag(R))  # a uniformly random orthogonal matrix
    t = rng.normal(size=X.shape[1]) * shift
    for name, Z in (("rotation", X @ Q), ("translation", X + t), ("scaling", X * scale)):
        assert partition(np.asarray(fit(Z, y).assignment)) == base, name
