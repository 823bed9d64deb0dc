"""load_series and the CLI on a finished tiny run (random 2-layer BERT, a synthetic jsonl task)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tuneprobe.cli import app
from tuneprobe.experiments.config import parse_config
from tuneprobe.experiments.execute import RunContext
from tuneprobe.experiments.plan import build_plan
from tuneprobe.experiments.runner import run_plan
from tuneprobe.explore.commands import serve
from tuneprobe.explore.data import available, load_series
from tuneprobe.explore.views import held_out_predictions
from tuneprobe.geometry.cells import DirectProbeCell


def _experiments_fixtures():
    """tests/experiments/conftest.py as a module (its tiny model and synthetic task writers)."""
    import importlib.util
    import sys

    name = "tuneprobe_tests_experiments_fixtures"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "experiments" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_fx = _experiments_fixtures()
length_label = _fx.length_label


def _toml(model: Path, task: Path, out: Path, cache: Path) -> str:
    return f"""
[run]
name = "tiny-explore"
models = ["{model}"]
output = "{out}"
cache_dir = "{cache}"
device = "cpu"

[[tasks]]
name = "jsonl:{task}"
id = "lengths"
max_examples = {{ train = 40 }}

[finetune]
max_steps = 2
batch_size = 4
snapshots = "0,2"

[extract]
batch_size = 8

[directprobe]
predict = true

[[directprobe.cells]]
checkpoints = "all"
layers = "all"
splits = ["train"]

[probe]
enabled = false
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    import torch

    root = tmp_path_factory.mktemp("explore-run")
    model = _fx._tiny_models().save_tiny(root / "model")
    task = _fx.write_task(root / "lengths", length_label)
    cfg = parse_config(_toml(model, task, root / "out", root / "cache"), source="tiny.toml")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_plan(
            build_plan(cfg),
            RunContext(results=str(root / "out"), cache_dir=str(root / "cache"), device="cpu"),
            echo=lambda s: None,
        )
    finally:
        torch.set_num_threads(before)
    return root / "out"


def test_load_series_matches_the_cells(tiny_run):
    (row,) = available(tiny_run)
    assert row["task"] == "lengths" and row["tuned_on"] == "lengths" and row["split"] == "train"
    s = load_series(tiny_run)
    assert s.steps == [0, 2] and s.layers == [1, 2]
    assert s.n == 40 and len(s.example_ids) == 40 and sorted(s.labels) == ["long", "mid", "short"]
    plan = json.loads((tiny_run / "plan.json").read_text())
    n_cells = sum(j["kind"] == "directprobe" for j in plan["jobs"])
    assert len(s.cells) == n_cells == 4
    for (step, layer), sl in s.cells.items():
        assert sl.cell.key.checkpoint == step and sl.cell.key.layer == layer
        assert sl.X.shape[0] == sl.cell.n_points == 40
        # the cell's label centroids are the label means of these very rows
        for k in range(len(s.labels)):
            assert np.allclose(sl.X[s.y == k].mean(axis=0), sl.cell.centroids[k], atol=1e-4)
    # snapshot 0 is the pre-trained model, the tuned snapshot differs
    assert not np.allclose(s.cells[(0, 2)].X, s.cells[(2, 2)].X)
    # examples: each unit is a word of its sentence, labelled by its length class
    for i in range(s.n):
        word = s.sentences[s.sentence[i]][s.units[i][0]]
        assert s.labels[s.y[i]] == length_label(word)
    assert isinstance(s.cells[(0, 1)].cell, DirectProbeCell)
    # the held-out split the cells predict: the whole test split (sentences 6-9), at every cell
    h = s.held_out
    assert h is not None and h.split == "test" and set(h.X) == set(s.cells)
    assert len(h.example_ids) == sum(len(_fx.SENTENCES[k]) for k in range(6, 10))
    for j in range(len(h.y)):
        assert s.labels[h.y[j]] == length_label(h.sentences[h.sentence[j]][h.units[j][0]])
    # nearest-hull accuracy of the page's predictions = the cell's recorded intra_accuracy
    pred = held_out_predictions(s)
    for k, sl in s.cells.items():
        assert np.mean(pred[k] == h.y) == pytest.approx(sl.cell.predictions["test"]["intra_accuracy"])


def test_cli_writes_the_page_where_the_report_links_it(tiny_run):
    res = CliRunner().invoke(app, ["explore", str(tiny_run), "-q"])
    assert res.exit_code == 0, res.output
    page = tiny_run / "explore" / "lengths.html"
    assert str(page) in res.output and "40 points, 2 snapshots x 2 layers" in res.output
    text = page.read_text()
    data = json.loads(text.split("type='application/json'>", 1)[1].split("</script>", 1)[0])
    assert sorted(data["cells"]) == sorted(f"{s}|{la}" for s in (0, 2) for la in (1, 2))
    bad = CliRunner().invoke(app, ["explore", str(tiny_run), "--task", "nope", "-q"])
    assert bad.exit_code != 0 and "no DirectProbe cells" in str(bad.exception or bad.output)


def test_serve_binds_localhost_on_a_free_port(tmp_path):
    (tmp_path / "x.html").write_text("<p>hello</p>")
    server = serve(tmp_path)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1" and port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/x.html", timeout=10) as r:
            assert r.read() == b"<p>hello</p>"
    finally:
        server.shutdown()
        server.server_close()
