"""Where the corpora live: data-directory resolution and clear "file not found" errors.

The data directory is chosen in this order:

1. the ``data_dir`` argument (CLI: ``--data-dir DIR``);
2. the environment variable ``TUNEPROBE_DATA``;
3. ``platformdirs.user_data_dir("tuneprobe")`` (where ``tuneprobe data download`` puts the corpora by
default).

Layout under the data directory (the same as ``tuneprobe data download`` writes)::

    ud_english_pud/en_pud-ud-test.r2.7.conllu.gz        (and .r2.16.conllu.gz)
    ud_english_ewt/en_ewt-ud-{train,dev,test}.conllu.gz
    streusle/streusle.ud_{train,dev,test}.conllulex.gz
    trec/train_5500.label, trec/TREC_10.label
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path

import platformdirs

from tuneprobe.errors import DataNotFoundError, UnknownNameError
from tuneprobe.tasks.base import Split, Task

_COUNTS: dict[tuple, tuple[int, int]] = {}

ENV_VAR = "TUNEPROBE_DATA"


def default_data_dir() -> Path:
    """The per-user default data directory (``platformdirs.user_data_dir("tuneprobe")``)."""
    return Path(platformdirs.user_data_dir("tuneprobe"))


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$TUNEPROBE_DATA``, else :func:`default_data_dir`.

    The directory is not required to exist; readers raise :class:`DataNotFoundError` for missing files.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def describe_origin(data_dir: str | Path | None) -> str:
    """How :func:`resolve_data_dir` chose its answer, for error messages."""
    if data_dir is not None and str(data_dir) != "":
        return "given with --data-dir / data_dir"
    if os.environ.get(ENV_VAR):
        return f"taken from ${ENV_VAR}"
    return f"the default (--data-dir and ${ENV_VAR} are unset)"


def require_file(data_dir: Path, relpath: str, what: str, origin: str) -> Path:
    """``data_dir / relpath`` if it is a file, else a :class:`DataNotFoundError` that says how to fix it.

    what: who needs the file, e.g. ``"pos/ewt (train)"``. origin: :func:`describe_origin` of the data dir.
    """
    path = data_dir / relpath
    if path.is_file():
        return path
    raise DataNotFoundError(
        f"{what} needs the file {path}, which does not exist (data dir {data_dir}, {origin}). "
        f"Fix: pass --data-dir DIR (or set {ENV_VAR}=DIR) where DIR/{relpath} exists, "
        f"or fetch the corpora with `tuneprobe data download [--data-dir DIR]`."
    )


class FileTask(Task):
    """A task whose splits are read from files under the data directory.

    Subclasses set ``name``, ``corpus`` and ``unit_kind`` and implement :meth:`split_files` and :meth:`read`;
    :meth:`load` wraps :meth:`read` and remembers each split's size and label count for :meth:`counts`.
    """

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = resolve_data_dir(data_dir)
        self.data_dir_origin = describe_origin(data_dir)

    @abstractmethod
    def split_files(self) -> dict[str, str]:
        """Split name -> file path relative to the data directory, in split order."""

    def split_names(self) -> list[str]:
        """The splits this task has (``train``/``test``, or ``train``/``dev``/``test``)."""
        return list(self.split_files())

    def path(self, split: str) -> Path:
        """The file of ``split``; UnknownNameError for an unknown split, DataNotFoundError if missing."""
        files = self.split_files()
        if split not in files:
            raise UnknownNameError(
                f"task {self.name}/{self.corpus} has no split {split!r}; valid splits: {', '.join(files)}"
            )
        return require_file(
            self.data_dir, files[split], f"{self.name}/{self.corpus} ({split})", self.data_dir_origin
        )

    @abstractmethod
    def read(self, split: str) -> Split:
        """Parse ``split`` from its file (called by :meth:`load`)."""

    def options(self) -> dict[str, object]:
        """The task options that change its examples (recorded as ``Split.options``)."""
        return {}

    def load(self, split: str) -> Split:
        """Read one split from disk. Raises DataFormatError (file + line) on malformed input."""
        loaded = self.read(split)
        _COUNTS[self._count_key(split)] = (len(loaded), len(loaded.labels))
        return loaded

    def counts(self, split: str) -> tuple[int, int]:
        """``(number of examples, number of distinct labels)`` of ``split``; remembered per process while the
        file is unchanged, so listing tasks after loading them does not read them again."""
        key = self._count_key(split)
        if key not in _COUNTS:
            self.load(split)
        return _COUNTS[key]

    def _count_key(self, split: str) -> tuple:
        path = self.path(split)
        st = path.stat()
        opts = tuple(sorted((k, repr(v)) for k, v in self.options().items()))
        return (
            type(self).__name__,
            self.name,
            self.corpus,
            split,
            opts,
            str(path.resolve()),
            st.st_size,
            st.st_mtime_ns,
        )

    def check_files(self) -> None:
        """Raise DataNotFoundError (naming the file and the fix) unless every split's file exists."""
        for split in self.split_names():
            self.path(split)

    def __repr__(self) -> str:
        cls = type(self).__name__
        return f"{cls}(name={self.name!r}, corpus={self.corpus!r}, data_dir={str(self.data_dir)!r})"
