"""The Dask executor on the tiny grid: the same table bytes as the local executor, a failing job named by
its id with the worker's traceback, a rerun that does no work and a resume that runs only what is missing."""

from __future__ import annotations

import logging
import re
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask executor needs the dist extra")

import cloudpickle  # noqa: E402  (a dependency of distributed)

from tuneprobe.experiments.config import load_config  # noqa: E402
from tuneprobe.experiments.dask_executor import (  # noqa: E402
    WORKER_ENV,
    JobFailedError,
    job_resources,
    make_dask_executor,
)
from tuneprobe.experiments.execute import RunContext, run_job  # noqa: E402
from tuneprobe.experiments.plan import Resources, build_plan, make_job  # noqa: E402
from tuneprobe.experiments.runner import job_rows_path, run_plan  # noqa: E402

# the workers cannot import this test module by name: ship its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TABLES = ("results.parquet", "results.csv")


def _one_task_toml(tiny_toml, tiny_dir, task_dirs, root: Path) -> Path:
    """The tiny grid without task B (35 jobs of every kind, finetune -> extract -> cells -> analyses)."""
    text = tiny_toml(tiny_dir, *task_dirs, root / "out", root / "cache")
    text = re.sub(r'\[\[tasks\]\]\nname = "jsonl:[^"]*"\nid = "kinds"\nfinetune = false\n', "", text)
    text = text[: text.index("[[cross_task]]")] + text[text.index("[analyses]") :]
    path = root / "tiny.toml"
    path.write_text(text)
    return path


def _cli(*args: str) -> str:
    from typer.testing import CliRunner

    from tuneprobe.cli import app

    res = CliRunner().invoke(app, ["run", *args])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def local_run(tiny_toml, tiny_dir, task_dirs, tmp_path_factory):
    """The one-task grid run by ``tuneprobe run`` with the local executor *in the test process*, whose global
    state (left by earlier tests: numba's JIT, torch and BLAS settings, ...) differs from the fresh Dask
    workers': the tables must match anyway. (In CI's clean clone the test process compiled the hull kernel
    while the workers loaded it from numba's cache, which changed the distances' last bits until the kernel's
    helpers were inlined; tests/directprobe/test_kernel_state.py.) Returns (plan, results directory)."""
    root = tmp_path_factory.mktemp("local")
    config = _one_task_toml(tiny_toml, tiny_dir, task_dirs, root)
    cfg = load_config(config)
    plan = build_plan(cfg)
    assert not {"finetune", "extract", "directprobe", "probe", "centroid_shift"} - set(plan.counts())
    _cli(str(config), "--device", "cpu")
    return plan, Path(cfg.output)


@pytest.fixture(scope="module")
def dask_run(tiny_toml, tiny_dir, task_dirs, tmp_path_factory):
    """The one-task grid run by ``tuneprobe run --executor dask --workers 2`` (its own cache and local
    cluster): (config path, results directory, CLI output)."""
    root = tmp_path_factory.mktemp("dask")
    config = _one_task_toml(tiny_toml, tiny_dir, task_dirs, root)
    output = _cli(str(config), "--executor", "dask", "--workers", "2")
    return config, root / "out", output


@pytest.fixture(scope="module")
def scheduler():
    """The address of a running one-worker local cluster (the ``--scheduler`` path)."""
    import distributed

    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, dashboard_address=None, env=WORKER_ENV, silence_logs=logging.ERROR
    ) as cluster:
        yield cluster.scheduler_address


def test_dask_table_is_byte_identical_to_local(local_run, dask_run):
    plan, local = local_run
    _, out, output = dask_run
    assert "a local Dask cluster of 2 worker processes" in output
    assert f"[{len(plan.jobs)}/{len(plan.jobs)}]" in output
    for name in TABLES:
        assert (out / name).read_bytes() == (local / name).read_bytes(), name
    assert sorted(p.name for p in (out / "jobs").glob("*.parquet")) == sorted(
        p.name for p in (local / "jobs").glob("*.parquet")
    )


def test_dask_rerun_does_no_work_and_resume_runs_only_missing_jobs(dask_run, local_run, scheduler):
    config, out, _ = dask_run
    plan, local = local_run
    before = {p: p.stat().st_mtime_ns for p in (out / "jobs").iterdir()}
    output = _cli(str(config), "--executor", "dask", "--workers", "2")
    assert f"{len(plan.jobs)} already done, 0 to run" in output and "Dask" not in output
    assert {p: p.stat().st_mtime_ns for p in (out / "jobs").iterdir()} == before
    # lose one DirectProbe cell's rows and one cross-cell analysis: only those two run again
    lost = [next(j for j in plan.jobs if j.kind == k) for k in ("directprobe", "train_test_similarity")]
    for job in lost:
        job_rows_path(out, job).unlink()
    output = _cli(str(config), "--executor", "dask", "--scheduler", scheduler)
    assert f"{len(plan.jobs) - 2} already done, 2 to run" in output and "[2/2]" in output
    assert f"the Dask scheduler at {scheduler}" in output
    for name in TABLES:
        assert (out / name).read_bytes() == (local / name).read_bytes(), name


def _fail_on_probe(job, ctx):
    if job.kind == "probe":
        import torch

        raise ValueError(f"injected failure in {job.name} (torch threads: {torch.get_num_threads()})")
    return run_job(job, ctx)


def test_failing_job_is_named_with_its_traceback(local_run, scheduler, tmp_path):
    plan, local = local_run
    # the local run's results without the probes' rows: only the probes (and nothing after them) run
    out = tmp_path / "out"
    shutil.copytree(local, out)
    probes = [j for j in plan.jobs if j.kind == "probe"]
    for job in probes:
        job_rows_path(out, job).unlink()
    (out / "results.parquet").unlink()
    ctx = RunContext(results=str(out), device="cpu")
    lines: list[str] = []
    with pytest.raises(JobFailedError) as info:
        run_plan(
            plan, ctx, run=_fail_on_probe, echo=lines.append, executor=make_dask_executor(scheduler=scheduler)
        )
    failed = plan.by_id[info.value.job_id]
    assert failed.kind == "probe" and failed.id in str(info.value) and "injected failure" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert "(torch threads: 1)" in str(info.value)  # one thread per job on the workers
    text = "\n".join(lines)
    assert f"FAILED probe: {failed.name} ({failed.id})" in text
    assert "Traceback" in text and "_fail_on_probe" in text  # the worker's own frames
    assert not any(job_rows_path(out, j).is_file() for j in probes)
    assert not (out / "results.parquet").exists()


def test_job_resources_only_use_what_workers_advertise():
    job = make_job("probe", "p", {"x": 1}, resources=Resources(cpus=2, gpu=True, memory_mb=3000))
    assert job_resources(job, {}) == {}
    assert job_resources(job, {"GPU": 1, "MEMORY": 16000}) == {"GPU": 1.0, "MEMORY": 3000.0}
    cpu_job = make_job("probe", "p", {"x": 2}, resources=Resources(cpus=1, gpu=False, memory_mb=100))
    assert job_resources(cpu_job, {"GPU": 1, "CPU": 4}) == {"CPU": 1.0}
    from tuneprobe.errors import TuneprobeError

    with pytest.raises(TuneprobeError, match=f"job {job.id} .*MEMORY=3000 but the largest worker has"):
        job_resources(job, {"MEMORY": 2000})


def test_missing_distributed_names_the_extra(monkeypatch):
    from tuneprobe.errors import TuneprobeError

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(TuneprobeError, match=r"pip install 'tuneprobe\[dist\]'"):
        make_dask_executor(workers=2)
