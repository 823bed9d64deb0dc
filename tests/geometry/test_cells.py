"""DirectProbe cells: a known separable 2-D set, save/load round trip, rows, random-label permutation."""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuneprobe.experiments.results import ANALYSES, validate_row
from tuneprobe.geometry.cells import (
    CellKey,
    DirectProbeCell,
    effective_dimension,
    permute_labels,
    run_directprobe_cell,
)

KEY = CellKey(model="toy", tuned_on="", checkpoint=0, layer=3, task="squares", split="train")
SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def two_squares(gap: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Label 0 ("a"): the unit square; label 2 ("c"): the same square shifted right by 1 + gap (hull
    distance = gap). Label 1 ("b") is in the vocabulary but has no points."""
    X = np.r_[SQUARE, SQUARE + [1.0 + gap, 0.0]]
    y = np.r_[np.zeros(4, np.int64), np.full(4, 2, np.int64)]
    return X, y


@pytest.fixture(scope="module")
def cell() -> DirectProbeCell:
    X, y = two_squares(2.0)
    Xt = np.array([[0.5, 0.5], [3.5, 0.5], [2.9, 0.5], [0.2, 0.9]])
    yt = np.array(["a", "c", "c", "b"])  # the last point's label has no training cluster: an error
    return run_directprobe_cell(KEY, X, y, ["a", "b", "c"], predict={"test": (Xt, yt)})


def test_two_squares_cell_has_known_geometry(cell: DirectProbeCell) -> None:
    assert cell.n_points == 8 and cell.n_clusters == 2 and cell.n_labels == 2 and cell.is_linear
    np.testing.assert_array_equal(cell.clusters, [0, 0, 0, 0, 1, 1, 1, 1])
    assert cell.label_distance[0, 2] == pytest.approx(2.0, rel=1e-4)
    assert cell.label_distance[2, 0] == cell.label_distance[0, 2]
    assert cell.label_distance_min[0, 2] == pytest.approx(2.0, rel=1e-4)
    np.testing.assert_array_equal(np.diag(cell.label_distance), 0.0)
    # label "b" has no points: every entry about it is undefined (strict profile)
    assert np.isnan(cell.label_distance[1, [0, 2]]).all() and np.isnan(cell.outside_min[1])
    assert cell.outside_min[[0, 2]] == pytest.approx([2.0, 2.0], rel=1e-4)
    unit_square_mean = (4 * 1.0 + 2 * math.sqrt(2.0)) / 6
    assert cell.inside_mean[[0, 2]] == pytest.approx([unit_square_mean] * 2)
    assert cell.inside_max[[0, 2]] == pytest.approx([math.sqrt(2.0)] * 2)
    np.testing.assert_array_equal(cell.n_points_label, [4, 0, 4])
    np.testing.assert_array_equal(cell.n_clusters_label, [1, 0, 1])
    np.testing.assert_allclose(cell.centroids[[0, 2]], [[0.5, 0.5], [3.5, 0.5]])
    assert np.isnan(cell.centroids[1]).all()
    assert cell.effective_dimension == 2 and cell.dim == 2
    assert cell.predictions == {"test": {"intra_accuracy": 0.75, "nn_accuracy": 0.75}}
    assert set(cell.seconds) == {"seconds_cluster", "seconds_distances", "seconds_predict"}


def test_save_load_round_trip_is_exact(cell: DirectProbeCell, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cell.npz"
    assert cell.save(path) == path
    back = DirectProbeCell.load(path)
    assert back.same_as(cell) and back.key == cell.key
    for name in ("clusters", "label_distance", "outside_min", "centroids", "n_points_label"):
        a, b = getattr(cell, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    assert _rows_equal(back.rows(), cell.rows())
    # atomic: no temporary file is left behind, and a rewrite replaces the file whole
    cell.save(path)
    assert sorted(os.listdir(path.parent)) == ["cell.npz"]


def test_save_failure_leaves_old_file(
    cell: DirectProbeCell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cell.npz"
    cell.save(path)
    before = path.read_bytes()

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        cell.save(path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["cell.npz"]


def test_load_rejects_other_files(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a DirectProbe cell"):
        DirectProbeCell.load(p)


def _rows_equal(a: list[dict], b: list[dict]) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        va, vb = ra.pop("value"), rb.pop("value")
        if ra != rb or not (va == vb or (math.isnan(va) and math.isnan(vb))):
            return False
    return True


def test_rows_cover_the_directprobe_metrics(cell: DirectProbeCell) -> None:
    rows = cell.rows()
    for r in rows:
        assert validate_row(r) == r and r["analysis"] == "directprobe"
        assert r["metric"] in re.findall(r"\w+", ANALYSES["directprobe"])
    by = {(r["metric"], r["split"], r["label"], r["label_b"]): r["value"] for r in rows}
    assert len(by) == len(rows)  # no duplicate keys
    assert by[("n_clusters", "train", "", "")] == 2 and by[("n_labels", "train", "", "")] == 2
    assert by[("is_linear", "train", "", "")] == 1.0
    assert by[("intra_accuracy", "test", "", "")] == 0.75
    assert by[("distance", "train", "a", "c")] == pytest.approx(2.0, rel=1e-4)
    assert by[("below_cover", "train", "a", "c")] == 0.0  # 8 points > d + 1 = 3
    assert by[("n_points_label", "train", "c", "")] == 4
    # label "b" has no points in the split: no rows about it
    assert not [r for r in rows if "b" in (r["label"], r["label_b"])]
    assert {r["layer"] for r in rows} == {3} and {r["control"] for r in rows} == {"real"}


def test_pairs_are_ordered_by_name_not_id() -> None:
    X, y = two_squares(1.0)
    c = run_directprobe_cell(KEY, X, y, ["z", "m", "a"])  # ids 0 and 2 are "z" and "a"
    pairs = [(r["label"], r["label_b"]) for r in c.rows() if r["metric"] == "distance"]
    assert pairs == [("a", "z")]


def test_label_names_as_y_and_validation() -> None:
    X, y = two_squares(1.0)
    c = run_directprobe_cell(KEY, X, np.array(["a", "c"])[y // 2], ["a", "b", "c"])
    assert c.label_distance[0, 2] == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ValueError, match="label ids"):
        run_directprobe_cell(KEY, X, y + 5, ["a", "b", "c"])
    with pytest.raises(ValueError, match="control"):
        CellKey("m", "", 0, 1, "t", "train", control="shuffled")


def test_min_cluster_size_drops_small_clusters() -> None:
    X, y = two_squares(2.0)
    X = np.r_[X, [[10.0, 10.0]]]
    y = np.r_[y, [1]]  # label "b": one point
    c = run_directprobe_cell(KEY, X, y, ["a", "b", "c"], min_cluster_size=2)
    assert c.is_linear and c.n_clusters == 3
    assert np.isnan(c.label_distance[1, [0, 2]]).all() and c.affected_labels == ["b"]
    np.testing.assert_array_equal(c.n_clusters_label, [1, 1, 1])
    np.testing.assert_array_equal(c.n_clusters_retained, [1, 0, 1])


def test_permute_labels_keeps_counts_and_is_seeded() -> None:
    y = np.repeat(np.arange(5), [1, 2, 3, 4, 10])
    p = permute_labels(y, 7)
    np.testing.assert_array_equal(np.bincount(p), np.bincount(y))
    np.testing.assert_array_equal(p, permute_labels(y, 7))
    assert not np.array_equal(p, permute_labels(y, 8))
    assert not np.array_equal(p, y)
    np.testing.assert_array_equal(y, np.repeat(np.arange(5), [1, 2, 3, 4, 10]))  # input untouched


def test_random_control_cell_rows_carry_the_control() -> None:
    X, y = two_squares(2.0)
    key = CellKey("toy", "", 0, 3, "squares", "train", seed=4, control="random")
    c = run_directprobe_cell(key, X, permute_labels(y, 4), ["a", "b", "c"])
    rows = c.rows()
    assert {r["control"] for r in rows} == {"random"} and {r["seed"] for r in rows} == {4}
    assert c.n_clusters >= 2


def test_effective_dimension() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(10, 3)))[0]
    X = rng.normal(size=(200, 3)) @ basis.T  # a 3-D subspace of R^10
    assert effective_dimension(X) == 3
    Y = np.c_[rng.normal(size=200) * 100, rng.normal(size=(200, 4))]  # one direction holds >99 %
    assert effective_dimension(Y) == 1
    assert effective_dimension(X[:2]) == 1  # n <= d path
    assert effective_dimension(np.ones((5, 3))) == 0


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 4),
    dim=st.integers(1, 3),
    n_points=st.integers(0, 6),
    names=st.lists(st.text(min_size=1, max_size=6), min_size=4, max_size=4, unique=True),
    seed=st.integers(0, 2**31 - 1),
    model=st.text(max_size=8),
    acc=st.floats(allow_nan=True, allow_infinity=False),
)
def test_save_load_round_trip_property(
    n: int, dim: int, n_points: int, names: list[str], seed: int, model: str, acc: float
) -> None:
    rng = np.random.default_rng(seed)

    def floats(*shape: int) -> np.ndarray:
        a = rng.normal(size=shape) * 10.0 ** rng.integers(-300, 300)
        a[rng.random(shape) < 0.3] = np.nan
        return a

    cell = DirectProbeCell(
        key=CellKey(model, "t", int(rng.integers(0, 9)), 2, "task", "dev", seed=seed, control="random"),
        labels=names[:n],
        n_points=n_points,
        n_clusters=n,
        is_linear=bool(rng.integers(0, 2)),
        clusters=rng.integers(-1, n, size=n_points),
        label_distance=floats(n, n),
        label_distance_min=floats(n, n),
        outside_min=floats(n),
        inside_mean=floats(n),
        inside_max=floats(n),
        n_points_label=rng.integers(0, 5, size=n),
        n_clusters_label=rng.integers(0, 3, size=n),
        centroids=floats(n, dim),
        effective_dimension=int(rng.integers(0, dim + 1)),
        predictions={"test": {"intra_accuracy": acc, "nn_accuracy": 0.5}},
        seconds={"seconds_cluster": float(rng.random())},
        min_cluster_size=int(rng.integers(1, 7)),
        affected_labels=names[:1],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.npz"
        cell.save(path)
        back = DirectProbeCell.load(path)
    assert back.same_as(cell) and back.key == cell.key and back.labels == cell.labels
    assert _rows_equal(back.rows(), cell.rows())
