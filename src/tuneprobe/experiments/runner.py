"""The local executor: run a plan's jobs in dependency order, record each one, assemble the results table.

Results directory layout::

    RESULTS/jobs/<id>.parquet    the rows of one finished job (written atomically; its presence = done)
    RESULTS/jobs/<id>.json       the job's kind, name, inputs, seconds, row count, finish time
    RESULTS/cells/<id>.npz       DirectProbe cells (read by the cross-cell analyses)
    RESULTS/finetune/...         fine-tuning runs (snapshots = loadable model directories)
    RESULTS/plan.json            every planned job: id, kind, name, dependencies, resources
    RESULTS/results.parquet      all rows of the plan's jobs, sorted (tuneprobe.experiments.results)
    RESULTS/results.csv          the same table as CSV
    RESULTS/run.json             config, versions, this invocation's counts and timings, per-job seconds

Resume. A job whose ``jobs/<id>.parquet`` exists is skipped, so a rerun of a finished grid does no work (it
plans, finds every job done and, when ``run.json`` says the table holds exactly this plan's jobs, leaves the
table as it is) and an interrupted run continues with the first unfinished job (a killed fine-tuning or
extraction resumes from its own checkpoints). Jobs of an earlier, different config stay in ``jobs/`` but only
the current plan's jobs make up the table.

Executors. :func:`run_plan` hands the unfinished jobs, in dependency order, to an executor
(:data:`Executor`; :func:`execute_local` by default). Any executor runs :func:`record_job` per job once the
jobs in ``job.deps`` have finished; jobs and :class:`RunContext` are small picklable values, so a Dask
executor can submit ``record_job(job, ctx)`` with the futures of its dependencies and ``job.resources``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuneprobe.errors import TuneprobeError
from tuneprobe.experiments.execute import RunContext, run_job
from tuneprobe.experiments.plan import Job, Plan
from tuneprobe.experiments.results import KEY_COLUMNS, rows_to_frame, write_frame, write_rows

JOBS_DIR = "jobs"
RUN_JSON = "run.json"
PLAN_JSON = "plan.json"
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"

JobRunner = Callable[[Job, RunContext], list[dict[str, Any]]]


def job_rows_path(results: str | Path, job: Job | str) -> Path:
    """Where a job's rows live (``RESULTS/jobs/<id>.parquet``)."""
    job_id = job if isinstance(job, str) else job.id
    return Path(results) / JOBS_DIR / f"{job_id}.parquet"


def is_done(results: str | Path, job: Job) -> bool:
    """True when the job has finished in ``results`` (its rows file exists)."""
    return job_rows_path(results, job).is_file()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _atomic_text(path: Path, text: str) -> None:
    from tuneprobe.store.arrays import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` threads in torch and in the native thread pools numpy/scipy/sklearn use
    (BLAS, OpenMP; via ``threadpoolctl``), restoring the previous counts afterwards."""
    if n < 1:
        raise ValueError(f"threads per job must be at least 1, got {n}")
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def record_job(job: Job, ctx: RunContext, run: JobRunner = run_job) -> dict[str, Any]:
    """Run ``job`` (unless it is done) with ``ctx.threads`` torch threads and record it: rows to
    ``jobs/<id>.parquet``, a summary to ``jobs/<id>.json``. Returns the summary (``executed`` False for a job
    that was already done)."""
    rows_path = job_rows_path(ctx.results, job)
    info_path = rows_path.with_suffix(".json")
    if rows_path.is_file():
        info = json.loads(info_path.read_text()) if info_path.is_file() else {"id": job.id}
        return {**info, "executed": False}
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    with torch_threads(ctx.threads):
        rows = run(job, ctx)
    info = {
        "id": job.id,
        "kind": job.kind,
        "name": job.name,
        "params": job.params,
        "seconds": round(time.perf_counter() - t0, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),
        "n_rows": len(rows),
        "finished": _now(),
    }
    _atomic_text(info_path, json.dumps(info, indent=1, sort_keys=True) + "\n")
    write_rows(rows, rows_path)  # last: its presence marks the job done
    return {**info, "executed": True}


@contextlib.contextmanager
def results_lock(results: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``RESULTS/.lock`` (two runs must not write one results directory)."""
    results.mkdir(parents=True, exist_ok=True)
    with open(results / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TuneprobeError(
                f"{results}: another `tuneprobe run` is using this results directory"
            ) from None
        yield


@dataclass
class RunSummary:
    """What one invocation did."""

    results: Path
    n_jobs: int
    executed: int
    skipped: int
    seconds: float
    n_rows: int
    executed_by_kind: dict[str, int] = field(default_factory=dict)


def versions() -> dict[str, str]:
    """Versions of python, tuneprobe and the libraries that shape the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("tuneprobe", "numpy", "scipy", "scikit-learn", "torch", "transformers", "numba", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_plan(plan: Plan, results: Path) -> Path:
    """``RESULTS/plan.json``: every job's id, kind, name, dependencies and resources, in order."""
    jobs = [
        {"id": j.id, "kind": j.kind, "name": j.name, "deps": list(j.deps), "resources": asdict(j.resources)}
        for j in plan.jobs
    ]
    path = results / PLAN_JSON
    _atomic_text(path, json.dumps({"config": plan.config.name, "jobs": jobs}, indent=1) + "\n")
    return path


def table_digest(plan: Plan) -> str:
    """sha256 of the plan's job ids: the table is current when run.json records the same digest."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(plan.by_id)).encode()).hexdigest()


def assemble(plan: Plan, results: Path) -> int:
    """Write ``results.parquet`` and ``results.csv`` from the plan's finished jobs; returns the row count.

    The job files were validated when written; here they are concatenated and sorted by the key columns
    (the order of :func:`~tuneprobe.experiments.results.sort_rows`). Raises TuneprobeError if two jobs wrote
    a row with the same key (a planning bug, never silently merged).
    """
    import pandas as pd

    frames = []
    for job in plan.jobs:
        f = pd.read_parquet(job_rows_path(results, job))
        frames.append(f.assign(_job=job.id))
    frame = pd.concat(frames, ignore_index=True) if frames else rows_to_frame([]).assign(_job="")
    keys = list(KEY_COLUMNS)
    dup = frame.duplicated(keys, keep=False)
    if dup.any():
        bad = frame[dup].sort_values(keys).head(2)
        owners = ", ".join(f"{j} ({plan.by_id[j].name})" for j in bad["_job"])
        raise TuneprobeError(f"jobs {owners} both wrote the row {bad.iloc[0][keys].to_dict()}")
    frame = frame.sort_values(keys, kind="mergesort").drop(columns="_job").reset_index(drop=True)
    frame = frame.astype(rows_to_frame([]).dtypes.to_dict())
    write_frame(frame, results / RESULTS_PARQUET)
    write_frame(frame, results / RESULTS_CSV)
    return len(frame)


Echo = Callable[[str], None]
Executor = Callable[[list[Job], RunContext, JobRunner, Echo], dict[str, int]]
"""Runs the unfinished jobs (given in dependency order) with :func:`record_job`; returns jobs run per kind."""


def execute_local(
    todo: list[Job], ctx: RunContext, run: JobRunner, echo: Echo, keep_going: bool = False
) -> dict[str, int]:
    """The local executor: one job after another, in the plan's order, with a progress line per job.

    A failing job stops the run (the jobs finished before it stay recorded), unless ``keep_going``: then the
    jobs that depend on it (directly or not) are skipped, every other job runs, and a TuneprobeError listing
    the failures is raised at the end (so no table is assembled; a rerun retries them). An interruption
    (KeyboardInterrupt, SystemExit) always stops at once."""
    by_kind: dict[str, int] = {}
    failed: dict[str, str] = {}  # job id -> message
    blocked: set[str] = set()
    for i, job in enumerate(todo, 1):
        if any(d in failed or d in blocked for d in job.deps):
            blocked.add(job.id)
            echo(f"[{i}/{len(todo)}] skipped {job.kind}: {job.name} (an input failed)")
            continue
        echo(f"[{i}/{len(todo)}] {job.kind}: {job.name} ({job.id})")
        try:
            info = record_job(job, ctx, run)
        except Exception as exc:
            echo(f"[{i}/{len(todo)}] FAILED {job.kind}: {job.name}: {type(exc).__name__}: {exc}")
            if not keep_going:
                raise
            failed[job.id] = f"{job.kind} {job.name} ({job.id}): {type(exc).__name__}: {exc}"
            continue
        by_kind[job.kind] = by_kind.get(job.kind, 0) + 1
        echo(f"[{i}/{len(todo)}] done in {info['seconds']:.1f} s, {info['n_rows']} rows")
    if failed:
        lines = "\n  ".join(failed.values())
        raise TuneprobeError(
            f"{len(failed)} job(s) failed and {len(blocked)} depending on them were skipped "
            f"({sum(by_kind.values())} ran); rerun to retry them:\n  {lines}"
        )
    return by_kind


def run_plan(
    plan: Plan,
    ctx: RunContext,
    *,
    run: JobRunner = run_job,
    echo: Echo = lambda s: print(s, file=sys.stderr, flush=True),
    executor: Executor = execute_local,
) -> RunSummary:
    """Run every unfinished job of ``plan`` with ``executor`` (module docstring), then assemble the table and
    write ``run.json``. An exception of a job propagates."""
    results = Path(ctx.results)
    t_start = time.perf_counter()
    started = _now()
    with results_lock(results):
        write_plan(plan, results)
        todo = [j for j in plan.jobs if not is_done(results, j)]
        n = len(plan.jobs)
        echo(f"{plan.config.name}: {n} jobs, {n - len(todo)} already done, {len(todo)} to run -> {results}")
        by_kind = executor(todo, ctx, run, echo)
        digest = table_digest(plan)
        previous = _read_json(results / RUN_JSON)
        current = (
            not todo
            and previous.get("table_digest") == digest
            and all((results / f).is_file() for f in (RESULTS_PARQUET, RESULTS_CSV))
        )
        n_rows = int(previous["n_rows"]) if current else assemble(plan, results)
        seconds = time.perf_counter() - t_start
        summary = RunSummary(results, n, len(todo), n - len(todo), seconds, n_rows, by_kind)
        _write_run_json(plan, ctx, summary, started)
    echo(
        f"{plan.config.name}: ran {summary.executed} jobs, skipped {summary.skipped}, {n_rows} rows in "
        f"{results / RESULTS_PARQUET} ({seconds:.1f} s)"
    )
    return summary


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_run_json(plan: Plan, ctx: RunContext, summary: RunSummary, started: str) -> None:
    results = Path(ctx.results)
    per_kind: dict[str, dict[str, float]] = {}
    jobs = []
    for job in plan.jobs:
        path = job_rows_path(results, job).with_suffix(".json")
        info = json.loads(path.read_text()) if path.is_file() else {}
        sec = float(info.get("seconds", 0.0))
        k = per_kind.setdefault(job.kind, {"jobs": 0, "seconds": 0.0, "cpu_seconds": 0.0})
        k["jobs"] += 1
        k["seconds"] = round(k["seconds"] + sec, 3)
        k["cpu_seconds"] = round(k["cpu_seconds"] + float(info.get("cpu_seconds", 0.0)), 3)
        jobs.append({"id": job.id, "kind": job.kind, "name": job.name, "seconds": sec})
    doc = {
        "config": {"name": plan.config.name, "source": plan.config.source, "toml": plan.config.raw},
        "results": str(results),
        "device": ctx.device,
        "versions": versions(),
        "n_layers": plan.n_layers,
        "snapshot_steps": plan.snapshot_steps,
        "jobs_by_kind": plan.counts(),
        "invocation": {
            "started": started,
            "finished": _now(),
            "seconds": round(summary.seconds, 3),
            "executed": summary.executed,
            "skipped": summary.skipped,
            "executed_by_kind": summary.executed_by_kind,
            "argv": sys.argv,
            "pid": os.getpid(),
        },
        "n_rows": summary.n_rows,
        "table_digest": table_digest(plan),
        "seconds_by_kind": per_kind,
        "jobs": jobs,
    }
    _atomic_text(results / RUN_JSON, json.dumps(doc, indent=1) + "\n")
