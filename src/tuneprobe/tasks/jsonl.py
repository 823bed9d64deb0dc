"""Your own task: one JSON object per line, one file per split.

Use it by giving ``jsonl:DIR`` as the task name on the command line, or ``get_task("jsonl:DIR")`` in Python.
``DIR`` (relative to the current directory, or absolute) holds one file per split; any of them may be left
out, but at least one must exist::

    DIR/train.jsonl
    DIR/dev.jsonl     (optional)
    DIR/test.jsonl

Each non-empty line is one labelled example:

``words``  (required) the sentence as a list of non-empty strings (pre-tokenized words).
``unit``   (required) which part of the sentence is labelled; its length sets the unit kind:
           ``[i]`` one word (``token``); ``[dep, head]`` a pair of words (``pair``; the pair vector is the
           concatenation ``[words[dep]; words[head]]``, in this order); ``[]`` the whole sentence
           (``sentence``). Indices are 0-based and must lie inside ``words``. All lines of all files must use
           the same kind.
``label``  (required) the gold label, a non-empty string.
``id``     (optional) a unique example id (string); default ``"<corpus>:<split>:<line number>"``.
``split``  (optional) if present it must equal the file's split (so files written by :func:`write_jsonl` and
           concatenated-then-split files stay honest).

Nothing else is allowed (a misspelt key is an error, not silently ignored). Lines with identical ``words``
share one sentence, so a token task simply repeats the sentence on each line. The corpus name is the
directory's name unless you pass ``corpus=...``. A malformed line raises ``DataFormatError`` naming the file
and the line.

Ready-to-paste example (a tiny token task)::

    mkdir -p mytask
    cat > mytask/train.jsonl <<'EOF'
    {"words": ["The", "cat", "sat", "on", "the", "mat"], "unit": [1], "label": "animal"}
    {"words": ["The", "cat", "sat", "on", "the", "mat"], "unit": [5], "label": "thing"}
    {"words": ["A", "dog", "barked"], "unit": [1], "label": "animal", "id": "dog-1"}
    EOF
    cat > mytask/test.jsonl <<'EOF'
    {"words": ["My", "bird", "sings"], "unit": [1], "label": "animal"}
    {"words": ["Her", "chair", "broke"], "unit": [1], "label": "thing"}
    EOF

Then use ``jsonl:mytask`` wherever a task name is expected (for example ``tuneprobe extract jsonl:mytask``),
or in Python::

    from tuneprobe.tasks import get_task
    task = get_task("jsonl:mytask")
    train = task.load("train")     # Split with unit_kind "token", 3 examples over 2 sentences

A pair task line looks like ``{"words": ["dogs", "bark"], "unit": [0, 1], "label": "nsubj"}``; a sentence
task line like ``{"words": ["what", "is", "a", "dog", "?"], "unit": [], "label": "DESC:def"}``. Any loaded
split of any task can be exported in this format with :func:`write_jsonl`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tuneprobe.errors import DataFormatError, DataNotFoundError, UnknownNameError
from tuneprobe.tasks.base import UNIT_KINDS, Example, Split, Task, UnitKind

JSONL_SPLITS = ("train", "dev", "test")
_KIND_BY_LEN: dict[int, UnitKind] = {1: "token", 2: "pair", 0: "sentence"}
_REQUIRED = ("words", "unit", "label")
_ALLOWED = frozenset(("words", "unit", "label", "id", "split"))


class JsonlTask(Task):
    """A user task read from ``DIR/{train,dev,test}.jsonl`` (see the module docstring for the format)."""

    name = "jsonl"

    def __init__(self, directory: str | Path, corpus: str | None = None) -> None:
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise DataNotFoundError(
                f"jsonl task directory {self.directory} does not exist "
                f"(expected {self.directory}/train.jsonl and/or dev.jsonl, test.jsonl)"
            )
        self._files = {s: self.directory / f"{s}.jsonl" for s in JSONL_SPLITS}
        self._files = {s: p for s, p in self._files.items() if p.is_file()}
        if not self._files:
            raise DataNotFoundError(
                f"jsonl task directory {self.directory} holds none of train.jsonl, dev.jsonl, test.jsonl"
            )
        self.corpus = corpus or self.directory.resolve().name or "jsonl"
        self.unit_kind, self._kind_where = self._detect_unit_kind()

    def split_names(self) -> list[str]:
        """The splits whose file exists, in the order train, dev, test."""
        return list(self._files)

    def _detect_unit_kind(self) -> tuple[UnitKind, str]:
        split = next(iter(self._files))
        path = self._files[split]
        for lineno, obj in _iter_objects(path):
            unit = obj.get("unit")
            if isinstance(unit, list) and len(unit) in _KIND_BY_LEN:
                return _KIND_BY_LEN[len(unit)], f"{path}:{lineno}"
            _check_record(path, lineno, obj, split, None, "")  # raises the precise error
        raise DataFormatError(path, None, "file has no examples (every line is empty)")

    def load(self, split: str) -> Split:
        """Read ``split`` (``train``, ``dev`` or ``test``); DataFormatError (file + line) on bad input."""
        if split not in self._files:
            raise UnknownNameError(
                f"jsonl task {self.directory} has no split {split!r} (no file {split}.jsonl there); "
                f"valid splits: {', '.join(self._files)}"
            )
        path = self._files[split]
        sentences: list[tuple[str, ...]] = []
        sentence_ids: list[str] = []
        index: dict[tuple[str, ...], int] = {}
        examples: list[Example] = []
        seen_ids: dict[str, int] = {}
        for lineno, obj in _iter_objects(path):
            words, unit, label, ex_id = _check_record(
                path, lineno, obj, split, self.unit_kind, self._kind_where
            )
            si = index.get(words)
            if si is None:
                si = index[words] = len(sentences)
                sentences.append(words)
                sentence_ids.append(f"{self.corpus}:{split}:{lineno}")
            ex_id = ex_id if ex_id is not None else f"{self.corpus}:{split}:{lineno}"
            if ex_id in seen_ids:
                raise DataFormatError(path, lineno, f"id {ex_id!r} already used on line {seen_ids[ex_id]}")
            seen_ids[ex_id] = lineno
            examples.append(Example(si, unit, label, ex_id))
        if not examples:
            raise DataFormatError(path, None, "file has no examples (every line is empty)")
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

    def __repr__(self) -> str:
        d = str(self.directory)
        return f"JsonlTask(directory={d!r}, corpus={self.corpus!r}, unit_kind={self.unit_kind!r})"


def _iter_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, parsed object) for each non-empty line; DataFormatError for invalid JSON or UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, None, f"cannot read file: {exc}") from exc
    for lineno, bline in enumerate(raw.split(b"\n"), 1):
        try:
            line = bline.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, lineno, f"not valid UTF-8: {exc.reason}") from exc
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise DataFormatError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def _check_record(
    path: Path, lineno: int, obj: dict, split: str, kind: UnitKind | None, kind_where: str
) -> tuple[tuple[str, ...], tuple[int, ...], str, str | None]:
    """Validate one record; return ``(words, unit, label, id or None)``."""
    unknown = sorted(set(obj) - _ALLOWED)
    if unknown:
        raise DataFormatError(
            path,
            lineno,
            f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(_ALLOWED))}",
        )
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise DataFormatError(path, lineno, f"missing key(s) {', '.join(map(repr, missing))}")
    words = obj["words"]
    if not isinstance(words, list) or not words:
        raise DataFormatError(path, lineno, "'words' must be a non-empty list of strings")
    for k, w in enumerate(words):
        if not isinstance(w, str) or not w.strip():
            raise DataFormatError(path, lineno, f"'words'[{k}] must be a non-empty string, got {w!r}")
    unit = obj["unit"]
    if (
        not isinstance(unit, list)
        or len(unit) not in _KIND_BY_LEN
        or any(not isinstance(i, int) or isinstance(i, bool) for i in unit)
    ):
        raise DataFormatError(
            path, lineno, f"'unit' must be [i], [dependent, head] or [] (0-based word indices), got {unit!r}"
        )
    this_kind = _KIND_BY_LEN[len(unit)]
    if kind is not None and this_kind != kind:
        raise DataFormatError(
            path,
            lineno,
            f"unit {unit!r} is a {this_kind} unit, but the task's units are {kind} (set by {kind_where})",
        )
    for i in unit:
        if not 0 <= i < len(words):
            raise DataFormatError(
                path, lineno, f"unit index {i} is outside the {len(words)} words (0..{len(words) - 1})"
            )
    label = obj["label"]
    if not isinstance(label, str) or not label:
        raise DataFormatError(path, lineno, f"'label' must be a non-empty string, got {label!r}")
    if "split" in obj and obj["split"] != split:
        raise DataFormatError(path, lineno, f"'split' is {obj['split']!r} but the file is the {split} split")
    ex_id = obj.get("id")
    if ex_id is not None and (not isinstance(ex_id, str) or not ex_id):
        raise DataFormatError(path, lineno, f"'id' must be a non-empty string, got {ex_id!r}")
    return tuple(words), tuple(unit), label, ex_id


def write_jsonl(split: Split, path: str | Path, include_split: bool = False) -> Path:
    """Write ``split`` in the JSONL task format (one line per example; atomic). Returns the path.

    include_split: also write each line's ``"split"`` key (the split's name).
    """
    if split.unit_kind not in UNIT_KINDS:
        raise ValueError(f"unknown unit kind {split.unit_kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for e in split.examples:
                rec: dict[str, object] = {
                    "words": list(split.sentences[e.sentence]),
                    "unit": list(e.unit),
                    "label": e.label,
                    "id": e.id,
                }
                if include_split:
                    rec["split"] = split.name
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
