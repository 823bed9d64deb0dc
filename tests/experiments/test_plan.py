"""Grid expansion: job counts, dependencies, stable ids, early failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneprobe.experiments.config import ConfigError, load_config, parse_config
from tuneprobe.experiments.plan import build_plan

#: the tiny grid (tiny_config.py): 2 layers, task A tuned (snapshots 0, 2, 4), task B measured only
EXPECTED = {
    "models": 1,
    "tasks": 2,
    "finetune": 1,
    "extract": 12,  # (original, A@2, A@4) x (A, B) x (train, test)
    "directprobe": 16,
    "probe": 5,
    "train_test_similarity": 3,
    "similarity_to_original": 5,
    "outside_min_change": 5,
    "centroid_paths": 1,
    "centroid_shift": 4,
}


@pytest.fixture
def tiny_plan(tiny_dir, task_dirs, tmp_path, tiny_toml):
    def make(*replace: tuple[str, str], **extra: str):
        text = tiny_toml(tiny_dir, *task_dirs, tmp_path / "out", tmp_path / "cache", **extra)
        for old, new in replace:
            assert old in text
            text = text.replace(old, new, 1)
        return build_plan(parse_config(text, source="tiny.toml"))

    return make


def test_counts_and_dependencies(tiny_plan):
    plan = tiny_plan()
    assert plan.counts() == EXPECTED
    assert plan.n_layers == {next(iter(plan.n_layers)): 2}
    assert list(plan.snapshot_steps.values()) == [[0, 2, 4]]
    seen: set[str] = set()
    for job in plan.jobs:
        assert set(job.deps) <= seen, job.name  # dependency order
        seen.add(job.id)
        kinds = {plan.by_id[d].kind for d in job.deps}
        p = job.params
        if job.kind == "extract":
            assert kinds == ({"finetune"} if p["ref"]["finetune"] else set())
        elif job.kind == "directprobe":
            assert kinds == {"extract"}
            for d in job.deps:
                dep = plan.by_id[d].params
                assert dep["ref"] == p["ref"] and p["layer"] in dep["layers"]
            # a real train cell predicts the test split, so it reads two extractions
            assert len(job.deps) == (2 if p["predict"] else 1)
            assert bool(p["predict"]) == (p["data"]["split"] == "train" and p["control"] == "real")
        elif job.kind == "probe":
            assert kinds == {"extract"} and len(job.deps) == 2  # train, test (hold-out selection)
        elif job.kind in ("models", "tasks", "finetune"):
            assert not job.deps
        else:
            assert kinds == {"directprobe"}
    # checkpoint 0 is the original model, shared: its refs carry no fine-tuning job
    refs = [j.params["ref"] for j in plan.jobs if j.kind == "directprobe"]
    assert all((r["step"] == 0) == (r["finetune"] is None) == (r["tuned_on"] == "") for r in refs)
    assert {r["step"] for r in refs} == {0, 2, 4}


def test_jobs_are_picklable(tiny_plan):
    import pickle

    from tuneprobe.experiments.execute import RunContext

    plan = tiny_plan()
    for job in plan.jobs:
        again = pickle.loads(pickle.dumps(job))
        assert again == job and again.params == job.params and again.resources == job.resources
    ctx = RunContext(results="r", device="cpu")
    assert pickle.loads(pickle.dumps(ctx)) == ctx
    assert {j.resources.gpu for j in plan.jobs if j.kind in ("finetune", "extract", "probe")} == {True}
    assert not any(j.resources.gpu for j in plan.jobs if j.kind == "directprobe")


def test_ids_are_stable_and_input_addressed(tiny_plan):
    a, b = tiny_plan(), tiny_plan()
    assert [j.id for j in a.jobs] == [j.id for j in b.jobs]
    assert len({j.id for j in a.jobs}) == len(a.jobs)
    # a probe option changes the probe jobs' ids only
    c = tiny_plan(("max_iter = 30", "max_iter = 31"))
    changed = {j.kind for j in c.jobs if j.id not in a.by_id}
    assert changed == {"probe"}
    # another extraction window length changes the data and everything downstream, never the fine-tuning
    d = tiny_plan(extract="max_length = 32")
    kept = {j.kind for j in d.jobs if j.id in a.by_id}
    assert kept == {"models", "tasks", "finetune"}
    # a new layer for a probe adds extraction layers (new extract ids) but keeps every existing cell's id
    e = tiny_plan(probe="layers = [0, 2]")  # layer 0 (embeddings) is new
    old_cells = {j.id for j in a.jobs if j.kind == "directprobe"}
    assert old_cells <= {j.id for j in e.jobs if j.kind == "directprobe"}
    assert any(j.kind == "extract" and j.id not in a.by_id for j in e.jobs)


def test_checkpoint_and_layer_outside_schedule(tiny_dir, task_dirs, tmp_path, tiny_toml):
    text = tiny_toml(tiny_dir, *task_dirs, tmp_path / "out", tmp_path / "cache")
    bad = text.replace('checkpoints = "all"\nlayers = "all"', 'checkpoints = [0, 3]\nlayers = "all"', 1)
    with pytest.raises(ConfigError, match=r"tiny\.toml: directprobe\.cells\[0\]\.checkpoints: update\(s\) 3"):
        build_plan(parse_config(bad, source="tiny.toml"))
    bad = text.replace('layers = "all"', "layers = [5]", 1)
    with pytest.raises(ConfigError, match=r"directprobe\.cells\[0\]\.layers: layer 5: the model has hidden"):
        build_plan(parse_config(bad, source="tiny.toml"))
    bad = text.replace('id = "lengths"', 'id = "lengths"\nsplits = ["train", "dev"]', 1)
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.splits: task .* has no split\(s\) dev"):
        build_plan(parse_config(bad, source="tiny.toml"))


def test_paper_config_fails_fast_offline():
    """configs/paper.toml names hub models; offline (tests force HF_HUB_OFFLINE) planning stops at once."""
    from tuneprobe.encoders.load import resolve_model_dir
    from tuneprobe.errors import TuneprobeError

    cfg = load_config(Path(__file__).parents[2] / "configs" / "paper.toml")
    try:
        resolve_model_dir(cfg.models[0])
    except TuneprobeError:
        pass
    else:  # pragma: no cover - only where the weights are cached
        pytest.skip("the hub model is in the local cache here")
    msg = r"paper\.toml: run\.models\[0\]: model .* cannot be used here: .*offline"
    with pytest.raises(ConfigError, match=msg):
        build_plan(cfg)
