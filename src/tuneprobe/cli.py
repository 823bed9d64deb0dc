"""The ``tuneprobe`` command line.

Each pipeline stage owns its commands in ``tuneprobe/<stage>/commands.py`` and exposes ``register(app)``;
this file only assembles them and turns ``TuneprobeError`` into a one-line message with exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import typer

from tuneprobe.errors import TuneprobeError

app = typer.Typer(
    name="tuneprobe",
    help="How does fine-tuning change the representation space of a pre-trained encoder?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# stage modules with a ``register(app: typer.Typer) -> None``; a stage not installed yet is skipped
_STAGES = (
    "tuneprobe.tasks.commands",
    "tuneprobe.encoders.commands",
    "tuneprobe.directprobe.commands",
    "tuneprobe.finetune.commands",
    "tuneprobe.probes.commands",
    "tuneprobe.experiments.commands",
    "tuneprobe.report.commands",
    "tuneprobe.explore.commands",
)

for _mod in _STAGES:
    try:
        module = importlib.import_module(_mod)
    except ModuleNotFoundError as exc:  # only a stage that is not there yet; real import errors propagate
        if exc.name != _mod:
            raise
        continue
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except TuneprobeError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
