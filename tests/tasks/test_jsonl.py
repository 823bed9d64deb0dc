"""The user-task JSONL format: round trip, the documented example, and every error."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import tuneprobe.tasks.jsonl as jsonl_module
from tuneprobe.errors import DataFormatError, DataNotFoundError, UnknownNameError
from tuneprobe.tasks import JsonlTask, get_task, write_jsonl


def _write(path: Path, records: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_docstring_example_runs(tmp_path: Path) -> None:
    """The ready-to-paste shell example in the module docstring creates a valid task."""
    doc = jsonl_module.__doc__
    script = doc.split("Ready-to-paste example (a tiny token task)::", 1)[1].split("\nThen use", 1)[0]
    lines = [ln[4:] for ln in script.strip("\n").splitlines()]
    subprocess.run(["bash", "-c", "\n".join(lines)], cwd=tmp_path, check=True)
    task = get_task(f"jsonl:{tmp_path / 'mytask'}")
    train = task.load("train")
    assert task.unit_kind == "token" and task.corpus == "mytask" and task.split_names() == ["train", "test"]
    assert (len(train), len(train.sentences)) == (3, 2)
    assert [e.id for e in train.examples] == ["mytask:train:1", "mytask:train:2", "dog-1"]
    assert train.labels == ["animal", "thing"]
    assert len(task.load("test")) == 2


def test_round_trip_of_a_pair_task(tmp_path: Path, syn: SimpleNamespace) -> None:
    ln = syn.conllu_line
    text = syn.sentence("a", [ln("1", "Dogs", "NOUN", "2", "nsubj"), ln("2", "bark", "VERB", "0", "root")])
    text += syn.sentence("b", [ln("1", "Birds", "NOUN", "2", "nsubj"), ln("2", "sing", "VERB", "0", "root")])
    for split in ("train", "dev", "test"):
        syn.write_gz(tmp_path / f"data/ud_english_ewt/en_ewt-ud-{split}.conllu.gz", text)
    original = get_task("dep", data_dir=tmp_path / "data", corpus="ewt").load("dev")
    write_jsonl(original, tmp_path / "mine" / "dev.jsonl", include_split=True)
    task = get_task(f"jsonl:{tmp_path / 'mine'}", corpus="mine")
    assert task.unit_kind == "pair" and task.split_names() == ["dev"]
    back = task.load("dev")
    assert back.sentences == original.sentences
    assert back.examples == original.examples
    assert (back.task, back.corpus, back.name) == ("jsonl", "mine", "dev")
    assert not list((tmp_path / "mine").glob("*.tmp"))


def test_sentence_task_and_shared_sentences(tmp_path: Path) -> None:
    d = tmp_path / "q"
    _write(
        d / "train.jsonl",
        [
            {"words": ["what", "?"], "unit": [], "label": "A"},
            "",
            {"words": ["what", "?"], "unit": [], "label": "B"},
        ],
    )
    sp = JsonlTask(d).load("train")
    assert sp.unit_kind == "sentence" and sp.sentences == [("what", "?")] and len(sp) == 2
    assert [e.id for e in sp.examples] == ["q:train:1", "q:train:3"]


BAD = [
    ("{not json", r"invalid JSON"),
    ("[1, 2]", r"expected a JSON object, got list"),
    (
        {"words": ["a"], "unit": [0], "label": "X", "lable": "Y"},
        r"unknown key\(s\) 'lable'; allowed: id, label, split, unit, words",
    ),
    ({"words": ["a"], "unit": [0]}, r"missing key\(s\) 'label'"),
    ({"words": [], "unit": [], "label": "X"}, r"'words' must be a non-empty list"),
    ({"words": "a b", "unit": [0], "label": "X"}, r"'words' must be a non-empty list"),
    ({"words": ["a", " "], "unit": [0], "label": "X"}, r"'words'\[1\] must be a non-empty string"),
    ({"words": ["a", 3], "unit": [0], "label": "X"}, r"'words'\[1\] must be a non-empty string"),
    ({"words": ["a"], "unit": [0, 0, 0], "label": "X"}, r"'unit' must be \[i\], \[dependent, head\] or \[\]"),
    ({"words": ["a"], "unit": [True], "label": "X"}, r"'unit' must be"),
    ({"words": ["a"], "unit": ["0"], "label": "X"}, r"'unit' must be"),
    ({"words": ["a", "b"], "unit": [2], "label": "X"}, r"unit index 2 is outside the 2 words \(0..1\)"),
    ({"words": ["a", "b"], "unit": [-1], "label": "X"}, r"unit index -1 is outside"),
    (
        {"words": ["a", "b"], "unit": [0, 1], "label": "X"},
        r"unit \[0, 1\] is a pair unit, but the task's units are token \(set by .*train.jsonl:1\)",
    ),
    ({"words": ["a"], "unit": [0], "label": ""}, r"'label' must be a non-empty string"),
    ({"words": ["a"], "unit": [0], "label": 5}, r"'label' must be a non-empty string"),
    (
        {"words": ["a"], "unit": [0], "label": "X", "split": "test"},
        r"'split' is 'test' but the file is the train split",
    ),
    ({"words": ["a"], "unit": [0], "label": "X", "id": 7}, r"'id' must be a non-empty string"),
    ({"words": ["a"], "unit": [0], "label": "X", "id": "dup"}, r"id 'dup' already used on line 1"),
]


@pytest.mark.parametrize(("record", "pattern"), BAD)
def test_malformed_line(tmp_path: Path, record: object, pattern: str) -> None:
    first = {"words": ["a", "b"], "unit": [1], "label": "X", "id": "dup"}
    path = _write(tmp_path / "t" / "train.jsonl", [first, record])
    with pytest.raises(DataFormatError, match=rf"train.jsonl:2: {pattern}") as info:
        JsonlTask(tmp_path / "t").load("train")
    assert info.value.path == str(path) and info.value.line == 2


def test_unit_kind_must_agree_across_files(tmp_path: Path) -> None:
    d = tmp_path / "t"
    _write(d / "train.jsonl", [{"words": ["a", "b"], "unit": [0, 1], "label": "X"}])
    _write(d / "test.jsonl", [{"words": ["a", "b"], "unit": [], "label": "X"}])
    task = JsonlTask(d)
    assert len(task.load("train")) == 1
    with pytest.raises(
        DataFormatError, match=r"test.jsonl:1: unit \[\] is a sentence unit, but the task's units are pair"
    ):
        task.load("test")


def test_first_line_decides_kind_and_bad_first_line(tmp_path: Path) -> None:
    d = tmp_path / "t"
    _write(d / "dev.jsonl", ["", {"words": ["a"], "unit": [0, 1, 2], "label": "X"}])
    with pytest.raises(DataFormatError, match=r"dev.jsonl:2: 'unit' must be"):
        JsonlTask(d)
    _write(d / "dev.jsonl", ["", "  "])
    with pytest.raises(DataFormatError, match=r"dev.jsonl: file has no examples"):
        JsonlTask(d)


def test_missing_directory_files_and_split(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"jsonl task directory .*nope does not exist"):
        get_task(f"jsonl:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match=r"holds none of train.jsonl, dev.jsonl, test.jsonl"):
        get_task(f"jsonl:{tmp_path / 'empty'}")
    _write(tmp_path / "t" / "train.jsonl", [{"words": ["a"], "unit": [0], "label": "X"}])
    with pytest.raises(
        UnknownNameError, match=r"has no split 'test' \(no file test.jsonl there\); valid splits: train"
    ):
        get_task(f"jsonl:{tmp_path / 't'}").load("test")


def test_invalid_utf8(tmp_path: Path) -> None:
    d = tmp_path / "t"
    d.mkdir()
    (d / "train.jsonl").write_bytes(b'{"words": ["a"], "unit": [0], "label": "X"}\n{"words": ["\xff"]}\n')
    with pytest.raises(DataFormatError, match=re.escape("train.jsonl:2: not valid UTF-8")):
        JsonlTask(d).load("train")
