"""``tuneprobe extract`` on a toy task (get_task patched) with a tiny model directory."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import tuneprobe.tasks as tasks
from tuneprobe.encoders.commands import parse_layers, parse_options, register
from tuneprobe.errors import UnknownNameError
from tuneprobe.tasks.base import Task


@pytest.fixture
def app(tiny, monkeypatch):
    class ToyTask(Task):
        name, corpus, unit_kind = "toy-token", "toy", "token"

        def split_names(self):
            return ["train"]

        def load(self, split):
            return tiny.token_split(name=split)

    seen = {}

    def fake_get_task(name, data_dir=None, corpus=None, **options):
        seen.update(name=name, corpus=corpus, options=options)
        return ToyTask()

    monkeypatch.setattr(tasks, "get_task", fake_get_task, raising=False)
    a = typer.Typer()
    register(a)

    @a.command("noop")
    def _noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    a.seen = seen  # type: ignore[attr-defined]
    return a


def test_extract_then_cached_then_export(app, tiny, tmp_path):
    model_dir = tiny.save_tiny(tmp_path / "m")
    cache = tmp_path / "cache"
    args = [
        "extract",
        "toy",
        "--model",
        str(model_dir),
        "--split",
        "train",
        "--cache-dir",
        str(cache),
        "--no-progress",
        "--device",
        "cpu",
        "--corpus",
        "toy",
        "-o",
        "base_relation=true",
    ]
    runner = CliRunner()
    r1 = runner.invoke(app, args)
    assert r1.exit_code == 0, r1.output
    assert "X (3, 23, 16)" in r1.output and "computed in" in r1.output and str(cache) in r1.output
    assert app.seen == {"name": "toy", "corpus": "toy", "options": {"base_relation": "true"}}
    out = tmp_path / "exp" / "layer1.npy"
    r2 = runner.invoke(app, args + ["--out", str(out), "--layer", "1", "--layers", "1-2"])
    assert r2.exit_code == 0, r2.output
    assert "cache in" in r2.output
    X = np.load(out)
    assert X.shape == (23, 16) and X.dtype == np.float32
    labels = (tmp_path / "exp" / "layer1.labels.txt").read_text().splitlines()
    ids = (tmp_path / "exp" / "layer1.ids.txt").read_text().splitlines()
    sp = tiny.token_split()
    assert labels == [e.label for e in sp.examples] and ids == [e.id for e in sp.examples]


def test_parsers():
    assert parse_layers(None) is None and parse_layers("all") is None
    assert parse_layers("1-3,6") == [1, 2, 3, 6]
    assert parse_layers("-1") == [-1]
    assert parse_options(["base-relation=true"]) == {"base_relation": "true"}
    with pytest.raises(UnknownNameError):
        parse_layers("x")
    with pytest.raises(UnknownNameError):
        parse_options(["novalue"])
