"""``tuneprobe probe TASK --model M [--snapshot S] [--layer L]`` on a tiny model and a JSONL task."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tuneprobe.cli import app
from tuneprobe.errors import TuneprobeError
from tuneprobe.experiments.results import ROW_COLUMNS, read_rows
from tuneprobe.probes.task import probe_task, resolve_model
from tuneprobe.tasks import write_jsonl

#: the tiny-model helpers of tests/encoders (make_tiny, save_tiny, token_split, SENTENCES)
tiny = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[1] / "encoders" / "tiny_models.py")))

SENTENCES = [
    *tiny.SENTENCES,
    ("the", "dog", "runs", "over", "the", "big", "mat", "."),
    ("who", "is", "the", "quick", "brown", "fox", "?"),
    ("a", "lazy", "cat", "sat", "in", "a", "red", "house", "."),
    ("the", "fox", "jumped", "over", "a", "dog", "."),
]
GRID = {"hidden_sizes": [4, 8], "alphas": [1e-4, 1.0], "max_iter": 20, "seeds": [0, 1], "device": "cpu"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.save_tiny(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("toy")
    write_jsonl(tiny.token_split(SENTENCES, "train"), d / "train.jsonl")
    write_jsonl(tiny.token_split(SENTENCES[:4], "dev"), d / "dev.jsonl")
    write_jsonl(tiny.token_split(SENTENCES[4:], "test"), d / "test.jsonl")
    return d


@pytest.fixture(scope="module")
def run_dir(tiny_dir: Path, task_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch fine-tuning run of the tiny model (snapshots at 0, 2 and the final update 3)."""
    from tuneprobe.finetune import FinetuneConfig, finetune

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    cfg = FinetuneConfig(batch_size=3, epochs=1, snapshots="0,2", device="cpu", lr=1e-2, seed=5)
    finetune(f"jsonl:{task_dir}", model=str(tiny_dir), out=out, config=cfg, progress=False)
    return out


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEPROBE_CACHE", str(tmp_path / "cache"))


def test_resolve_model(tiny_dir: Path, run_dir: Path) -> None:
    plain = resolve_model(str(tiny_dir))
    assert (plain.source, plain.model, plain.tuned_on, plain.checkpoint) == (
        str(tiny_dir),
        str(tiny_dir),
        "",
        0,
    )
    by_step = resolve_model(str(run_dir), "2")
    assert (
        by_step.checkpoint == 2
        and by_step.seed == 5
        and by_step.tuned_on == "jsonl"
        and by_step.model == str(tiny_dir)
    )
    assert Path(by_step.source).name == "step-000002"
    last = resolve_model(str(run_dir), "last")
    assert last.checkpoint == 3
    assert resolve_model(by_step.source) == by_step  # a snapshot directory as --model
    assert resolve_model("default", by_step.source) == by_step  # ... or as --snapshot
    assert resolve_model("default", str(run_dir)).checkpoint == 3  # a run directory: its newest snapshot
    with pytest.raises(TuneprobeError, match="no snapshot at update 7"):
        resolve_model(str(run_dir), "7")
    with pytest.raises(TuneprobeError, match="run directory"):
        resolve_model(str(run_dir))
    with pytest.raises(TuneprobeError, match="run directory"):
        resolve_model(str(tiny_dir), "2")


def test_probe_task_rows_and_cache(tiny_dir: Path, task_dir: Path) -> None:
    task = f"jsonl:{task_dir}"
    first = probe_task(task, str(tiny_dir), extract_progress=False, **GRID)
    assert first.layer == 2  # the tiny model's last layer
    assert first.splits == {"train": 54, "dev": 23, "test": 31}
    assert first.result.selection == "dev" and len(first.result.grid) == 8
    assert all(tuple(r) == ROW_COLUMNS for r in first.rows)
    assert {(r["task"], r["layer"], r["tuned_on"], r["checkpoint"]) for r in first.rows} == {(task, 2, "", 0)}
    refits = [r["value"] for r in first.rows if r["metric"].startswith("accuracy_refit_")]
    assert refits == first.result.test_accuracies and {r["seed"] for r in first.rows} == {0}
    lines: list[str] = []
    other = probe_task(task, str(tiny_dir), layer=1, extract_progress=False, log=lines.append, **GRID)
    assert other.layer == 1 and all(r["layer"] == 1 for r in other.rows)
    again = probe_task(task, str(tiny_dir), layer=-1, extract_progress=False, log=lines.append, **GRID)
    assert [line.endswith("(extracted)") for line in lines] == [True] * 3 + [False] * 3
    assert all("layer 2 (cached)" in line for line in lines[3:])  # computed once, read from the store
    assert again.rows == first.rows  # the same vectors and seeds: the same result


def test_probe_command_task_mode(tiny_dir: Path, task_dir: Path, run_dir: Path, tmp_path: Path) -> None:
    grid = ["--hidden-sizes", "4,8", "--alphas", "1e-4,1", "--max-iter", "20", "--seeds", "0,1"]
    common = [f"jsonl:{task_dir}", *grid, "--device", "cpu", "--threads", "1", "--no-progress"]
    out0 = tmp_path / "pre"
    r = CliRunner().invoke(app, ["probe", *common, "--model", str(tiny_dir), "--out", str(out0)])
    assert r.exit_code == 0, r.output
    assert "test accuracy" in r.output
    out3 = tmp_path / "tuned"
    args = [
        "probe",
        *common,
        "--model",
        str(run_dir),
        "--snapshot",
        "last",
        "--layer",
        "2",
        "--out",
        str(out3),
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    pre, tuned = read_rows(out0 / "rows.csv"), read_rows(out3 / "rows.parquet")
    assert read_rows(out3 / "rows.csv") == tuned
    assert {(r["model"], r["tuned_on"], r["checkpoint"], r["layer"], r["seed"]) for r in tuned} == {
        (str(tiny_dir), "jsonl", 3, 2, 5)
    }
    assert {r["checkpoint"] for r in pre} == {0} and {r["tuned_on"] for r in pre} == {""}
    grid_csv = np.loadtxt(out3 / "grid.csv", delimiter=",", skiprows=1, usecols=3)
    assert grid_csv.shape == (8,) and ((grid_csv >= 0) & (grid_csv <= 1)).all()
    summary = json.loads((out3 / "summary.json").read_text())
    assert summary["checkpoint"] == 3 and summary["layer"] == 2 and summary["splits"]["dev"] == 23
    bad = CliRunner().invoke(app, ["probe", *common, "--model", str(run_dir), "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, TuneprobeError) and "--snapshot" in str(bad.exception)


def test_probe_command_needs_task_or_reps() -> None:
    r = CliRunner().invoke(app, ["probe", "--no-progress"])
    assert r.exit_code != 0 and "TASK" in str(r.exception)
