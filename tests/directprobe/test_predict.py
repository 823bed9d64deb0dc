"""Nearest-hull prediction: choices, ties, pruning; 1-NN baseline; intra-accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from tuneprobe.directprobe.clustering import Clustering
from tuneprobe.directprobe.predict import intra_accuracy, nearest_hull_predict, nearest_neighbor_predict


def clustering(assign: list[int] | np.ndarray, labels: list[int]) -> Clustering:
    lab = np.asarray(labels, np.int64)
    return Clustering(np.asarray(assign, np.int64), lab, int(lab.max()) + 1)


def test_nearest_hull_beats_nearest_point() -> None:
    # label 0: a long segment; label 1: a single point. The test point is nearer to label 1's point than to
    # any point of label 0, but nearer still to the segment itself.
    X = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 2.5]])
    cl = clustering([0, 0, 1], [0, 1])
    P = np.array([[0.0, 1.0]])
    pred = nearest_hull_predict(X, cl, P)
    assert pred.labels.tolist() == [0]
    assert pred.distance[0] == pytest.approx(1.0)
    assert nearest_neighbor_predict(X, np.array([0, 0, 1]), P).tolist() == [1]


def test_tie_broken_by_centroid_distance() -> None:
    # the point is inside neither hull and at distance 1 from both; cluster 1's centroid is nearer
    X = np.array([[-1.0, -5.0], [-1.0, 5.0], [-3.0, 0.0], [1.0, -1.0], [1.0, 1.0]])
    cl = clustering([0, 0, 0, 1, 1], [0, 1])
    pred = nearest_hull_predict(X, cl, np.array([[0.0, 0.0]]))
    assert pred.n_tied[0] == 2 and pred.labels[0] == 1


def test_tie_broken_by_label_order() -> None:
    X = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    cl = clustering([0, 0, 1, 1], [1, 0])  # cluster 0 has label 1
    pred = nearest_hull_predict(X, cl, np.array([[0.0, 0.0]]))
    assert pred.n_tied[0] == 2 and pred.labels[0] == 0 and pred.clusters[0] == 1


def test_inside_a_hull_is_distance_zero() -> None:
    X = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [10.0, 10.0], [11.0, 10.0]])
    cl = clustering([0, 0, 0, 1, 1], [0, 1])
    pred = nearest_hull_predict(X, cl, np.array([[1.0, 1.0], [10.5, 10.0]]))
    assert pred.labels.tolist() == [0, 1]
    assert pred.distance.tolist() == [0.0, 0.0]


def test_pruning_gives_the_same_answer() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 10)) * 3
    X = np.concatenate([c + rng.normal(size=(15, 10)) for c in centres])
    cl = clustering(np.repeat(np.arange(8), 15), [0, 1, 2, 3, 0, 1, 2, 3])
    P = np.concatenate([c + rng.normal(size=(6, 10)) * 1.5 for c in centres])
    a = nearest_hull_predict(X, cl, P, prune=True)
    b = nearest_hull_predict(X, cl, P, prune=False)
    np.testing.assert_array_equal(a.clusters, b.clusters)
    np.testing.assert_allclose(a.distance, b.distance, rtol=1e-4)
    assert a.n_solved < b.n_solved and b.n_solved == P.shape[0] * 8
    solved = np.isfinite(a.distances)
    np.testing.assert_allclose(a.distances[solved], b.distances[solved], rtol=1e-4)


def test_nearest_neighbor_ties_take_smaller_label() -> None:
    X = np.array([[0.0, 1.0], [0.0, 1.0], [5.0, 5.0]])
    y = np.array([2, 1, 0])
    assert nearest_neighbor_predict(X, y, np.array([[0.0, 0.9], [5.0, 4.0]])).tolist() == [1, 0]


def test_intra_accuracy_unseen_labels_are_errors() -> None:
    assert intra_accuracy(np.array([0, 1, 1, 2]), np.array([0, 1, -1, 1])) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        intra_accuracy(np.array([0]), np.array([0, 1]))


def test_float32_input_and_cluster_distances_give_the_same_prediction() -> None:
    # many clusters per point: the Gram-mode solver path; float32 input: the exact float32 scans
    from tuneprobe.directprobe.hulls import cluster_distance_matrix

    rng = np.random.default_rng(4)
    centres = rng.normal(size=(12, 8)) * 2.5
    X = np.concatenate([c + rng.normal(size=(20, 8)) for c in centres]).astype(np.float32)
    cl = clustering(np.repeat(np.arange(12), 20), list(range(12)))
    P = np.concatenate([c + rng.normal(size=(5, 8)) * 1.2 for c in centres]).astype(np.float32)
    ref = nearest_hull_predict(X.astype(np.float64), cl, P.astype(np.float64), prune=False)
    a = nearest_hull_predict(X, cl, P)
    b = nearest_hull_predict(X, cl, P, cluster_distances=cluster_distance_matrix(X, cl))
    for r in (a, b):
        np.testing.assert_array_equal(r.clusters, ref.clusters)
        np.testing.assert_allclose(r.distance, ref.distance, rtol=1e-4, atol=1e-12)
        assert r.n_unconverged == 0
    assert b.n_solved <= a.n_solved < ref.n_solved
