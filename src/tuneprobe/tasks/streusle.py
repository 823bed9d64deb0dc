"""STREUSLE preposition/possessive supersense tasks: ``ps-role`` (scene role) and ``ps-fxn`` (function).

Files (relative to the data directory): ``streusle/streusle.ud_{train,dev,test}.conllulex.gz`` (STREUSLE
4.7.1, CoNLL-U-Lex: 19 tab-separated columns; the first 10 are CoNLL-U). With 1-based column numbers:

====  ========  ====================================================================
col   name      use here
====  ========  ====================================================================
2     FORM      the word
11    SMWE      strong-MWE position (``_`` = not part of a strong MWE)
12    LEXCAT    lexical category
14    SS        supersense; the scene role for ``p.*`` labels  -> ``ps-role`` label
15    SS2       second supersense; the function (= SS when congruent) -> ``ps-fxn`` label
====  ========  ====================================================================

A *target* is a syntactic word with SMWE == ``_``, LEXCAT in {``P``, ``INF.P``, ``POSS``, ``PRON.POSS``} and
SS starting with ``p.`` (this also drops the non-SNACS labels ``` `$ ``` and ``??``). One example per target,
``unit == (i,)``. If SS2 is ``_`` the function is taken to equal the role (congruent).

Range lines (``3-4``) and empty nodes (``8.1``) are skipped as in :mod:`tuneprobe.tasks.conllu`. Every line is
checked strictly (19 columns, valid ID, IDs 1..n in order); a malformed line raises ``DataFormatError`` naming
file and line. Only sentences that contain at least one target are kept in ``Split.sentences`` (1,859 of 2,725
in train).

Expected 4.7.1 counts: 4,285 / 433 / 457 targets (train/dev/test); 46 role and 38 function labels in train.
"""

from __future__ import annotations

from pathlib import Path

from tuneprobe.errors import DataFormatError, UnknownNameError
from tuneprobe.tasks._reader import read_conll
from tuneprobe.tasks.base import Example, Split, UnitKind
from tuneprobe.tasks.data import FileTask

N_COLUMNS = 19
TARGET_LEXCATS = frozenset({"P", "INF.P", "POSS", "PRON.POSS"})
# kept columns (0-based): FORM, SMWE, LEXCAT, SS, SS2
_KEEP = (1, 10, 11, 13, 14)
_FORM, _SMWE, _LEXCAT, _SS, _SS2 = range(5)

STREUSLE_FILES = {s: f"streusle/streusle.ud_{s}.conllulex.gz" for s in ("train", "dev", "test")}


class StreusleTask(FileTask):
    """``ps-role`` or ``ps-fxn`` on STREUSLE (corpus ``streusle``)."""

    unit_kind: UnitKind = "token"
    corpus = "streusle"

    def __init__(self, name: str, data_dir: str | Path | None = None, corpus: str | None = None) -> None:
        super().__init__(data_dir)
        if name not in ("ps-role", "ps-fxn"):
            raise UnknownNameError(f"unknown STREUSLE task {name!r}; valid: ps-role, ps-fxn")
        if corpus not in (None, "streusle"):
            raise UnknownNameError(f"task {name!r} has no corpus {corpus!r}; valid corpora: streusle")
        self.name = name

    def split_files(self) -> dict[str, str]:
        """Split name -> file relative to the data directory."""
        return dict(STREUSLE_FILES)

    def read(self, split: str) -> Split:
        """Parse ``split``: one example per single-token adposition/possessive target."""
        path = self.path(split)
        label_col = _SS if self.name == "ps-role" else _SS2
        sentences: list[tuple[str, ...]] = []
        sentence_ids: list[str] = []
        examples: list[Example] = []
        for sent in read_conll(path, N_COLUMNS, _KEEP):
            found: list[tuple[int, str]] = []
            for wi, row in enumerate(sent.rows):
                if row[_SMWE] != "_" or row[_LEXCAT] not in TARGET_LEXCATS or not row[_SS].startswith("p."):
                    continue
                label = row[label_col]
                if label == "_":  # no separate function: congruent
                    label = row[_SS]
                if not label.startswith("p."):
                    raise DataFormatError(
                        path, sent.lines[wi], f"SS2 (column 15) {label!r} of a p.* target is not a p.* label"
                    )
                found.append((wi, label))
            if not found:
                continue
            si = len(sentences)
            sentences.append(tuple(r[_FORM] for r in sent.rows))
            sentence_ids.append(sent.sent_id)
            examples.extend(Example(si, (wi,), lab, f"streusle:{sent.sent_id}:w{wi}") for wi, lab in found)
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
