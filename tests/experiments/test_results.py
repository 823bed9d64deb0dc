import math

import pytest

from tuneprobe.experiments.results import ROW_COLUMNS, make_row, read_rows, sort_rows, write_rows


def _rows():
    return [
        make_row(
            analysis="directprobe",
            metric="n_clusters",
            value=46,
            model="default",
            layer=6,
            task="ps-role",
            split="train",
        ),
        make_row(
            analysis="directprobe",
            metric="distance",
            value=float("nan"),
            model="default",
            layer=6,
            task="ps-role",
            split="train",
            label="p.A",
            label_b="p.B",
        ),
        make_row(
            analysis="probe",
            metric="accuracy_mean",
            value=0.1 + 0.2,
            model="default",
            tuned_on="ps-role",
            checkpoint=59,
            layer=6,
            task="ps-role",
            split="test",
            seed=3,
        ),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_exact(tmp_path, suffix):
    rows = _rows()
    path = write_rows(rows, tmp_path / f"results{suffix}")
    back = read_rows(path)
    want = sort_rows(rows)
    assert len(back) == len(want)
    for a, b in zip(back, want, strict=True):
        assert list(a) == list(ROW_COLUMNS)
        for c in ROW_COLUMNS:
            if c == "value" and math.isnan(b[c]):
                assert math.isnan(a[c])
            else:
                assert a[c] == b[c], c
    assert not list(tmp_path.glob(".*part"))


def test_sorted_independent_of_order(tmp_path):
    rows = _rows()
    a = write_rows(rows, tmp_path / "a.csv").read_bytes()
    b = write_rows(rows[::-1], tmp_path / "b.csv").read_bytes()
    assert a == b


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"checkpoint": 1.5}, "checkpoint"),
        ({"control": "fake"}, "control"),
        ({"label": 3}, "label"),
        ({"value": "x"}, "value"),
    ],
)
def test_invalid_rows_named(bad, match):
    kwargs = {"analysis": "probe", "metric": "m", "value": 1.0}
    kwargs.update(bad)
    with pytest.raises(ValueError, match=match):
        make_row(**kwargs)


def test_unknown_column_rejected():
    from tuneprobe.experiments.results import validate_row

    row = dict(_rows()[0])
    row["extra"] = 1
    with pytest.raises(ValueError, match="extra"):
        validate_row(row)
