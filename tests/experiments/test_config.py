"""Config validation: every error names the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneprobe.experiments.config import ConfigError, load_config, parse_config

BASE = """
[run]
models = ["default"]
[[tasks]]
name = "ps-role"
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="cfg.toml")
    return str(info.value)


def test_minimal_config_defaults():
    cfg = parse_config(BASE, source="cfg.toml", default_name="cfg")
    assert cfg.name == "cfg" and cfg.output == "results/cfg" and cfg.models == ("default",)
    assert cfg.tasks[0].id == "ps-role" and cfg.tasks[0].finetune and cfg.tasks[0].splits == ("train", "test")
    assert cfg.seeds == (0,) and cfg.probe.max_iter == 1000 and len(cfg.probe.alphas) == 8
    ft = cfg.finetune_config(seed=3)
    assert (ft.lr, ft.batch_size, ft.warmup, ft.seed, ft.epochs) == (3e-4, 32, 0.1, 3, None)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (BASE + "[finetune]\nlr = 'fast'\n", "cfg.toml: finetune.lr", "expected a number"),
        (BASE + "[finetune]\nlearning_rate = 0.1\n", "cfg.toml: finetune.learning_rate", "unknown key"),
        (BASE + "[finetune]\nwarmup = 1.5\n", "cfg.toml: finetune.warmup", "fraction"),
        (BASE + "[finetune]\nsnapshots = 'sometimes'\n", "cfg.toml: finetune.snapshots", "expected e.g."),
        (BASE + "[finetune]\npooling = 'max'\n", "cfg.toml: finetune.pooling", "mean, first, last"),
        (BASE + "[bogus]\nx = 1\n", "cfg.toml: bogus", "unknown key 'bogus' in [top level]"),
        (BASE.replace("[run]", "[run]\ndevice = 'tpu'"), "cfg.toml: run.device", "expected auto"),
        (BASE.replace('["default"]', "[]"), "cfg.toml: run.models", "at least one model"),
        (BASE.replace('["default"]', '"default"'), "cfg.toml: run.models", "expected an array of str"),
        (BASE.replace("[run]", "[run]\nseeds = [0, true]"), "cfg.toml: run.seeds[1]", "expected an integer"),
        ("[run]\nmodels = ['default']\n", "cfg.toml: tasks", "at least one [[tasks]]"),
        (BASE + "corpus = 3\n", "cfg.toml: tasks[0].corpus", "expected a non-empty string"),
        (BASE + "splits = ['test', 'valid']\n", "cfg.toml: tasks[0].splits[1]", "unknown split 'valid'"),
        (BASE + "splits = ['test']\n", "cfg.toml: tasks[0].splits", "train split is always needed"),
        (BASE + "max_examples = { train = 1.5 }\n", "cfg.toml: tasks[0].max_examples.train", "integer >= 2"),
        (BASE + "[[tasks]]\nname = 'ps-role'\n", "cfg.toml: tasks[1].id", "duplicate task id"),
        (
            BASE + "[[directprobe.cells]]\ncheckpoints = 'sometimes'\n",
            "cfg.toml: directprobe.cells[0].checkpoints",
            "all, ends, final",
        ),
        (
            BASE + "[[directprobe.cells]]\nlayers = [1, 'x']\n",
            "cfg.toml: directprobe.cells[0].layers[1]",
            "expected an integer",
        ),
        (BASE + "[[directprobe.cells]]\ntasks = ['pos']\n", "directprobe.cells[0].tasks[0]", "unknown task"),
        (BASE + "[directprobe]\nmin_cluster_size = 0\n", "directprobe.min_cluster_size", "must be >= 1"),
        (BASE + "[probe]\nselection = 'test'\n", "cfg.toml: probe.selection", "dev or holdout"),
        (BASE + "[probe]\nalphas = []\n", "cfg.toml: probe.alphas", "non-empty"),
        (BASE + "[analyses]\ncentroid_paths = 1\n", "cfg.toml: analyses.centroid_paths", "true or false"),
        (
            BASE + "[[tasks]]\nname = 'ps-fxn'\nfinetune = false\n"
            "[[cross_task]]\ntask = 'ps-role'\ntuned_on = ['ps-fxn']\n",
            "cfg.toml: cross_task[0].tuned_on[0]",
            "finetune = false",
        ),
        (BASE + "[[cross_task]]\ntuned_on = ['ps-role']\n", "cfg.toml: cross_task[0].task", "required key"),
        (BASE + "[[cross_task]]\ntask = 'ps-role'\ntuned_on = ['ps-role']\n", "tuned_on", "itself"),
        ("[run\n", "cfg.toml", "not valid TOML"),
    ],
)
def test_errors_name_file_and_key(text: str, where: str, what: str):
    msg = _error(text)
    assert where in msg, msg
    assert what in msg, msg


def test_command_line_overrides():
    cfg = parse_config(BASE, source="cfg.toml").with_overrides(output="elsewhere", device="cuda:1")
    assert (cfg.output, cfg.device) == ("elsewhere", "cuda:1")
    with pytest.raises(ConfigError, match=r"cfg\.toml: --device: expected auto"):
        parse_config(BASE, source="cfg.toml").with_overrides(device="tpu")


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", ["quickstart", "paper", "offline-paper"])
def test_shipped_configs_validate(name: str):
    cfg = load_config(Path(__file__).parents[2] / "configs" / f"{name}.toml")
    assert cfg.name == name and cfg.tasks
