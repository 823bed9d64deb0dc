"""The task registry, data-directory resolution and the CLI's error path."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest
from typer.testing import CliRunner

from tuneprobe import cli
from tuneprobe.errors import DataNotFoundError, TuneprobeError, UnknownNameError
from tuneprobe.tasks import (
    available_tasks,
    corpora_for,
    get_task,
    resolve_data_dir,
    task_names,
)


def test_listing_rows() -> None:
    assert available_tasks() == [
        ("pos", "pud"),
        ("dep", "pud"),
        ("pos", "ewt"),
        ("dep", "ewt"),
        ("ps-role", "streusle"),
        ("ps-fxn", "streusle"),
        ("trec50", "trec"),
        ("trec6", "trec"),
    ]
    assert available_tasks(include_extra=True)[-2:] == [("pos", "pud216"), ("dep", "pud216")]
    assert task_names() == ["pos", "dep", "ps-role", "ps-fxn", "trec50", "trec6"]
    assert corpora_for("dep") == ["pud", "ewt", "pud216"]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"name": "postag"},
            r"unknown task 'postag'; valid tasks: pos, dep, ps-role, ps-fxn, trec50, trec6, or jsonl:DIR",
        ),
        (
            {"name": "pos", "corpus": "ptb"},
            r"task 'pos' has no corpus 'ptb'; valid corpora: pud, ewt, pud216",
        ),
        (
            {"name": "ps-role", "corpus": "ewt"},
            r"task 'ps-role' has no corpus 'ewt'; valid corpora: streusle",
        ),
        ({"name": "trec6", "corpus": "pud"}, r"valid corpora: trec"),
        (
            {"name": "pos", "base_relation": True},
            r"task 'pos' has no option\(s\) base_relation; valid options: none",
        ),
        ({"name": "dep", "roots": True}, r"has no option\(s\) roots; valid options: base_relation"),
        (
            {"name": "dep", "base_relation": "maybe"},
            r"option base_relation of task 'dep' must be true or false",
        ),
        ({"name": "jsonl:x", "base_relation": True}, r"jsonl tasks take no options"),
    ],
)
def test_unknown_names(tmp_path: Path, kwargs: dict, pattern: str) -> None:
    with pytest.raises(UnknownNameError, match=pattern):
        get_task(data_dir=tmp_path, **kwargs)


def test_unknown_split(data_dir: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"task pos/pud has no split 'dev'; valid splits: train, test"):
        get_task("pos", data_dir=data_dir).load("dev")


def test_resolve_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNEPROBE_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("TUNEPROBE_DATA")
    assert resolve_data_dir() == Path(platformdirs.user_data_dir("tuneprobe"))
    monkeypatch.setenv("HOME", "/home/someone")
    assert resolve_data_dir("~/corpora") == Path("/home/someone/corpora")


def test_missing_data_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNEPROBE_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as info:
        get_task("dep", corpus="ewt")
    msg = str(info.value)
    expected = tmp_path / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz"
    assert f"dep/ewt (train) needs the file {expected}, which does not exist" in msg
    assert "taken from $TUNEPROBE_DATA" in msg
    assert "--data-dir DIR" in msg and "TUNEPROBE_DATA=DIR" in msg and "tuneprobe data download" in msg
    # a partial data dir: the first missing file is named
    (tmp_path / "trec").mkdir()
    (tmp_path / "trec" / "train_5500.label").write_text("HUM:ind Who ?\n")
    with pytest.raises(DataNotFoundError, match=r"trec50/trec \(test\) needs the file .*TREC_10.label"):
        get_task("trec50")


def test_cli_main_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(
        sys, "argv", ["tuneprobe", "tasks", "--json", "--data-dir", str(tmp_path / "nowhere")]
    )
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pos/pud (train) needs the file ") and err.count("\n") == 1


def test_cli_runner_error_is_a_tuneprobe_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["tasks", "--data-dir", str(tmp_path)])
    assert isinstance(result.exception, TuneprobeError)
