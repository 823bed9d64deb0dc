"""Universal Dependencies tasks: ``pos`` (UPOS of each word) and ``dep`` (relation of each dependent-head
pair).

Words are the *syntactic words* of a sentence (integer IDs). Multiword-token range lines (``3-4``) and empty
nodes (``8.1``) are skipped; word ``k`` sits at 0-based position ``k - 1`` and a HEAD of ``h`` maps to
position ``h - 1`` (via an explicit ID -> position map, so an empty node before the head changes nothing).

- ``pos``: one example per word, ``unit == (i,)``, label = UPOS (17 tags); id ``"<corpus>:<sent_id>:w<i>"``.
- ``dep``: one example per non-root word, ``unit == (dependent, head)`` (0-based; the pair vector is
  ``[dependent; head]``), label = DEPREL with subtypes (``nmod:poss``); ``base_relation=True`` strips the
  ``:subtype`` (``nmod``). Root words (HEAD 0) are excluded. Id ``"<corpus>:<sent_id>:w<dep>-w<head>"``.

Corpora (paths relative to the data directory):

- ``pud`` (default): UD English-PUD r2.7, ``ud_english_pud/en_pud-ud-test.r2.7.conllu.gz``. PUD is one
  1,000-sentence file; sentence ``i`` (0-based, file order) is in ``test`` iff ``i % 5 == 4``, else in
  ``train`` (800/200).
- ``pud216``: the same for the r2.16 file ``ud_english_pud/en_pud-ud-test.r2.16.conllu.gz``.
- ``ewt``: UD English-EWT 2.16, ``ud_english_ewt/en_ewt-ud-{train,dev,test}.conllu.gz`` (the standard splits).

Files are parsed by the strict reader in :mod:`tuneprobe.tasks._reader` (the ``conllu`` package handles
comment lines; see there why it is not used for token lines) and cached per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuneprobe.errors import DataFormatError, UnknownNameError
from tuneprobe.tasks._reader import Sentence, read_conll
from tuneprobe.tasks.base import Example, Split, UnitKind
from tuneprobe.tasks.data import FileTask

# columns kept per word: FORM, UPOS, HEAD, DEPREL
_KEEP = (1, 3, 6, 7)
_FORM, _UPOS, _HEAD, _DEPREL = range(4)

PUD_TEST_EVERY = 5
"""PUD split rule: sentence ``i`` is in test iff ``i % PUD_TEST_EVERY == PUD_TEST_EVERY - 1``."""


@dataclass(frozen=True)
class UDCorpus:
    """A UD corpus: split -> file (relative to the data dir); ``mod5`` splits one file 4:1 by sentence
    index."""

    name: str
    files: dict[str, str]
    mod5: bool = False
    description: str = ""


_PUD27 = "ud_english_pud/en_pud-ud-test.r2.7.conllu.gz"
_PUD216 = "ud_english_pud/en_pud-ud-test.r2.16.conllu.gz"

UD_CORPORA: dict[str, UDCorpus] = {
    "pud": UDCorpus("pud", {"train": _PUD27, "test": _PUD27}, mod5=True, description="UD English-PUD r2.7"),
    "ewt": UDCorpus(
        "ewt",
        {s: f"ud_english_ewt/en_ewt-ud-{s}.conllu.gz" for s in ("train", "dev", "test")},
        description="UD English-EWT 2.16",
    ),
    "pud216": UDCorpus(
        "pud216", {"train": _PUD216, "test": _PUD216}, mod5=True, description="UD English-PUD r2.16"
    ),
}
DEFAULT_UD_CORPUS = "pud"


class _UDTask(FileTask):
    """Shared reading for ``pos`` and ``dep``."""

    def __init__(self, data_dir: str | Path | None = None, corpus: str | None = None) -> None:
        super().__init__(data_dir)
        corpus = corpus or DEFAULT_UD_CORPUS
        if corpus not in UD_CORPORA:
            raise UnknownNameError(
                f"task {self.name!r} has no corpus {corpus!r}; valid corpora: {', '.join(UD_CORPORA)}"
            )
        self.corpus = corpus
        self.spec = UD_CORPORA[corpus]

    def split_files(self) -> dict[str, str]:
        """Split name -> file relative to the data directory."""
        return dict(self.spec.files)

    def sentences(self, split: str) -> list[Sentence]:
        """The parsed sentences of ``split`` (for PUD: the train or test share of the one file)."""
        path = self.path(split)
        parsed = read_conll(path, 10, _KEEP)
        if not self.spec.mod5:
            return list(parsed)
        want_test = split == "test"
        return [s for i, s in enumerate(parsed) if (i % PUD_TEST_EVERY == PUD_TEST_EVERY - 1) == want_test]

    def _split(self, split: str, sentences: list[Sentence], examples: list[Example], options: dict) -> Split:
        return Split(
            task=self.name,
            corpus=self.corpus,
            name=split,
            unit_kind=self.unit_kind,
            sentences=[tuple(r[_FORM] for r in s.rows) for s in sentences],
            sentence_ids=[s.sent_id for s in sentences],
            examples=examples,
            options=options,
        )


def _units(n: int) -> list[tuple[int]]:
    """Shared ``(i,)`` unit tuples (one object per position instead of one per example)."""
    return [(i,) for i in range(n)]


class PosTask(_UDTask):
    """``pos``: the UPOS tag of every syntactic word."""

    name = "pos"
    unit_kind: UnitKind = "token"

    def read(self, split: str) -> Split:
        """Parse ``split``; DataFormatError (file + line) for a word without UPOS."""
        sentences = self.sentences(split)
        path = self.path(split)
        examples: list[Example] = []
        append = examples.append
        units = _units(max((s.n_words for s in sentences), default=0))
        for si, sent in enumerate(sentences):
            stem = f"{self.corpus}:{sent.sent_id}:w"
            for wi, row in enumerate(sent.rows):
                upos = row[_UPOS]
                if upos == "_" or not upos:
                    raise DataFormatError(path, sent.lines[wi], f"word {wi + 1} has no UPOS (column 4)")
                append(Example(si, units[wi], upos, stem + str(wi)))
        return self._split(split, sentences, examples, {})


class DepTask(_UDTask):
    """``dep``: the relation (DEPREL) of every (dependent, head) pair; roots excluded.

    base_relation: strip the subtype (``nmod:poss`` -> ``nmod``). Default: keep full relations.
    """

    name = "dep"
    unit_kind: UnitKind = "pair"

    def __init__(
        self, data_dir: str | Path | None = None, corpus: str | None = None, base_relation: bool = False
    ) -> None:
        super().__init__(data_dir, corpus)
        if not isinstance(base_relation, bool):
            raise UnknownNameError(f"option base_relation must be true or false, got {base_relation!r}")
        self.base_relation = base_relation

    def read(self, split: str) -> Split:
        """Parse ``split``; DataFormatError (file + line) for a bad HEAD or a missing DEPREL."""
        sentences = self.sentences(split)
        path = self.path(split)
        examples: list[Example] = []
        prefix = self.corpus
        for si, sent in enumerate(sentences):
            n = len(sent.rows)
            # IDs are validated to be 1..n in order, so ID k is position k-1; the explicit map documents that
            # empty nodes (8.1) and ranges (3-4) never shift positions.
            position = {str(k + 1): k for k in range(n)}
            for wi, row in enumerate(sent.rows):
                head = row[_HEAD]
                if head == "0":
                    continue
                if head not in position:
                    raise DataFormatError(
                        path, sent.lines[wi], f"HEAD {head!r} of word {wi + 1} is not 0 or a word ID 1..{n}"
                    )
                rel = row[_DEPREL]
                if rel in ("", "_"):
                    raise DataFormatError(path, sent.lines[wi], f"word {wi + 1} has no DEPREL (column 8)")
                if self.base_relation:
                    rel = rel.split(":", 1)[0]
                hi = position[head]
                examples.append(Example(si, (wi, hi), rel, f"{prefix}:{sent.sent_id}:w{wi}-w{hi}"))
        return self._split(split, sentences, examples, self.options())

    def options(self) -> dict[str, object]:
        """``{"base_relation": bool}``."""
        return {"base_relation": self.base_relation}
