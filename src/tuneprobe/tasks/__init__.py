"""Tasks: what one labelled example is and where it comes from.

>>> from tuneprobe.tasks import get_task
>>> task = get_task("dep", corpus="ewt", base_relation=True)   # data dir: --data-dir, $TUNEPROBE_DATA or
default
>>> train = task.load("train")                                  # a Split: sentences + examples

Built-in tasks (task / corpora, default first):

- ``pos``, ``dep``: ``pud`` (UD English-PUD r2.7, 4:1 split), ``ewt`` (UD English-EWT 2.16), ``pud216`` (PUD
  r2.16); ``dep`` takes ``base_relation=True`` to strip relation subtypes. See :mod:`tuneprobe.tasks.conllu`.
- ``ps-role``, ``ps-fxn``: ``streusle`` (STREUSLE 4.7.1). See :mod:`tuneprobe.tasks.streusle`.
- ``trec50``, ``trec6``: ``trec`` (Li & Roth 2002). See :mod:`tuneprobe.tasks.trec`.
- ``jsonl:DIR``: your own task; the format is documented in :mod:`tuneprobe.tasks.jsonl`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tuneprobe.errors import UnknownNameError
from tuneprobe.tasks.base import UNIT_KINDS, Example, Split, Task, UnitKind
from tuneprobe.tasks.conllu import DEFAULT_UD_CORPUS, UD_CORPORA, DepTask, PosTask
from tuneprobe.tasks.data import ENV_VAR, default_data_dir, resolve_data_dir
from tuneprobe.tasks.jsonl import JsonlTask, write_jsonl
from tuneprobe.tasks.streusle import StreusleTask
from tuneprobe.tasks.trec import TrecTask

__all__ = [
    "ENV_VAR",
    "UNIT_KINDS",
    "Example",
    "JsonlTask",
    "Split",
    "Task",
    "UnitKind",
    "available_tasks",
    "corpora_for",
    "default_data_dir",
    "get_task",
    "resolve_data_dir",
    "summarize_tasks",
    "task_names",
    "write_jsonl",
]


@dataclass(frozen=True)
class _TaskInfo:
    factory: Callable[..., Task]
    corpora: tuple[str, ...]  # default first
    options: dict[str, type] = field(default_factory=dict)


_UD = tuple([DEFAULT_UD_CORPUS] + [c for c in UD_CORPORA if c != DEFAULT_UD_CORPUS])

_TASKS: dict[str, _TaskInfo] = {
    "pos": _TaskInfo(lambda d, c: PosTask(d, c), _UD),
    "dep": _TaskInfo(lambda d, c, **o: DepTask(d, c, **o), _UD, {"base_relation": bool}),
    "ps-role": _TaskInfo(lambda d, c: StreusleTask("ps-role", d, c), ("streusle",)),
    "ps-fxn": _TaskInfo(lambda d, c: StreusleTask("ps-fxn", d, c), ("streusle",)),
    "trec50": _TaskInfo(lambda d, c: TrecTask("trec50", d, c), ("trec",)),
    "trec6": _TaskInfo(lambda d, c: TrecTask("trec6", d, c), ("trec",)),
}

_LISTED: tuple[tuple[str, str], ...] = (
    ("pos", "pud"),
    ("dep", "pud"),
    ("pos", "ewt"),
    ("dep", "ewt"),
    ("ps-role", "streusle"),
    ("ps-fxn", "streusle"),
    ("trec50", "trec"),
    ("trec6", "trec"),
)
_EXTRA: tuple[tuple[str, str], ...] = (("pos", "pud216"), ("dep", "pud216"))

JSONL_PREFIX = "jsonl:"


def task_names() -> list[str]:
    """Built-in task names (``jsonl:DIR`` is accepted too)."""
    return list(_TASKS)


def corpora_for(task: str) -> list[str]:
    """The corpora of a built-in task, default first; UnknownNameError for an unknown task."""
    return list(_info(task).corpora)


def available_tasks(include_extra: bool = False) -> list[tuple[str, str]]:
    """(task, corpus) rows of the task listing; ``include_extra`` adds the optional PUD r2.16 rows."""
    return list(_LISTED + (_EXTRA if include_extra else ()))


def _info(name: str) -> _TaskInfo:
    if name not in _TASKS:
        raise UnknownNameError(
            f"unknown task {name!r}; valid tasks: {', '.join(_TASKS)}, or jsonl:DIR for your own task"
        )
    return _TASKS[name]


def _coerce_bool(task: str, key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise UnknownNameError(f"option {key} of task {task!r} must be true or false, got {value!r}")


def get_task(
    name: str, data_dir: str | Path | None = None, corpus: str | None = None, **options: object
) -> Task:
    """The task ``name`` on ``corpus`` (default: the task's first corpus), reading from ``data_dir``.

    name: ``pos``, ``dep``, ``ps-role``, ``ps-fxn``, ``trec50``, ``trec6``, or ``jsonl:DIR`` (your own task;
    then ``corpus`` names it and ``data_dir`` is not used).
    data_dir: see :func:`resolve_data_dir` (argument, else ``$TUNEPROBE_DATA``, else platformdirs' default).
    options: task options; only ``dep`` has one, ``base_relation`` (bool, or "true"/"false").

    Raises UnknownNameError (unknown task, corpus or option; the message lists the valid ones) and
    DataNotFoundError (a split's file is missing; the message names the file and how to fix it).
    """
    if name.startswith(JSONL_PREFIX):
        if options:
            raise UnknownNameError(f"jsonl tasks take no options, got {', '.join(sorted(options))}")
        return JsonlTask(name[len(JSONL_PREFIX) :], corpus=corpus)
    info = _info(name)
    if corpus is not None and corpus not in info.corpora:
        raise UnknownNameError(
            f"task {name!r} has no corpus {corpus!r}; valid corpora: {', '.join(info.corpora)}"
        )
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        valid = ", ".join(info.options) if info.options else "none"
        raise UnknownNameError(f"task {name!r} has no option(s) {', '.join(unknown)}; valid options: {valid}")
    opts = {k: _coerce_bool(name, k, v) if info.options[k] is bool else v for k, v in options.items()}
    task = info.factory(data_dir, corpus or info.corpora[0], **opts)
    task.check_files()  # type: ignore[attr-defined]
    return task


def summarize_tasks(
    data_dir: str | Path | None = None, include_extra: bool = False
) -> list[dict[str, str | int | None]]:
    """One row per listed (task, corpus): ``task``, ``corpus``, ``labels`` (distinct labels in train) and the
    number of examples in ``train``, ``dev`` and ``test`` (``None`` where the task has no such split).

    Reads every split not loaded before in this process (EWT train takes a few seconds). Raises
    DataNotFoundError if a file is missing.
    """
    rows: list[dict[str, str | int | None]] = []
    for name, corpus in available_tasks(include_extra):
        task = get_task(name, data_dir=data_dir, corpus=corpus)
        counts: dict[str, int | None] = {"train": None, "dev": None, "test": None}
        n_labels = 0
        for split in task.split_names():
            counts[split], labels = task.counts(split)  # type: ignore[attr-defined]
            if split == "train":
                n_labels = labels
        rows.append({"task": name, "corpus": corpus, "labels": n_labels, **counts})
    return rows
