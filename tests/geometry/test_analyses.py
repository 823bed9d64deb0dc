"""The paper's analyses on small constructed cells with known answers."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pytest

from tuneprobe.directprobe.metrics import outside_min
from tuneprobe.experiments.results import ANALYSES
from tuneprobe.geometry.analyses import (
    centroid_paths,
    centroid_shift,
    closest_triple,
    extreme_labels,
    linear_cka,
    model_rows,
    outside_min_change,
    pca_2d,
    similarity_to_original,
    task_rows,
    train_test_similarity,
)
from tuneprobe.geometry.cells import CellKey, DirectProbeCell, run_directprobe_cell


def key(**kw: object) -> CellKey:
    base: dict[str, object] = {
        "model": "m",
        "tuned_on": "pos",
        "checkpoint": 0,
        "layer": 6,
        "task": "pos",
        "split": "train",
    }
    base.update(kw)
    return CellKey(**base)  # type: ignore[arg-type]


def make_cell(
    D: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    linear: bool = True,
    centroids: np.ndarray | None = None,
    om: Sequence[float] | None = None,
    inside_mean: Sequence[float] | None = None,
    n_points: Sequence[int] | None = None,
    **key_fields: object,
) -> DirectProbeCell:
    """A cell with the given label distance matrix ``[n, n]`` (other fields filled consistently)."""
    D = np.asarray(D, dtype=np.float64)
    n = D.shape[0]
    labels = list(labels) if labels is not None else [chr(ord("a") + i) for i in range(n)]
    npl = np.asarray(n_points if n_points is not None else [10] * n, dtype=np.int64)
    ncl = np.where(npl > 0, 1 if linear else 2, 0)
    return DirectProbeCell(
        key=key(**key_fields),
        labels=labels,
        n_points=int(npl.sum()),
        n_clusters=int(ncl.sum()),
        is_linear=linear,
        clusters=np.zeros(int(npl.sum()), dtype=np.int64),
        label_distance=D,
        label_distance_min=D,
        outside_min=np.asarray(om, dtype=np.float64) if om is not None else outside_min(D),
        inside_mean=np.asarray(inside_mean if inside_mean is not None else [1.0] * n, dtype=np.float64),
        inside_max=np.ones(n),
        n_points_label=npl,
        n_clusters_label=ncl,
        centroids=centroids if centroids is not None else np.zeros((n, 3)),
        effective_dimension=3,
        predictions={},
        seconds={},
    )


def sym(v: Sequence[float], n: int) -> np.ndarray:
    """The symmetric ``[n, n]`` matrix with zero diagonal whose upper triangle (row-major) is ``v``."""
    D = np.zeros((n, n))
    D[np.triu_indices(n, 1)] = v
    return D + D.T


def value(rows: list[dict], metric: str, **match: object) -> float:
    hits = [r["value"] for r in rows if r["metric"] == metric and all(r[k] == v for k, v in match.items())]
    assert len(hits) == 1, (metric, match, hits)
    return hits[0]


def check_metrics(rows: list[dict]) -> None:
    for r in rows:
        assert r["metric"] in re.findall(r"\w+", ANALYSES[r["analysis"]]), r


V = [1.0, 2.5, 4.0, 3.0, 7.0, 5.5]  # 4 labels -> 6 pairs


# ------------------------------------------------------------------------------------------ Tables 2/7


def test_train_test_identical_and_affine_vectors_give_one() -> None:
    train = make_cell(sym(V, 4))
    rows = train_test_similarity(train, make_cell(sym(V, 4), split="test"))
    check_metrics(rows)
    assert value(rows, "pearson") == pytest.approx(1.0)
    assert value(rows, "n_pairs") == 6 and value(rows, "n_labels") == 4 and value(rows, "linear") == 1
    assert {r["split"] for r in rows} == {"train|test"} and {r["tuned_on"] for r in rows} == {"pos"}
    scaled = make_cell(sym([2 * v + 3 for v in V], 4), split="test")
    assert value(train_test_similarity(train, scaled), "pearson") == pytest.approx(1.0)
    flipped = make_cell(sym([-v for v in V], 4), split="test")
    assert value(train_test_similarity(train, flipped), "pearson") == pytest.approx(-1.0)


def test_train_test_aligns_by_name_and_uses_shared_labels() -> None:
    train = make_cell(sym(V, 4))
    # the test split lacks label d, and lists its labels in another order: c, a, b
    D = sym(V, 4)[np.ix_([2, 0, 1], [2, 0, 1])]
    test = make_cell(D, labels=["c", "a", "b"], split="test")
    rows = train_test_similarity(train, test)
    assert value(rows, "pearson") == pytest.approx(1.0)
    assert value(rows, "n_labels") == 3 and value(rows, "n_pairs") == 3
    # a label of the vocabulary without points in the test split is left out the same way
    absent = make_cell(sym(V, 4), n_points=[10, 10, 10, 0], split="test")
    assert value(train_test_similarity(train, absent), "n_labels") == 3


def test_train_test_nan_entries_are_excluded_and_counted() -> None:
    W = list(V)
    W[0] = math.nan  # D(a, b) undefined in test
    rows = train_test_similarity(make_cell(sym(V, 4)), make_cell(sym(W, 4), split="test"))
    assert value(rows, "n_pairs") == 5 and value(rows, "pearson") == pytest.approx(1.0)


def test_train_test_pearson_only_when_both_linear() -> None:
    rows = train_test_similarity(make_cell(sym(V, 4)), make_cell(sym(V, 4), split="test", linear=False))
    assert math.isnan(value(rows, "pearson")) and value(rows, "linear") == 0 and value(rows, "n_pairs") == 6
    with pytest.raises(ValueError, match="layer"):
        train_test_similarity(make_cell(sym(V, 4)), make_cell(sym(V, 4), split="test", layer=5))


# ------------------------------------------------------------------------------------------ Figure 4


def test_similarity_to_original_per_checkpoint() -> None:
    W = [3.0, 1.0, 2.0, 5.0, 4.0, 0.5]
    cells = [
        make_cell(sym(V, 4), tuned_on="", checkpoint=0, seed=0),  # the original model's cell
        make_cell(sym([10 * v for v in V], 4), checkpoint=100, seed=1),
        make_cell(sym(W, 4), checkpoint=200, seed=1),
    ]
    rows = similarity_to_original(cells[::-1])
    check_metrics(rows)
    assert {r["tuned_on"] for r in rows} == {"pos"} and {r["seed"] for r in rows} == {1}
    assert value(rows, "pearson", checkpoint=0) == pytest.approx(1.0)
    assert value(rows, "pearson", checkpoint=100) == pytest.approx(1.0)
    assert value(rows, "pearson", checkpoint=200) == pytest.approx(np.corrcoef(V, W)[0, 1])
    assert value(rows, "n_pairs", checkpoint=200) == 6 and value(rows, "linear", checkpoint=200) == 1
    with pytest.raises(ValueError, match="checkpoint-0"):
        similarity_to_original(cells[1:])
    with pytest.raises(ValueError, match="control"):
        similarity_to_original([cells[0], make_cell(sym(V, 4), checkpoint=5, control="random")])


# -------------------------------------------------------------------------------- Figures 2/6, Table 5


def test_outside_min_change_counts_and_scaling() -> None:
    D = sym(V, 4)
    base = make_cell(D, tuned_on="", om=[1.0, 2.0, 3.0, 4.0], inside_mean=[1.0, 3.0, math.nan, 2.0])
    other = make_cell(D, tuned_on="ps-role", checkpoint=50, om=[2.0, 1.0, 3.0, math.nan])
    rows = outside_min_change(base, other)
    check_metrics(rows)
    assert {r["tuned_on"] for r in rows} == {"ps-role"} and {r["checkpoint"] for r in rows} == {50}
    assert value(rows, "change", label="a") == 1.0 and value(rows, "change", label="b") == -1.0
    assert value(rows, "change", label="c") == 0.0 and math.isnan(value(rows, "change", label="d"))
    assert value(rows, "change_scaled", label="a") == pytest.approx(0.5)  # mean inside_mean = 2
    assert value(rows, "labels_up") == 1 and value(rows, "labels_down") == 1
    assert value(rows, "mean_change") == 0.0 and value(rows, "n_labels") == 3
    assert value(rows, "mean_change_scaled") == 0.0


def test_outside_min_change_all_down_and_absent_labels() -> None:
    D = sym(V, 4)
    base = make_cell(D, om=[1.0, 2.0, 3.0, 4.0], n_points=[10, 10, 10, 0])  # d has no points
    other = make_cell(D, checkpoint=9, om=[0.5, 1.0, 2.0, 9.0])
    rows = outside_min_change(base, other)
    assert value(rows, "labels_up") == 0 and value(rows, "labels_down") == 3
    assert value(rows, "mean_change") == pytest.approx(-(0.5 + 1.0 + 1.0) / 3)
    assert not [r for r in rows if r["label"] == "d"]


def test_extreme_labels_use_the_last_checkpoint() -> None:
    D = sym(V, 4)
    base = make_cell(D, om=[1.0, 1.0, 1.0, 1.0])
    mid = make_cell(D, checkpoint=5, om=[9.0, 0.0, 0.0, 0.0])  # a's rise here is not the final one
    end = make_cell(D, checkpoint=10, om=[1.5, 3.0, 0.5, math.nan])
    rows = outside_min_change(base, mid) + outside_min_change(base, end)
    assert extreme_labels(rows, 2) == (["b", "a"], ["c", "a"])
    assert extreme_labels(rows, 5) == (["b", "a", "c"], ["c", "a", "b"])  # d is undefined
    assert extreme_labels([], 3) == ([], [])
    other = outside_min_change(make_cell(D, layer=1, om=[1.0] * 4), make_cell(D, layer=1, checkpoint=10))
    with pytest.raises(ValueError, match="series"):
        extreme_labels(rows + other)


# ------------------------------------------------------------------------------------------ Figure 3


def test_closest_triple_smallest_sum() -> None:
    # labels a..e; b, d, e are mutually close (sum 1 + 1.5 + 2 = 4.5), everything else far
    D = np.full((5, 5), 10.0)
    np.fill_diagonal(D, 0.0)
    for (i, j), v in {(1, 3): 1.0, (1, 4): 1.5, (3, 4): 2.0, (0, 1): 1.0}.items():
        D[i, j] = D[j, i] = v
    assert closest_triple(make_cell(D)) == (1, 3, 4)
    # an undefined distance rules its triples out; an absent label is never chosen
    D2 = D.copy()
    D2[3, 4] = D2[4, 3] = math.nan
    assert closest_triple(make_cell(D2)) == (0, 1, 3)
    assert closest_triple(make_cell(D, n_points=[10, 10, 10, 0, 10])) == (0, 1, 4)
    with pytest.raises(ValueError, match="three labels"):
        closest_triple(make_cell(sym([1.0], 2)))


def test_centroid_paths_known_linear_movement() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=6)
    u = rng.normal(size=6)
    D0 = np.full((4, 4), 5.0)
    np.fill_diagonal(D0, 0.0)
    D0[0, 1] = D0[1, 0] = D0[0, 3] = D0[3, 0] = D0[1, 3] = D0[3, 1] = 1.0  # closest triple: a, b, d
    by_layer: dict[int, list[DirectProbeCell]] = {}
    for layer in (1, 12):
        cells = []
        for t, ckpt in enumerate((0, 10, 20, 30)):
            # layer 12: every label moves along v by t; offsets along v and u (a plane); layer 1: a line
            offs = np.array([[0, 0], [1, 2], [5, 5], [2, -1]], dtype=np.float64)
            if layer == 1:
                offs[:, 1] = 0.0
            C = offs[:, :1] * v + offs[:, 1:] * u + t * v
            cells.append(
                make_cell(
                    D0,
                    centroids=C,
                    layer=layer,
                    checkpoint=ckpt,
                    tuned_on="" if ckpt == 0 else "pos",
                    seed=0 if ckpt == 0 else 2,
                )
            )
        by_layer[layer] = cells
    rows = centroid_paths(by_layer)
    check_metrics(rows)
    assert {r["label"] for r in rows} - {""} == {"a", "b", "d"}
    assert {r["tuned_on"] for r in rows} == {"pos"} and {r["seed"] for r in rows} == {2}
    # layer 1: all points on one line: one component explains everything, the path moves |v| per step
    assert value(rows, "explained_variance_1", layer=1) == pytest.approx(1.0)
    for lab in ("a", "b", "d"):
        pc1 = [value(rows, "pc1", layer=1, label=lab, checkpoint=c) for c in (0, 10, 20, 30)]
        steps = np.diff(pc1)
        assert np.allclose(np.abs(steps), np.linalg.norm(v)) and (np.sign(steps) == np.sign(steps[0])).all()
        assert all(abs(value(rows, "pc2", layer=1, label=lab, checkpoint=c)) < 1e-9 for c in (0, 10, 20, 30))
    # layer 12: a plane: two components explain everything and preserve every distance
    ev = value(rows, "explained_variance_1", layer=12) + value(rows, "explained_variance_2", layer=12)
    assert ev == pytest.approx(1.0)
    pts = {
        (lab, c): [value(rows, p, layer=12, label=lab, checkpoint=c) for p in ("pc1", "pc2")]
        for lab in ("a", "b", "d")
        for c in (0, 10, 20, 30)
    }
    cent = {
        (lab, c.key.checkpoint): c.centroids[idx]
        for c in by_layer[12]
        for lab, idx in (("a", 0), ("b", 1), ("d", 3))
    }
    keys = sorted(pts)
    for i in keys:
        for j in keys:
            assert np.linalg.norm(np.subtract(pts[i], pts[j])) == pytest.approx(
                np.linalg.norm(cent[i] - cent[j]), abs=1e-9
            )
    # an explicit triple overrides the rule
    rows2 = centroid_paths(by_layer, triple=["a", "c", "d"])
    assert {r["label"] for r in rows2} - {""} == {"a", "c", "d"}


def test_pca_2d_sign_nan_rows_and_origin() -> None:
    M = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [math.nan, 1.0]])
    coords, comps, ratio = pca_2d(M)
    np.testing.assert_allclose(comps[0], [1.0, 0.0])
    np.testing.assert_allclose(coords[:3, 0], [-2.0, 0.0, 2.0])
    assert np.isnan(coords[3]).all() and ratio[0] == pytest.approx(1.0)
    zero, _, _ = pca_2d(M, origin="zero")
    np.testing.assert_allclose(zero[:3, 0], [0.0, 2.0, 4.0])
    np.testing.assert_allclose(pca_2d(-M)[1][0], [1.0, 0.0])  # the sign does not depend on the data's sign


# ------------------------------------------------------------------------------------------ Figures 5, 7-10


def test_centroid_shift_of_one_translated_label() -> None:
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(size=(6, 3)) + c for c in ([0, 0, 0], [8, 0, 0], [0, 8, 0])])
    y = np.repeat(np.arange(3), 6)
    t = np.array([0.0, -3.0, 4.0])  # |t| = 5
    X2 = X + (y == 1)[:, None] * t
    labels = ["x", "y", "z"]
    orig = run_directprobe_cell(key(tuned_on="", checkpoint=0), X, y, labels)
    tuned = run_directprobe_cell(key(checkpoint=40), X2, y, labels)
    np.testing.assert_allclose(tuned.centroids - orig.centroids, [[0, 0, 0], t, [0, 0, 0]], atol=1e-12)
    rows = centroid_shift(orig, tuned)
    check_metrics(rows)
    assert value(rows, "norm", label="y") == pytest.approx(5.0)
    assert value(rows, "norm", label="x") == 0.0 and value(rows, "norm", label="z") == 0.0
    for lab in ("x", "z"):  # the labels that did not move sit at the origin
        assert value(rows, "pc1", label=lab) == pytest.approx(0.0, abs=1e-12)
        assert value(rows, "pc2", label=lab) == pytest.approx(0.0, abs=1e-12)
    assert value(rows, "pc1", label="y") == pytest.approx(5.0)  # the moved label lies on the first axis
    assert value(rows, "pc2", label="y") == pytest.approx(0.0, abs=1e-12)
    assert value(rows, "explained_variance_1") == pytest.approx(1.0)
    assert {r["checkpoint"] for r in rows} == {40} and {r["layer"] for r in rows} == {6}
    centred = centroid_shift(orig, tuned, origin="mean")
    assert value(centred, "pc1", label="x") == pytest.approx(-5.0 / 3)


# ------------------------------------------------------------------------------------------ Tables 1 and 6


def test_model_and_task_rows() -> None:
    # the attribute names of a Hugging Face config (a real one costs seconds of transformers import)
    cfg = SimpleNamespace(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64)
    rows = model_rows("tiny", cfg, 12345)
    check_metrics(rows)
    assert {r["metric"]: r["value"] for r in rows} == {
        "n_layers": 2,
        "hidden_size": 32,
        "n_heads": 4,
        "n_parameters": 12345,
    }
    assert {r["layer"] for r in rows} == {-1} and {r["model"] for r in rows} == {"tiny"}
    assert value(model_rows("x", {"n_layers": 6, "hidden_size": 384, "n_heads": 12}, 1), "n_heads") == 12
    with pytest.raises(ValueError, match="num_attention_heads"):
        model_rows("x", {"n_layers": 6, "hidden_size": 384}, 1)
    trows = task_rows("ps-role", {"train": 4282, "test": 457}, {"train": 46, "test": 40})
    check_metrics(trows)
    assert value(trows, "n_examples", split="test") == 457 and value(trows, "n_labels", split="train") == 46
    assert {r["model"] for r in trows} == {""} and {r["task"] for r in trows} == {"ps-role"}


# ------------------------------------------------------------------------------------------ linear CKA


def test_linear_cka() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 5))
    Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    assert linear_cka(X, 3.0 * X @ Q + 1.0) == pytest.approx(1.0)
    assert linear_cka(X, rng.normal(size=(200, 4))) < 0.2
    assert math.isnan(linear_cka(X, np.ones((200, 2))))
