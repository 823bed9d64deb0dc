"""Training runs: determinism, exact resume (in-process and after a real SIGKILL), snapshot layout and atomic
writes, run-directory checks."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tuneprobe.errors import TuneprobeError
from tuneprobe.finetune import FinetuneConfig, finetune, list_snapshots, snapshot_path
from tuneprobe.finetune import snapshot as snapshot_mod
from tuneprobe.finetune.train import epoch_order

CFG = dict(batch_size=3, epochs=3, snapshots="every:3", device="cpu", lr=1e-3)  # 4 updates/epoch, 12 in all


class Stop(Exception):
    pass


def _weights(snap: Path) -> dict[str, torch.Tensor]:
    out = dict(load_file(snap / "model.safetensors"))
    out.update({f"head.{k}": v for k, v in load_file(snap / "tuneprobe" / "head.safetensors").items()})
    return out


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reference(tiny_dir: Path, token_split, tmp_path_factory):
    """One uninterrupted run (12 updates, snapshots every 3)."""
    out = tmp_path_factory.mktemp("ref")
    torch.set_num_threads(1)
    return finetune(token_split, model=str(tiny_dir), out=out, config=FinetuneConfig(**CFG), progress=False)


def test_run_layout(reference, token_split) -> None:
    r = reference
    assert (r.total_steps, r.steps_per_epoch, r.warmup_steps) == (12, 4, 2)
    assert [s.step for s in r.snapshots] == [0, 3, 6, 9, 12]
    # only the newest snapshot keeps optimizer/RNG state (keep_resume="last")
    assert [s.resumable for s in r.snapshots] == [False] * 4 + [True]
    meta = r.snapshots[2].meta()
    assert meta["step"] == 6 and meta["epoch"] == 1.5 and meta["seed"] == 0
    assert meta["data_fingerprint"] == token_split.fingerprint()
    assert meta["labels"] == ["even", "odd"] and meta["label_map"] == {"even": 0, "odd": 1}
    assert meta["lr"] == pytest.approx(1e-3 * (12 - 5) / 10) and np.isfinite(meta["loss"])
    assert snapshot_path(r.out, 6) == r.snapshots[2].path and snapshot_path(r.out, -1) == r.final
    with pytest.raises(TuneprobeError, match="no snapshot at update 5"):
        snapshot_path(r.out, 5)
    head = load_file(r.snapshots[2].path / "tuneprobe" / "head.safetensors")
    assert head["classifier.weight"].shape == (2, 16)
    rows = _log(r.log_path)
    assert [int(x["step"]) for x in rows] == list(range(1, 13))
    assert set(rows[0]) == {"step", "epoch", "loss", "accuracy", "lr", "seconds"}
    assert float(rows[0]["lr"]) == 0.0 and float(rows[2]["lr"]) == pytest.approx(1e-3)
    assert not [p for p in (r.out / "snapshots").iterdir() if p.name.startswith(".")]
    # a snapshot is a loadable model directory
    from tuneprobe.encoders.load import load_encoder

    enc = load_encoder(str(r.final), device="cpu")
    _assert_same(
        {k: v for k, v in enc.full_model.state_dict().items() if k in _weights(r.final)},
        {k: v for k, v in _weights(r.final).items() if not k.startswith("head.")},
    )
    # snapshots differ from each other and from the start
    w0, w1 = _weights(r.snapshots[0].path), _weights(r.snapshots[-1].path)
    assert not torch.equal(
        w0["encoder.layer.0.attention.self.query.weight"], w1["encoder.layer.0.attention.self.query.weight"]
    )


def test_data_order_is_a_function_of_seed_and_epoch() -> None:
    a, b = epoch_order(0, 3, 50), epoch_order(0, 3, 50)
    assert np.array_equal(a, b) and sorted(a.tolist()) == list(range(50))
    assert not np.array_equal(a, epoch_order(0, 4, 50))
    assert not np.array_equal(a, epoch_order(1, 3, 50))


def test_same_seed_same_weights_other_seed_differs(reference, tiny_dir, token_split, tmp_path) -> None:
    cfg = {**CFG, "snapshots": "0"}
    again = finetune(
        token_split, model=str(tiny_dir), out=tmp_path / "a", config=FinetuneConfig(**cfg), progress=False
    )
    _assert_same(_weights(again.final), _weights(reference.final))
    other = finetune(
        token_split,
        model=str(tiny_dir),
        out=tmp_path / "b",
        config=FinetuneConfig(**{**cfg, "seed": 1}),
        progress=False,
    )
    assert not torch.equal(
        _weights(other.final)["head.classifier.weight"], _weights(reference.final)["head.classifier.weight"]
    )


def test_interrupted_run_resumes_to_identical_weights(reference, tiny_dir, token_split, tmp_path) -> None:
    out = tmp_path / "run"

    def stop(step: int, row: dict) -> None:
        if step == 8:  # after the snapshot at 6, two updates past it
            raise Stop

    with pytest.raises(Stop):
        finetune(
            token_split,
            model=str(tiny_dir),
            out=out,
            config=FinetuneConfig(**CFG),
            progress=False,
            callback=stop,
        )
    assert [s.step for s in list_snapshots(out)] == [0, 3, 6]
    assert len(_log(out / "train_log.csv")) == 8
    with open(out / "train_log.csv", "a") as fh:
        fh.write("9,2.25,0.6")  # a torn line, as a kill in mid-write leaves it
    res = finetune(token_split, model=str(tiny_dir), out=out, config=FinetuneConfig(**CFG), progress=False)
    assert res.resumed_from == 6
    assert [s.step for s in res.snapshots] == [0, 3, 6, 9, 12]
    _assert_same(_weights(res.final), _weights(reference.final))
    for s, r in zip(res.snapshots, reference.snapshots, strict=True):
        _assert_same(_weights(s.path), _weights(r.path))
    a, b = _log(res.log_path), _log(reference.log_path)
    assert [(x["step"], x["loss"], x["lr"]) for x in a] == [(x["step"], x["loss"], x["lr"]) for x in b]
    # a finished run is returned as is
    done = finetune(token_split, model=str(tiny_dir), out=out, config=FinetuneConfig(**CFG), progress=False)
    assert done.resumed_from == 12 and done.history == []


@pytest.mark.slow
def test_sigkilled_subprocess_resumes_to_identical_weights(
    reference, tiny_dir, token_split, tmp_path
) -> None:
    """A real SIGKILL (the process kills itself right after update 7) and an in-process resume."""
    out = tmp_path / "killed"
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps([list(s) for s in token_split.sentences]))
    helpers = str(Path(__file__).parents[1] / "encoders" / "tiny_models.py")
    script = textwrap.dedent(
        f"""
        import json, os, signal, sys, importlib.util
        import torch
        torch.set_num_threads(1)
        spec = importlib.util.spec_from_file_location("tm", {helpers!r})
        tm = importlib.util.module_from_spec(spec); spec.loader.exec_module(tm)
        from tuneprobe.finetune import FinetuneConfig, finetune
        sents = [tuple(s) for s in json.load(open({str(split_file)!r}))]
        def kill(step, row):
            if step == 7:
                os.kill(os.getpid(), signal.SIGKILL)
        finetune(tm.token_split(sents), model={str(tiny_dir)!r}, out={str(out)!r},
                 config=FinetuneConfig(**{CFG!r}), progress=False, callback=kill)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert [s.step for s in list_snapshots(out)] == [0, 3, 6]
    res = finetune(token_split, model=str(tiny_dir), out=out, config=FinetuneConfig(**CFG), progress=False)
    assert res.resumed_from == 6
    _assert_same(_weights(res.final), _weights(reference.final))


def test_snapshot_write_is_atomic(reference, tmp_path, monkeypatch) -> None:
    """A failure while a snapshot is written leaves no step-* directory, and no temporary directory."""
    from tuneprobe.encoders.load import load_encoder_dir

    enc = load_encoder_dir(reference.final, device="cpu")
    head = torch.nn.Linear(16, 2)
    root = tmp_path / "snapshots"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(snapshot_mod, "save_file", boom)
    with pytest.raises(OSError):
        snapshot_mod.write_snapshot(root, 5, enc.full_model, enc.tokenizer, head, {"x": 1})
    assert list(root.iterdir()) == []
    monkeypatch.undo()
    # a leftover of a killed writer is cleaned up and never listed
    (root / ".step-000005.tmp-1-abc").mkdir()
    assert list_snapshots(root) == []
    snapshot_mod.clean_partial(root)
    assert list(root.iterdir()) == []
    path = snapshot_mod.write_snapshot(root, 5, enc.full_model, enc.tokenizer, head, {"x": 1})
    assert [s.step for s in list_snapshots(root)] == [5] and (path / "tuneprobe_snapshot.json").is_file()
    # rewriting a step replaces it whole
    path = snapshot_mod.write_snapshot(root, 5, enc.full_model, enc.tokenizer, head, {"x": 2})
    assert json.loads((path / "tuneprobe_snapshot.json").read_text())["x"] == 2
    assert sorted(p.name for p in root.iterdir()) == ["step-000005"]


def test_out_dir_with_a_different_run_is_refused(reference, tiny_dir, token_split) -> None:
    with pytest.raises(TuneprobeError, match="different fine-tuning run"):
        finetune(
            token_split,
            model=str(tiny_dir),
            out=reference.out,
            config=FinetuneConfig(**{**CFG, "lr": 5e-4}),
            progress=False,
        )
