"""Fixtures for fine-tuning tests: tiny random BERT models (saved as model directories) and toy splits."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_helpers():
    name = "tuneprobe_tests_tiny_models"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "encoders" / "tiny_models.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tiny_models = _load_helpers()

#: more sentences than the encoders' toy set, so that a run has several batches per epoch
SENTENCES: list[tuple[str, ...]] = [
    *tiny_models.SENTENCES,
    ("the", "dog", "runs", "over", "the", "big", "mat", "."),
    ("who", "is", "the", "quick", "brown", "fox", "?"),
    ("a", "lazy", "cat", "sat", "in", "a", "red", "house", "."),
    ("the", "fox", "jumped", "over", "a", "dog", "."),
    ("what", "is", "playing", "on", "the", "mat", "?"),
    ("big", "dog", "and", "red", "cat"),
]


@pytest.fixture(scope="session")
def tiny():
    """The helpers module (``make_tiny``, ``save_tiny``, ``token_split``, ...)."""
    return tiny_models


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BERT model directory (2 layers, H 16, max length 64, safetensors)."""
    return tiny_models.save_tiny(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh representation cache directory, also set as ``TUNEPROBE_CACHE``."""
    d = tmp_path / "cache"
    monkeypatch.setenv("TUNEPROBE_CACHE", str(d))
    return d


@pytest.fixture(scope="session")
def token_split():
    """A token split over 10 sentences (length-parity labels)."""
    return tiny_models.token_split(SENTENCES)


@pytest.fixture(scope="session")
def pair_split():
    """A pair split over 10 sentences."""
    return tiny_models.pair_split(SENTENCES)


@pytest.fixture(scope="session")
def sentence_split():
    """A sentence split over 10 sentences (question or statement)."""
    return tiny_models.sentence_split(SENTENCES)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and much faster than on two when the CPU is oversubscribed)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
