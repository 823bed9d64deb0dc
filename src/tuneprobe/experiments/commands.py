"""``tuneprobe run CONFIG.toml``: expand an experiment grid and run it (resumable), or print the plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def dry_run_lines(plan, results: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """The lines ``--dry-run`` prints: one per job (done or to do), then the counts per kind."""
    from tuneprobe.experiments.runner import is_done

    lines = []
    done_by_kind: dict[str, int] = {}
    for job in plan.jobs:
        done = is_done(results, job)
        done_by_kind[job.kind] = done_by_kind.get(job.kind, 0) + int(done)
        deps = f" <- {len(job.deps)} dep{'s' if len(job.deps) != 1 else ''}" if job.deps else ""
        lines.append(f"{'done' if done else 'todo'}  {job.id}  {job.kind:<22} {job.name}{deps}")
    total_done = sum(done_by_kind.values())
    lines.append("")
    for kind, n in plan.counts().items():
        lines.append(f"{kind:<22} {n:>6} jobs, {done_by_kind.get(kind, 0):>6} done")
    lines.append(
        f"{'total':<22} {len(plan.jobs):>6} jobs, {total_done:>6} done, {len(plan.jobs) - total_done} to run"
    )
    lines.append(f"results: {results}")
    return lines


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to the CLI."""

    @app.command("run")
    def run_cmd(
        config: Annotated[
            Path, typer.Argument(help="experiment configuration (TOML), e.g. configs/quickstart.toml")
        ],
        results: Annotated[
            Path | None,
            typer.Option("--results", help="results directory (default: the config's run.output)"),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="print the planned jobs and how many are done; run nothing")
        ] = False,
        device: Annotated[
            str | None, typer.Option(help="auto|cpu|cuda|mps (default: the config's run.device)")
        ] = None,
        progress: Annotated[
            bool | None, typer.Option(help="inner progress bars (default: when stderr is a terminal)")
        ] = None,
        executor: Annotated[
            str, typer.Option(help="local (one job after another) | dask (needs tuneprobe[dist])")
        ] = "local",
        workers: Annotated[
            int | None, typer.Option(help="dask: worker processes of the local cluster (default: CPU cores)")
        ] = None,
        scheduler: Annotated[
            str | None, typer.Option(help="dask: address of an existing scheduler (e.g. tcp://host:8786)")
        ] = None,
        threads: Annotated[
            int,
            typer.Option(
                min=1,
                help="torch threads per job (the same in every executor; results are byte-identical "
                "between runs with the same value)",
            ),
        ] = 1,
    ) -> None:
        """Run the experiment grid of CONFIG: fine-tuning, extraction, DirectProbe, probes and every analysis,
        into one tidy results table (RESULTS/results.parquet and .csv). Finished jobs are skipped, so a rerun
        does no work and an interrupted run resumes."""
        import sys

        from tuneprobe.experiments.config import load_config
        from tuneprobe.experiments.execute import RunContext
        from tuneprobe.experiments.plan import build_plan
        from tuneprobe.experiments.runner import execute_local, run_plan

        if executor not in ("local", "dask"):
            raise typer.BadParameter(f"expected local or dask, got {executor!r}", param_hint="--executor")
        if executor == "local" and (workers is not None or scheduler is not None):
            raise typer.BadParameter(
                "--workers and --scheduler need --executor dask", param_hint="--executor"
            )
        if executor == "dask":
            from tuneprobe.experiments.dask_executor import make_dask_executor

            run_executor = make_dask_executor(workers=workers, scheduler=scheduler, threads=threads)
        else:
            run_executor = execute_local
        cfg = load_config(config).with_overrides(
            output=str(results) if results is not None else None, device=device
        )
        plan = build_plan(cfg)
        out = Path(cfg.output)
        if dry_run:
            for line in dry_run_lines(plan, out):
                typer.echo(line)
            return
        ctx = RunContext(
            results=str(out),
            data_dir=cfg.data_dir,
            cache_dir=cfg.cache_dir,
            device=cfg.device,
            progress=sys.stderr.isatty() if progress is None else progress,
            threads=threads,
        )
        run_plan(plan, ctx, executor=run_executor)
