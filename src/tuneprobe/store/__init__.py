"""Content-addressed cache of representation matrices."""

from tuneprobe.store.representations import Representations

__all__ = ["Representations"]
