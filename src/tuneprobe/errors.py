"""Exceptions shared by every stage. Messages name the file, line and what was expected."""

from __future__ import annotations


class TuneprobeError(Exception):
    """Base class: an error the CLI reports as a one-line message (no traceback)."""


class DataFormatError(TuneprobeError):
    """A data file is malformed. The message names the file and the line number."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class UnknownNameError(TuneprobeError):
    """An unknown task, corpus, model, split or option name."""


class DataNotFoundError(TuneprobeError):
    """The corpora are not where we looked; the message says how to point at them."""


class OfflineError(TuneprobeError):
    """A download was needed but the network (or the Hugging Face hub) is unreachable."""
