"""CLI of the tasks stage: ``tuneprobe tasks`` (what is there, with counts), ``tuneprobe data download``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Directory holding the corpora (default: $TUNEPROBE_DATA, else the per-user data directory).",
        show_default=False,
    ),
]


def tasks_command(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    include_extra: Annotated[
        bool, typer.Option("--all", help="Also list the optional PUD r2.16 rows.")
    ] = False,
) -> None:
    """List the built-in tasks with their number of labels and of train/dev/test examples."""
    from tuneprobe.tasks import resolve_data_dir, summarize_tasks

    if as_json:
        typer.echo(json.dumps(summarize_tasks(data_dir, include_extra), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    with console.status("reading the corpora ..."):
        rows = summarize_tasks(data_dir, include_extra)
    table = Table(title=f"tuneprobe tasks (data: {resolve_data_dir(data_dir)})")
    for col in ("task", "corpus", "#labels", "#train", "#dev", "#test"):
        table.add_column(col, justify="left" if col in ("task", "corpus") else "right")
    for r in rows:
        cells = [r["task"], r["corpus"], r["labels"], r["train"], r["dev"], r["test"]]
        table.add_row(*("-" if c is None else f"{c:,}" if isinstance(c, int) else str(c) for c in cells))
    console.print(table)
    console.print("Your own task: task name jsonl:DIR (format: python -m pydoc tuneprobe.tasks.jsonl)")


def download_command(
    data_dir: DataDirOption = None,
    corpus: Annotated[
        list[str] | None,
        typer.Option("--corpus", help="Only this corpus (repeatable): pud, pud216, ewt, streusle, trec."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download even files already present and verified.")
    ] = False,
) -> None:
    """Fetch the corpora from their official sources (pinned GitHub commits) and verify their checksums."""
    from tuneprobe.tasks.data import ENV_VAR, default_data_dir, resolve_data_dir
    from tuneprobe.tasks.download import download

    root = resolve_data_dir(data_dir)
    typer.echo(f"data dir: {root}")
    results = download(data_dir, corpora=corpus or None, force=force, report=typer.echo)
    n_new = sum(status == "downloaded" for _, status in results)
    typer.echo(f"done: {n_new} downloaded, {len(results) - n_new} already present, all verified.")
    if root != default_data_dir():
        typer.echo(f"To use it, pass --data-dir {root} or set {ENV_VAR}={root}.")


def register(app: typer.Typer) -> None:
    """Add ``tasks`` and the ``data`` sub-app (``data download``) to the ``tuneprobe`` app."""
    app.command("tasks")(tasks_command)
    data_app = typer.Typer(help="The corpora: fetch them from their official sources.", no_args_is_help=True)
    data_app.command("download")(download_command)
    app.add_typer(data_app, name="data")
