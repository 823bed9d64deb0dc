"""End to end on a tiny random model and synthetic jsonl tasks: run, rerun (no work), kill and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tuneprobe.experiments.config import parse_config
from tuneprobe.experiments.execute import RunContext, run_job
from tuneprobe.experiments.plan import build_plan
from tuneprobe.experiments.results import ANALYSES
from tuneprobe.experiments.runner import run_plan


class Counting:
    """A job runner that counts the jobs it ran and can fail before the ``fail_at``-th one."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.ran: list[str] = []
        self.fail_at = fail_at

    def __call__(self, job, ctx):
        if self.fail_at is not None and len(self.ran) + 1 == self.fail_at:
            raise KeyboardInterrupt(f"injected interruption before job {self.fail_at}")
        self.ran.append(job.kind)
        return run_job(job, ctx)


def _setup(tiny_toml, tiny_dir, task_dirs, root: Path, cache: Path):
    cfg = parse_config(tiny_toml(tiny_dir, *task_dirs, root / "out", cache), source="tiny.toml")
    plan = build_plan(cfg)
    ctx = RunContext(results=str(root / "out"), cache_dir=str(cache), device="cpu")
    return plan, ctx


@pytest.fixture(scope="module")
def finished(tiny_toml, tiny_dir, task_dirs, tmp_path_factory):
    """A finished run of the tiny grid: (plan, context, the counting runner, summary)."""
    root = tmp_path_factory.mktemp("run")
    plan, ctx = _setup(tiny_toml, tiny_dir, task_dirs, root, root / "cache")
    runner = Counting()
    summary = run_plan(plan, ctx, run=runner, echo=lambda s: None)
    return plan, ctx, runner, summary


def test_run_writes_every_analysis(finished):
    plan, ctx, runner, summary = finished
    assert len(runner.ran) == len(plan.jobs) == summary.executed
    out = Path(ctx.results)
    frame = pd.read_parquet(out / "results.parquet")
    assert set(frame["analysis"]) == set(ANALYSES)
    assert len(frame) == summary.n_rows
    assert not frame.duplicated([c for c in frame.columns if c != "value"]).any()
    csv = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    assert len(csv) == len(frame)
    # the grid's shape shows in the rows
    dp = frame[(frame.analysis == "directprobe") & (frame.metric == "n_clusters")]
    assert set(dp.checkpoint) == {0, 2, 4} and set(dp.layer) == {1, 2}
    assert set(dp.control) == {"real", "random"}
    assert set(dp[dp.checkpoint == 0].tuned_on) == {""}  # checkpoint 0 = the original model
    cross = dp[(dp.task == "kinds") & (dp.tuned_on == "lengths")]
    assert set(cross.checkpoint) == {2, 4}  # task B measured on the A-tuned snapshots
    probe = frame[(frame.analysis == "probe") & (frame.metric == "accuracy_mean")]
    assert len(probe) == 5 and probe.value.between(0, 100).all()
    ft = frame[(frame.analysis == "finetune") & (frame.metric == "loss")]
    assert list(ft.checkpoint) == [1, 2, 3, 4]
    pred = frame[(frame.analysis == "directprobe") & (frame.metric == "intra_accuracy")]
    assert set(pred.split) == {"test"}
    # artefacts
    assert len(list((out / "cells").glob("*.npz"))) == plan.counts()["directprobe"]
    run = json.loads((out / "run.json").read_text())
    assert run["invocation"]["executed"] == len(plan.jobs) and run["n_rows"] == len(frame)
    assert run["versions"]["torch"] and run["config"]["toml"].startswith("\n[run]")
    assert {j["id"] for j in json.loads((out / "plan.json").read_text())["jobs"]} == set(plan.by_id)


def test_rerun_does_no_work(finished):
    plan, ctx, _, _ = finished
    table = Path(ctx.results) / "results.parquet"
    before, mtime = table.read_bytes(), table.stat().st_mtime_ns
    runner = Counting()
    summary = run_plan(build_plan(plan.config), ctx, run=runner, echo=lambda s: None)
    assert runner.ran == [] and summary.executed == 0 and summary.skipped == len(plan.jobs)
    assert table.read_bytes() == before and table.stat().st_mtime_ns == mtime  # not even rewritten
    # without run.json's record of the table, the rerun assembles it again: the same bytes
    (Path(ctx.results) / "run.json").unlink()
    table.unlink()
    assert run_plan(plan, ctx, run=runner, echo=lambda s: None).executed == 0 and runner.ran == []
    assert table.read_bytes() == before


def test_cli_dry_run_counts_done_jobs(finished, tiny_toml, tiny_dir, task_dirs, tmp_path):
    from typer.testing import CliRunner

    from tuneprobe.cli import app

    plan, ctx, _, _ = finished
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_toml(tiny_dir, *task_dirs, tmp_path / "elsewhere", ctx.cache_dir))
    n = len(plan.jobs)
    res = CliRunner().invoke(app, ["run", str(path), "--dry-run", "--results", ctx.results])
    assert res.exit_code == 0, res.output
    assert f"{n} jobs, {n:>6} done, 0 to run" in res.output and res.output.count("\ndone  ") == n - 1
    res = CliRunner().invoke(app, ["run", str(path), "--dry-run"])  # the config's own (empty) output
    assert res.exit_code == 0 and f"{n} jobs,      0 done, {n} to run" in res.output
    assert not (tmp_path / "elsewhere").exists()  # a dry run writes nothing


def test_keep_going_skips_dependents_then_fails(finished, tiny_toml, tiny_dir, task_dirs, tmp_path):
    from functools import partial

    from tuneprobe.errors import TuneprobeError
    from tuneprobe.experiments.runner import execute_local

    _, ctx0, _, _ = finished
    plan, ctx = _setup(tiny_toml, tiny_dir, task_dirs, tmp_path, Path(ctx0.cache_dir))
    needed = {d for j in plan.jobs for d in j.deps}
    bad = next(j for j in plan.jobs if j.kind == "directprobe" and j.id in needed)  # a cell others read
    downstream = {bad.id}
    for j in plan.jobs:  # plan order: dependencies first
        if downstream & set(j.deps):
            downstream.add(j.id)

    def flaky(job, c):
        if job.id == bad.id:
            raise ValueError("injected failure")
        return run_job(job, c)

    keep = partial(execute_local, keep_going=True)
    with pytest.raises(TuneprobeError, match=r"1 job\(s\) failed and \d+ depending on them were skipped"):
        run_plan(plan, ctx, run=flaky, echo=lambda s: None, executor=keep)
    done = {p.stem for p in (tmp_path / "out" / "jobs").glob("*.parquet")}
    assert done == set(plan.by_id) - downstream and len(downstream) > 1
    again = Counting()
    assert run_plan(plan, ctx, run=again, echo=lambda s: None).executed == len(downstream) == len(again.ran)


def test_interrupted_run_resumes_to_the_same_table(finished, tiny_toml, tiny_dir, task_dirs, tmp_path):
    plan0, ctx0, _, _ = finished
    # the same representation store, a fresh results directory
    plan, ctx = _setup(tiny_toml, tiny_dir, task_dirs, tmp_path, Path(ctx0.cache_dir))
    first = Counting(fail_at=20)
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, ctx, run=first, echo=lambda s: None)
    assert len(first.ran) == 19 and not (tmp_path / "out" / "results.parquet").exists()
    second = Counting()
    summary = run_plan(build_plan(plan.config), ctx, run=second, echo=lambda s: None)
    assert len(second.ran) == len(plan.jobs) - 19 == summary.executed
    a = pd.read_parquet(Path(ctx0.results) / "results.parquet")
    b = pd.read_parquet(tmp_path / "out" / "results.parquet")
    pd.testing.assert_frame_equal(a, b)
