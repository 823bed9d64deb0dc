"""Fixtures for the experiment runner: a tiny random BERT model directory, two synthetic ``jsonl:`` tasks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

#: sentences of the synthetic tasks (words of the tiny models' vocabulary)
SENTENCES: list[list[str]] = [
    ["the", "cat", "sat", "on", "the", "mat", "."],
    ["a", "dog", "runs", "in", "a", "big", "red", "house", "."],
    ["what", "is", "the", "quick", "brown", "fox", "?"],
    ["the", "dog", "runs", "over", "the", "big", "mat", "."],
    ["who", "is", "the", "lazy", "brown", "fox", "?"],
    ["a", "lazy", "cat", "sat", "in", "a", "red", "house", "."],
    ["the", "fox", "jump", "over", "a", "dog", "."],
    ["what", "is", "on", "the", "red", "mat", "?"],
    ["big", "dog", "and", "red", "cat"],
    ["a", "quick", "fox", "and", "a", "lazy", "dog", "."],
]


def _tiny_models():
    name = "tuneprobe_tests_tiny_models"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "encoders" / "tiny_models.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def length_label(word: str) -> str:
    """Task A: word length class (three labels)."""
    return "short" if len(word) <= 2 else "mid" if len(word) <= 3 else "long"


def kind_label(word: str) -> str:
    """Task B: punctuation, vowel-initial or consonant-initial word (three labels)."""
    return "punct" if not word[0].isalpha() else "vowel" if word[0] in "aeiou" else "consonant"


def write_task(directory: Path, label) -> Path:
    """A token ``jsonl:`` task over SENTENCES: train = sentences 0-7, test = 6-9 (every word labelled)."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, idx in (("train", range(0, 8)), ("test", range(6, 10))):
        lines = [
            json.dumps({"words": SENTENCES[s], "unit": [i], "label": label(w)})
            for s in idx
            for i, w in enumerate(SENTENCES[s])
        ]
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def _tiny_toml(model: Path, task_a: Path, task_b: Path, output: Path, cache: Path, **extra: str) -> str:
    """Two jsonl tasks (A tuned, B only measured), 4 updates with snapshots 0, 2, 4, every analysis, a
    one-configuration probe, the random-label control on the last layer, and B measured on A-tuned models.
    ``extra``: table name -> lines inserted at the top of that table."""
    text = f"""
[run]
name = "tiny"
models = ["{model}"]
seeds = [0]
output = "{output}"
cache_dir = "{cache}"
device = "cpu"

[[tasks]]
name = "jsonl:{task_a}"
id = "lengths"

[[tasks]]
name = "jsonl:{task_b}"
id = "kinds"
finetune = false

[finetune]
max_steps = 4
batch_size = 4
snapshots = "0,2,4"

[extract]
batch_size = 8

[[directprobe.cells]]
checkpoints = "all"
layers = "all"
splits = ["train"]

[[directprobe.cells]]
checkpoints = "ends"
layers = "last"
splits = ["test"]

[[directprobe.cells]]
checkpoints = "ends"
layers = "last"
splits = ["train"]
random_control = true

[probe]
hidden_sizes = [8]
alphas = [0.001]
seeds = [0, 1]
max_iter = 30
selection = "holdout"
workers = 1

[[cross_task]]
task = "kinds"
tuned_on = ["lengths"]
checkpoints = "all"
layers = "last"
splits = ["train"]

[analyses]
centroid_paths_layers = [1, -1]
"""
    for key, value in extra.items():
        text = text.replace(f"[{key}]\n", f"[{key}]\n{value}\n", 1)
    return text


@pytest.fixture(scope="session")
def tiny_toml():
    """``tiny_toml(model, task_a, task_b, output, cache, **extra) -> str``: the TOML of the tiny grid."""
    return _tiny_toml


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BERT model directory (2 layers, H 16)."""
    return _tiny_models().save_tiny(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def task_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(task A dir, task B dir) of two synthetic jsonl token tasks."""
    root = tmp_path_factory.mktemp("tasks")
    return write_task(root / "lengths", length_label), write_task(root / "kinds", kind_label)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh representation cache directory, also set as ``TUNEPROBE_CACHE``."""
    d = tmp_path / "cache"
    monkeypatch.setenv("TUNEPROBE_CACHE", str(d))
    return d


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
