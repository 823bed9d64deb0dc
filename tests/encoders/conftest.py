"""Fixtures for encoder tests: tiny random BERT models (in memory and saved), a private cache directory."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_helpers():
    name = "tuneprobe_tests_tiny_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("tiny_models.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tiny_models = _load_helpers()


@pytest.fixture(scope="session")
def tiny():
    """The helpers module (``make_tiny``, ``save_tiny``, ``token_split``, ...)."""
    return tiny_models


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache directory, also set as ``TUNEPROBE_CACHE``."""
    d = tmp_path / "cache"
    monkeypatch.setenv("TUNEPROBE_CACHE", str(d))
    return d


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory):
    """An in-memory tiny ``Encoder`` (2 layers, H 16, max length 64) on CPU."""
    from tuneprobe.encoders.load import Encoder

    model, tok = tiny_models.make_tiny(tmp_path_factory.mktemp("tiny"))
    return Encoder.from_model(model, tok, name="tiny", device="cpu")
