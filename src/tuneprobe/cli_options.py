"""Typer option types shared by the stage commands, as ``Annotated`` aliases, so that every command spells
``--corpus``, ``--data-dir``, ``--cache-dir`` and ``--option/-o`` alike (each command still names its own
parameter and default, e.g. ``data_dir: DataDirOption = None``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CorpusOption = Annotated[str | None, typer.Option(help="corpus (default: the task's first)")]
DataDirOption = Annotated[Path | None, typer.Option(help="corpora directory (default: $TUNEPROBE_DATA)")]
CacheDirOption = Annotated[Path | None, typer.Option(help="cache directory (default: $TUNEPROBE_CACHE)")]
TaskOptionsOption = Annotated[list[str] | None, typer.Option("--option", "-o", help="task option KEY=VALUE")]
