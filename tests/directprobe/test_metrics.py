"""Label statistics on hand-made clusterings with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from tuneprobe.directprobe.clustering import Clustering
from tuneprobe.directprobe.metrics import (
    distance_vector,
    inside_statistics,
    label_distances,
    label_statistics,
    outside_min,
    pearson_similarity,
    spatial_similarity,
)

NAN = math.nan


def clustering(assign: list[int], labels: list[int], names: list[str]) -> Clustering:
    return Clustering(np.asarray(assign, np.int64), np.asarray(labels, np.int64), len(names), names)


# clusters: 0 (label a, 3 pts), 1 (label a, 1 pt), 2 (label b, 6 pts), 3 (label c, 2 pts)
CL = clustering([0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 3, 3], [0, 0, 1, 2], ["a", "b", "c"])
D = np.array(
    [
        [0.0, NAN, 2.0, 5.0],
        [NAN, 0.0, 4.0, 1.0],
        [2.0, 4.0, 0.0, 3.0],
        [5.0, 1.0, 3.0, 0.0],
    ]
)


def test_mean_and_min_over_cluster_pairs() -> None:
    ld = label_distances(CL, D)
    assert ld.labels == ["a", "b", "c"]
    assert ld.mean[0, 1] == pytest.approx(3.0)  # (2 + 4) / 2
    assert ld.min[0, 1] == pytest.approx(2.0)
    assert ld.mean[0, 2] == pytest.approx(3.0)  # (5 + 1) / 2
    assert ld.min[0, 2] == pytest.approx(1.0)
    assert ld.mean[1, 2] == pytest.approx(3.0)
    assert ld.n_pairs[0, 1] == 2 and ld.n_pairs[1, 2] == 1
    np.testing.assert_array_equal(ld.mean, ld.mean.T)
    np.testing.assert_allclose(ld.vector, [3.0, 3.0, 3.0])  # (a,b), (a,c), (b,c)
    np.testing.assert_allclose(ld.outside_min, [3.0, 3.0, 3.0])
    assert ld.affected_labels == [] and ld.dropped_clusters.size == 0


def test_vector_order_and_outside_min() -> None:
    M = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
    np.testing.assert_array_equal(distance_vector(M), [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(outside_min(M), [1, 1, 2, 3])
    M[0, 1] = M[1, 0] = NAN
    np.testing.assert_array_equal(outside_min(M), [2, 4, 2, 3])


def test_min_cluster_size_drops_and_nan_rules() -> None:
    ld = label_distances(CL, D, min_cluster_size=2)  # drops cluster 1 (a, one point)
    assert list(ld.dropped_clusters) == [1] and ld.affected_labels == ["a"]
    assert ld.mean[0, 1] == pytest.approx(2.0) and ld.mean[0, 2] == pytest.approx(5.0)
    ld = label_distances(CL, D, min_cluster_size=3)  # drops clusters 1 and 3: label c has no cluster left
    assert ld.affected_labels == ["a", "c"]
    assert np.isnan(ld.mean[0, 2]) and np.isnan(ld.mean[1, 2])
    assert np.isnan(ld.outside_min[2]) and ld.outside_min[0] == pytest.approx(2.0)
    assert np.isnan(ld.vector).sum() == 2
    ref = label_distances(CL, D, min_cluster_size=3, undefined="zero")
    assert ref.mean[0, 2] == 0.0 and ref.outside_min[2] == 0.0
    with pytest.raises(ValueError):
        label_distances(CL, D, undefined="inf")  # type: ignore[arg-type]


def test_reference_profile_drops_small_clusters() -> None:
    ld = label_distances(CL, D, min_cluster_size=6, undefined="zero")  # only cluster 2 (6 points) survives
    assert ld.affected_labels == ["a", "c"]
    np.testing.assert_array_equal(ld.vector, [0.0, 0.0, 0.0])


def test_inside_statistics_blockwise_equals_bruteforce() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3)) * np.arange(1, 4)
    mean, mx, c_mean, c_max = inside_statistics(X, CL, block=2)
    a = CL.assignment
    for c in (0, 2, 3):
        dd = pdist(X[a == c])
        assert c_mean[c] == pytest.approx(dd.mean(), rel=1e-12)
        assert c_max[c] == pytest.approx(dd.max(), rel=1e-12)
    assert np.isnan(c_mean[1])  # singleton
    assert mean[0] == pytest.approx(c_mean[0])  # label a: only cluster 0 has >= 2 points
    assert mean[1] == pytest.approx(c_mean[2]) and mx[2] == pytest.approx(c_max[3])
    m3, x3, _, _ = inside_statistics(X, CL, min_cluster_size=3)
    assert np.isnan(m3[2]) and np.isnan(x3[2])
    m3z, _, _, _ = inside_statistics(X, CL, min_cluster_size=3, undefined="zero")
    assert m3z[2] == 0.0


def test_inside_mean_averages_cluster_means() -> None:
    X = np.array([[0.0], [2.0], [10.0], [14.0], [20.0]])
    cl = clustering([0, 0, 1, 1, 1], [0, 0], ["a"])
    mean, mx, _, _ = inside_statistics(X, cl)
    assert mean[0] == pytest.approx((2.0 + (4 + 10 + 6) / 3) / 2)
    assert mx[0] == pytest.approx(10.0)


def test_pearson_with_nan_exclusion() -> None:
    v1 = np.array([1.0, 2.0, NAN, 4.0, 5.0, 7.0])
    v2 = np.array([2.0, 1.0, 3.0, NAN, 6.0, 8.0])
    s = pearson_similarity(v1, v2)
    ok = [0, 1, 4, 5]
    assert s.n_pairs == 4 and s.n_total == 6
    assert s.r == pytest.approx(np.corrcoef(v1[ok], v2[ok])[0, 1])
    assert math.isnan(pearson_similarity([1.0, NAN], [2.0, 3.0]).r)
    assert math.isnan(pearson_similarity([1.0, 1.0, 1.0], [2.0, 3.0, 4.0]).r)
    with pytest.raises(ValueError):
        pearson_similarity([1.0], [1.0, 2.0])


def test_spatial_similarity_aligns_by_name() -> None:
    ld1 = label_distances(CL, D)
    # same geometry, label "c" renamed to "d" and an extra label: only a-b is shared
    cl2 = clustering([0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 3, 3], [0, 0, 1, 2], ["a", "b", "d"])
    s = spatial_similarity(ld1, label_distances(cl2, D))
    assert s.labels == ["a", "b"] and s.n_pairs == 1 and math.isnan(s.r)
    D2 = D * 2
    s = spatial_similarity(ld1, label_distances(CL, D2))
    assert s.n_pairs == 3


def test_label_statistics_summary() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 2))
    st = label_statistics(X, CL, D)
    np.testing.assert_array_equal(st.n_points, [4, 6, 2])
    np.testing.assert_array_equal(st.n_clusters, [2, 1, 1])
    assert st.summary["min_outside_min"] == pytest.approx(3.0)
    assert st.summary["n_label_pairs"] == 3 and st.summary["n_label_pairs_defined"] == 3
