"""What one example is, and the task/split containers every reader returns.

A *split* holds the sentences once (as tuples of words) and a list of examples that point into them, so that a
204k-word POS split does not copy its sentences 204k times.

Unit kinds
- ``token``: ``Example.unit == (i,)``, the 0-based index of one word of the sentence.
- ``pair``: ``Example.unit == (dependent, head)``, two 0-based word indices; the pair vector is the
  concatenation ``[dependent; head]`` (in this order).
- ``sentence``: ``Example.unit == ()``, the whole sentence.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

UnitKind = Literal["token", "pair", "sentence"]
UNIT_KINDS: tuple[str, ...] = ("token", "pair", "sentence")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled unit.

    sentence: index into ``Split.sentences``.
    unit: word indices inside that sentence (see the module docstring for each unit kind).
    label: the gold label name.
    id: a stable, human-readable id, e.g. ``"en_pud:n01001011:w3"``.
    """

    sentence: int
    unit: tuple[int, ...]
    label: str
    id: str


@dataclass(slots=True)
class Split:
    """The examples of one split of one task.

    sentences: list of sentences, each a tuple of words (syntactic words for UD/STREUSLE; whitespace tokens
    for TREC and JSONL).
    sentence_ids: one id per sentence (e.g. the CoNLL-U ``sent_id``).
    examples: the labelled units, in corpus order.
    """

    task: str
    corpus: str
    name: str
    unit_kind: UnitKind
    sentences: list[tuple[str, ...]]
    sentence_ids: list[str]
    examples: list[Example]
    options: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def labels(self) -> list[str]:
        """Sorted distinct labels of this split; ``label_ids`` index into this list."""
        return sorted({e.label for e in self.examples})

    def label_ids(self, labels: list[str] | None = None) -> list[int]:
        """Label id of every example, as an index into ``labels`` (default: ``self.labels``).

        Raises KeyError naming the first label missing from ``labels``.
        """
        vocab = {name: i for i, name in enumerate(labels if labels is not None else self.labels)}
        out = []
        for e in self.examples:
            if e.label not in vocab:
                raise KeyError(f"label {e.label!r} of example {e.id} is not in the given label list")
            out.append(vocab[e.label])
        return out

    def fingerprint(self) -> str:
        """sha256 over everything that determines this split's representations and labels (hex, 64 chars)."""
        h = hashlib.sha256()
        h.update(
            json.dumps(
                [self.task, self.corpus, self.name, self.unit_kind, self.options], sort_keys=True, default=str
            ).encode()
        )
        for sid, words in zip(self.sentence_ids, self.sentences, strict=True):
            h.update(sid.encode())
            h.update(b"\x00")
            h.update("\x1f".join(words).encode())
            h.update(b"\x1e")
        for e in self.examples:
            h.update(f"{e.sentence}|{','.join(map(str, e.unit))}|{e.label}|{e.id}\x1e".encode())
        return h.hexdigest()


class Task(ABC):
    """A labelled task on one corpus. Subclasses read real files; nothing here touches the network."""

    name: str
    corpus: str
    unit_kind: UnitKind

    @abstractmethod
    def split_names(self) -> list[str]:
        """Available splits, e.g. ``["train", "dev", "test"]`` or ``["train", "test"]``."""

    @abstractmethod
    def load(self, split: str) -> Split:
        """Read one split from disk. Raises DataFormatError (file + line) on malformed input."""
