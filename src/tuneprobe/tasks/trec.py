"""TREC question classification (Li & Roth 2002): ``trec50`` (fine labels) and ``trec6`` (coarse labels).

Files (relative to the data directory): ``trec/train_5500.label`` (train, 5,452 questions) and
``trec/TREC_10.label`` (test, 500). Each line is ``COARSE:fine question words ...``: the label, one space, the
tokenized question. Files are read as latin-1 (the training file has one 0xF0 byte).

One example per question, a sentence unit (``unit == ()``); the words are the question's whitespace tokens as
given (lowercasing is the uncased tokenizer's job; [CLS] vs mean pooling is an encoder option). Labels:
``trec50`` = the whole ``COARSE:fine`` (e.g. ``HUM:ind``), ``trec6`` = ``COARSE`` (e.g. ``HUM``). Empty lines
are skipped; a line without a ``COARSE:fine`` label or without a question raises ``DataFormatError`` naming
file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

from tuneprobe.errors import DataFormatError, UnknownNameError
from tuneprobe.tasks._reader import read_text_lines
from tuneprobe.tasks.base import Example, Split, UnitKind
from tuneprobe.tasks.data import FileTask

TREC_FILES = {"train": "trec/train_5500.label", "test": "trec/TREC_10.label"}
_LABEL = re.compile(r"[^\s:]+:[^\s:]+")


def parse_trec_line(path: Path, lineno: int, line: str) -> tuple[str, str, list[str]]:
    """``(coarse, fine, words)`` of one non-empty line; DataFormatError (file + line) if malformed."""
    label, _, question = line.partition(" ")
    if not _LABEL.fullmatch(label):
        raise DataFormatError(path, lineno, f"expected 'COARSE:fine question ...', got label {label!r}")
    words = question.split()
    if not words:
        raise DataFormatError(path, lineno, f"label {label!r} has no question after it")
    coarse = label.split(":", 1)[0]
    return coarse, label, words


class TrecTask(FileTask):
    """``trec50`` or ``trec6`` (corpus ``trec``)."""

    unit_kind: UnitKind = "sentence"
    corpus = "trec"

    def __init__(self, name: str, data_dir: str | Path | None = None, corpus: str | None = None) -> None:
        super().__init__(data_dir)
        if name not in ("trec50", "trec6"):
            raise UnknownNameError(f"unknown TREC task {name!r}; valid: trec50, trec6")
        if corpus not in (None, "trec"):
            raise UnknownNameError(f"task {name!r} has no corpus {corpus!r}; valid corpora: trec")
        self.name = name

    def split_files(self) -> dict[str, str]:
        """Split name -> file relative to the data directory."""
        return dict(TREC_FILES)

    def read(self, split: str) -> Split:
        """Parse ``split``: one example per question."""
        path = self.path(split)
        sentences: list[tuple[str, ...]] = []
        sentence_ids: list[str] = []
        examples: list[Example] = []
        for lineno, line in enumerate(read_text_lines(path, encoding="latin-1"), 1):
            if not line.strip():
                continue
            coarse, fine, words = parse_trec_line(path, lineno, line)
            si = len(sentences)
            sid = f"trec:{split}:{lineno}"
            sentences.append(tuple(words))
            sentence_ids.append(sid)
            examples.append(Example(si, (), fine if self.name == "trec50" else coarse, sid))
        return Split(
            task=self.name,
            corpus=self.corpus,
            name=split,
            unit_kind=self.unit_kind,
            sentences=sentences,
            sentence_ids=sentence_ids,
            examples=examples,
            options={},
        )
