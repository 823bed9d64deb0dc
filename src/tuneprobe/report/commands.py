"""``tuneprobe report RESULTS_DIR [--out DIR]``: the paper's tables, figures and claims from a results
table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``tuneprobe report`` to ``app``."""

    @app.command("report")
    def report_cmd(
        results_dir: Annotated[
            Path,
            typer.Argument(help="directory holding results.parquet or results.csv (from `tuneprobe run`)"),
        ],
        out: Annotated[
            Path | None, typer.Option("--out", help="output directory (default: RESULTS_DIR/report)")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")] = False,
    ) -> None:
        """Write report.md, report.html (self-contained), tables/*.csv and figures/*.png|svg: every table
        and figure of the paper that the run's rows support, and a claims section for findings F0-F5."""
        from tuneprobe.report.build import build_report

        log = None if quiet else (lambda line: typer.echo(line, err=True))
        rep = build_report(results_dir, out, log=log)
        drawn = sum(f.missing is None for f in rep.figures)
        filled = sum(t.missing is None for t in rep.tables)
        typer.echo(
            f"{rep.markdown}\n{rep.html}\n{filled} of {len(rep.tables)} tables, "
            f"{drawn} of {len(rep.figures)} "
            "figures (the rest: not in this run)"
        )
