"""``tuneprobe probe`` on plain files (tiny grid)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from tuneprobe.probes.commands import register


def _write(tmp: Path, name: str, X: np.ndarray, y: np.ndarray) -> Path:
    np.save(tmp / f"{name}.npy", X)
    (tmp / f"{name}.labels.txt").write_text("".join(f"L{v}\n" for v in y))
    return tmp / f"{name}.npy"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer from collapsing the app into "probe"
        """Nothing."""

    return app


def test_probe_command_writes_rows_grid_summary(tmp_path: Path, blobs) -> None:
    centers = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]])
    train = _write(tmp_path, "train", *blobs(30, centers, 0.5, seed=1))
    test = _write(tmp_path, "test", *blobs(10, centers, 0.5, seed=2))
    out = tmp_path / "out"
    args = [
        "probe",
        "--reps",
        str(train),
        "--test-reps",
        str(test),
        "--out",
        str(out),
        "--hidden-sizes",
        "4,8",
        "--alphas",
        "1e-3,1",
        "--max-iter",
        "30",
        "--seeds",
        "0,1",
        "blobs",
        "--layer",
        "6",
        "--threads",
        "1",
    ]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "rows.csv").open()))
    assert {r["metric"] for r in rows} >= {
        "accuracy_refit_0",
        "accuracy_refit_1",
        "accuracy_mean",
        "accuracy_std",
        "best_h1",
        "best_dev_accuracy",
        "n_unseen",
    }
    assert all(r["task"] == "blobs" and r["layer"] == "6" and r["analysis"] == "probe" for r in rows)
    assert {r["split"] for r in rows if r["metric"] == "best_dev_accuracy"} == {
        "train"
    }  # a hold-out of train
    assert (out / "rows.parquet").is_file()
    assert len(list(csv.DictReader((out / "grid.csv").open()))) == 8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"] == "holdout" and summary["seeds"] == [0, 1] and summary["n_test"] == 30


def test_probe_command_label_count_mismatch(tmp_path: Path, blobs) -> None:
    centers = np.array([[2.0, 0], [0, 2.0]])
    train = _write(tmp_path, "train", *blobs(5, centers, 0.5, seed=1))
    (tmp_path / "train.labels.txt").write_text("L0\nL1\n")
    res = CliRunner().invoke(
        _app(), ["probe", "--reps", str(train), "--test-reps", str(train), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code != 0
    assert "expected 10 labels" in str(res.exception)
