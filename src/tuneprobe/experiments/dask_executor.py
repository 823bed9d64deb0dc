"""The Dask executor: run a plan's jobs on a ``distributed`` cluster (``tuneprobe run --executor dask``).

Each unfinished job is submitted as ``record_job(job, ctx)`` (the function the local executor calls) with the
futures of its unfinished dependencies as extra arguments, so Dask starts it only after they finished:
fine-tuning before extraction before DirectProbe cells and probes before the cross-cell analyses. A job
writes its own rows atomically (``RESULTS/jobs/<id>.parquet``) on the worker; :func:`~tuneprobe.experiments.
runner.run_plan` then assembles the table with the same code as for the local executor, so the table is the
same bytes as a local run: both run every job with ``RunContext.threads`` threads (``tuneprobe run
--threads``, default 1) for torch and the BLAS/OpenMP pools, since torch's and BLAS's CPU kernels sum in a
thread-count-dependent order (measured before that: relative differences up to ~1e-6, larger only for
values near zero). The results directory (and the data and cache directories) must be on a file system
every worker sees.

Cluster. By default a :class:`distributed.LocalCluster` of ``workers`` processes with one thread each; every
worker runs torch (and the BLAS/OpenMP/numba pools) with one thread, so N workers use N cores. With
``scheduler=ADDRESS`` the jobs go to an existing cluster (``tcp://host:8786``), e.g. one started with
``dask-jobqueue`` on SLURM (``pip install dask-jobqueue``; a script that keeps the cluster up)::

    # slurm_cluster.py -- run it on the login node, then in another shell:
    #   tuneprobe run grid.toml --executor dask --scheduler tcp://HOST:PORT
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(
        cores=1, processes=1, memory="16GB", walltime="04:00:00", queue="gpu",
        job_extra_directives=["--gres=gpu:1"],
        worker_extra_args=["--resources", "GPU=1,MEMORY=16000"],   # MEMORY in MB, as Resources.memory_mb
        job_script_prologue=["export OMP_NUM_THREADS=1"],
    )
    cluster.scale(jobs=8)                  # eight SLURM jobs, one worker each
    print(cluster.scheduler_address)
    input("press Enter to stop the cluster\n")

The results directory, the representation cache (``TUNEPROBE_CACHE``) and the data must be on a shared file
system; the workers need the same tuneprobe environment (``python -m venv`` on the shared disk).

Resources. A job declares :class:`~tuneprobe.experiments.plan.Resources` (``cpus``, ``gpu``, ``memory_mb``).
They become Dask resource constraints ``CPU = cpus``, ``GPU = 1`` (jobs that can use a GPU) and
``MEMORY = memory_mb`` -- but only for the resource names some worker of the cluster advertises (a
constraint no worker can meet would wait forever). Workers started with ``--resources "GPU=1,MEMORY=16000"``
thus run at most one GPU job at a time and never more jobs than their memory holds, while a plain
LocalCluster (no resources) schedules by dependencies alone. A job needing more of a resource than every
worker has is an error before anything is submitted.

Failures. The first failing job stops the run: its id, kind and name and the worker's original traceback
are printed, the jobs not yet started are cancelled, and a :class:`JobFailedError` naming the job is raised
(from the original exception). Jobs that finished stay recorded, so a rerun resumes. The local cluster (and
the client) are closed on every exit, Ctrl-C included.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import traceback
import uuid
from collections.abc import Mapping
from typing import Any

from tuneprobe.errors import TuneprobeError
from tuneprobe.experiments.execute import RunContext
from tuneprobe.experiments.plan import Job
from tuneprobe.experiments.runner import Echo, Executor, JobRunner, record_job

INSTALL_HINT = "pip install 'tuneprobe[dist]'"

#: environment of local worker processes: one thread for every numeric library (set before they import)
WORKER_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class JobFailedError(TuneprobeError):
    """A job failed on a Dask worker. ``job_id`` names it; ``__cause__`` is the worker's exception."""

    def __init__(self, job: Job, exc: BaseException) -> None:
        self.job_id = job.id
        super().__init__(f"job {job.id} ({job.kind}: {job.name}) failed: {type(exc).__name__}: {exc}")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise TuneprobeError(
            f"--executor dask needs dask.distributed, which is not installed ({exc}); install it with "
            f"{INSTALL_HINT}"
        ) from None
    return distributed


def job_resources(job: Job, available: Mapping[str, float]) -> dict[str, float]:
    """The Dask resource constraints of ``job``: ``CPU``, ``GPU`` and ``MEMORY`` (MB) as declared by
    ``job.resources``, restricted to the names in ``available`` (name -> the most any one worker has).
    Raises TuneprobeError when the job needs more of one than every worker has."""
    r = job.resources
    wanted = {"CPU": float(r.cpus), "GPU": 1.0 if r.gpu else 0.0, "MEMORY": float(r.memory_mb)}
    out = {name: amount for name, amount in wanted.items() if amount > 0 and name in available}
    for name, amount in out.items():
        if amount > available[name]:
            raise TuneprobeError(
                f"job {job.id} ({job.kind}: {job.name}) needs {name}={amount:g} but the largest worker has "
                f"{name}={available[name]:g}"
            )
    return out


def _worker_resources(client: Any) -> dict[str, float]:
    """Resource name -> the largest amount one worker of the cluster advertises."""
    out: dict[str, float] = {}
    for w in client.scheduler_info().get("workers", {}).values():
        for name, amount in (w.get("resources") or {}).items():
            out[name] = max(out.get(name, 0.0), float(amount))
    return out


def _record_on_worker(
    job: Job, ctx: RunContext, run: JobRunner, threads: int, *deps: dict[str, Any]
) -> dict[str, Any]:
    """What a worker runs: :func:`record_job` with torch limited to ``threads`` (``deps``: the summaries of
    the dependencies, passed only so that Dask orders the jobs)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return record_job(job, ctx, run)


def make_dask_executor(
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    threads: int = 1,
    worker_resources: Mapping[str, float] | None = None,
) -> Executor:
    """An :data:`~tuneprobe.experiments.runner.Executor` that runs the jobs on Dask (module docstring).

    workers: processes of the local cluster (default: the CPU cores, at least 1); ignored with ``scheduler``.
    scheduler: the address of an existing Dask scheduler instead of a local cluster. threads: torch threads
    per job. worker_resources: Dask resources each local worker advertises (e.g. ``{"GPU": 1}``).
    Raises TuneprobeError naming ``pip install 'tuneprobe[dist]'`` when dask.distributed is missing.
    """
    _distributed()  # fail before planning work when the extra is missing
    if workers is not None and workers < 1:
        raise TuneprobeError(f"--workers must be at least 1, got {workers}")
    if threads < 1:
        raise TuneprobeError(f"threads per job must be at least 1, got {threads}")

    def execute_dask(todo: list[Job], ctx: RunContext, run: JobRunner, echo: Echo) -> dict[str, int]:
        if not todo:
            return {}
        distributed = _distributed()
        cluster = None
        try:
            if scheduler is None:
                n = workers or os.cpu_count() or 1
                cluster = distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    resources=dict(worker_resources) if worker_resources else None,
                    env=WORKER_ENV,
                    silence_logs=logging.ERROR,
                )
                client = distributed.Client(cluster)
                where = f"a local Dask cluster of {n} worker processes"
            else:
                client = distributed.Client(scheduler, timeout="30s")
                where = f"the Dask scheduler at {scheduler}"
            with client:
                echo(f"running {len(todo)} jobs on {where}")
                return _submit_and_wait(client, distributed, todo, ctx, run, echo, threads)
        except OSError as exc:
            if scheduler is not None:
                raise TuneprobeError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
            raise
        finally:
            if cluster is not None:
                cluster.close()

    return execute_dask


def _submit_and_wait(
    client: Any,
    distributed: Any,
    todo: list[Job],
    ctx: RunContext,
    run: JobRunner,
    echo: Echo,
    threads: int,
) -> dict[str, int]:
    available = _worker_resources(client)
    constraints = {job.id: job_resources(job, available) for job in todo}  # errors before any submission
    wctx = dataclasses.replace(ctx, progress=False)  # no progress bars on workers
    # keys unique to this invocation: a shared scheduler must not hand one run another run's (same-id) result
    token = uuid.uuid4().hex[:8]
    futures: dict[str, Any] = {}
    job_of: dict[str, Job] = {}
    for job in todo:  # dependency order: every dependency's future exists before its dependents
        deps = [futures[d] for d in job.deps if d in futures]
        fut = client.submit(
            _record_on_worker,
            job,
            wctx,
            run,
            threads,
            *deps,
            key=f"{job.kind}-{job.id}-{token}",
            pure=False,
            resources=constraints[job.id] or None,
            retries=0,
        )
        futures[job.id] = fut
        job_of[fut.key] = job
    by_kind: dict[str, int] = {}
    done = 0
    try:
        for fut in distributed.as_completed(list(futures.values())):
            job = job_of[fut.key]
            if fut.status == "cancelled":
                raise TuneprobeError(
                    f"job {job.id} ({job.kind}: {job.name}) was cancelled on the Dask cluster"
                )
            if fut.status != "finished":
                exc = fut.exception()
                tb = fut.traceback()
                lines = traceback.format_exception(type(exc), exc, tb)
                echo(f"FAILED {job.kind}: {job.name} ({job.id}) on a worker:\n{''.join(lines).rstrip()}")
                raise JobFailedError(job, exc) from exc
            info = fut.result()
            done += 1
            if info.get("executed", True):
                by_kind[job.kind] = by_kind.get(job.kind, 0) + 1
            echo(
                f"[{done}/{len(todo)}] {job.kind}: {job.name} ({job.id}) done in "
                f"{float(info.get('seconds', 0.0)):.1f} s, {info.get('n_rows', 0)} rows"
            )
    finally:
        pending = [f for f in futures.values() if not f.done()]
        if pending:
            client.cancel(pending)
    return by_kind
