"""Fixtures of the reliability suite.

It reuses the other test directories' helpers instead of copying them: the tiny random BERT models of
``tests/encoders/tiny_models.py``, the synthetic CoNLL-U writers of ``tests/tasks/conftest.py`` and the tiny
experiment grid of ``tests/experiments/conftest.py`` (loaded by path: tests run in importlib mode, so sibling
imports do not work).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from typer.testing import CliRunner

from tuneprobe.errors import TuneprobeError

TESTS = Path(__file__).parents[1]


def load_by_path(name: str, path: Path) -> ModuleType:
    """Import ``path`` once as module ``name`` (shared with the other directories' conftests)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tiny_models = load_by_path("tuneprobe_tests_tiny_models", TESTS / "encoders" / "tiny_models.py")
_tasks_conftest = load_by_path("tuneprobe_tests_tasks_conftest", TESTS / "tasks" / "conftest.py")
_exp_conftest = load_by_path("tuneprobe_tests_experiments_conftest", TESTS / "experiments" / "conftest.py")

#: file-name patterns of half-written output (temporary files, partial extraction directories)
PARTIAL_PATTERNS = ("*.tmp", "*.tmp-*", ".*.tmp*", "*.part", "partial-*", "*.partial", ".*.trash-*")


def files_under(root: Path) -> list[str]:
    """Sorted relative paths of every file under ``root`` (empty when it does not exist)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def partial_files(root: Path) -> list[str]:
    """Temporary / partial files or directories under ``root`` (what a torn write leaves)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for pat in PARTIAL_PATTERNS for p in root.rglob(pat))


def cli(args: Sequence[str]) -> tuple[int, str]:
    """Run ``tuneprobe ARGS`` as the console script does: a ``TuneprobeError`` becomes ``error: <message>``
    and exit code 2 (``tuneprobe.cli.main``); returns (exit code, stdout + stderr text). Any other exception
    is re-raised: a traceback is never what a user should meet."""
    from tuneprobe.cli import app

    res = CliRunner().invoke(app, list(map(str, args)))
    if isinstance(res.exception, TuneprobeError):
        return 2, res.output + f"error: {res.exception}\n"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


@pytest.fixture(scope="session")
def tiny() -> ModuleType:
    """The tiny-model helpers (``save_tiny``, ``token_split``, ...)."""
    return tiny_models


@pytest.fixture(scope="session")
def syn() -> SimpleNamespace:
    """The synthetic CoNLL-U / CoNLL-U-Lex writers of tests/tasks."""
    t = _tasks_conftest
    return SimpleNamespace(
        write_gz=t.write_gz, conllu_line=t.conllu_line, conllulex_line=t.conllulex_line, sentence=t.sentence
    )


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BERT model directory (2 layers, H 16, safetensors)."""
    return tiny_models.save_tiny(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def task_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(task A, task B): the experiments tests' two synthetic ``jsonl:`` token tasks."""
    root = tmp_path_factory.mktemp("tasks")
    e = _exp_conftest
    return e.write_task(root / "lengths", e.length_label), e.write_task(root / "kinds", e.kind_label)


@pytest.fixture(scope="session")
def tiny_toml():
    """``tiny_toml(model, task_a, task_b, output, cache, **extra) -> str``: the experiments tests' grid."""
    return _exp_conftest._tiny_toml


# the experiments' fixtures: a fresh TUNEPROBE_CACHE per test, one torch thread (tiny models run fastest so)
cache_dir = _exp_conftest.cache_dir
_one_thread = _exp_conftest._one_thread


def subprocess_env() -> dict[str, str]:
    """The environment of the kill-and-resume subprocesses (offline, one thread)."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }


@pytest.fixture(scope="session")
def h() -> SimpleNamespace:
    """The helpers above (test modules are imported in importlib mode: no sibling imports)."""
    return SimpleNamespace(
        cli=cli,
        files_under=files_under,
        partial_files=partial_files,
        subprocess_env=subprocess_env,
        tiny_models=tiny_models,
        write_task=_exp_conftest.write_task,
        length_label=_exp_conftest.length_label,
        sentences=_exp_conftest.SENTENCES,
    )


@pytest.fixture(scope="session")
def token_split_small():
    """A token split over the tiny-model sentences (length-parity labels), for fine-tuning runs."""
    return tiny_models.token_split()
