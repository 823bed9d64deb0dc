"""Fixtures for the tasks tests.

Synthetic corpora are made-up sentences only (never excerpts of the real corpora); the writers are exposed
through the ``syn`` fixture because test modules are imported in importlib mode (no sibling imports).
Real-data fixtures load each expensive split once per session.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import pytest

from tuneprobe.tasks import Split, get_task


def write_gz(path: Path, text: str) -> Path:
    """Write ``text`` gzip-compressed (UTF-8), creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return path


def conllu_line(wid: str, form: str, upos: str = "NOUN", head: str = "0", deprel: str = "root") -> str:
    """One 10-column CoNLL-U line."""
    return "\t".join([wid, form, form.lower(), upos, "_", "_", head, deprel, "_", "_"])


def conllulex_line(
    wid: str,
    form: str,
    smwe: str = "_",
    lexcat: str = "N",
    ss: str = "_",
    ss2: str = "_",
    head: str = "0",
    deprel: str = "root",
) -> str:
    """One 19-column CoNLL-U-Lex line (columns 11-19: SMWE LEXCAT LEXLEMMA SS SS2 WMWE WCAT WLEMMA LEXTAG)."""
    ud = [wid, form, form.lower(), "ADP", "IN", "_", head, deprel, "_", "_"]
    lex = [smwe, lexcat, form.lower(), ss, ss2, "_", "_", "_", "O-" + lexcat]
    return "\t".join(ud + lex)


def sentence(sent_id: str, lines: list[str]) -> str:
    """A CoNLL-U sentence block with a ``sent_id`` comment and a trailing blank line."""
    return f"# sent_id = {sent_id}\n# text = made up\n" + "\n".join(lines) + "\n\n"


@pytest.fixture(scope="session")
def syn() -> SimpleNamespace:
    """The synthetic-file writers above."""
    return SimpleNamespace(
        write_gz=write_gz, conllu_line=conllu_line, conllulex_line=conllulex_line, sentence=sentence
    )


@pytest.fixture(scope="session")
def ewt_splits(data_dir: Path) -> dict[str, dict[str, Split]]:
    """``{"pos": {split: Split}, "dep": {...}}`` on EWT, parsed once per session."""
    out: dict[str, dict[str, Split]] = {}
    for name in ("pos", "dep"):
        task = get_task(name, data_dir=data_dir, corpus="ewt")
        out[name] = {s: task.load(s) for s in task.split_names()}
    return out
