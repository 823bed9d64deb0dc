"""Kill and resume: a real ``SIGKILL`` at a random (seeded) point of a subprocess, then a resume.

Each scenario runs its work in a subprocess with *kill points*: every call of a few functions
(``os.replace`` on the test's own files — the commit step of every atomic write —, the safetensors writer,
the extraction's pooling per batch, the fine-tuning step callback) ticks a counter. A first, uninterrupted
run counts the ticks and is the reference; then a run with the same inputs sends itself ``SIGKILL`` at tick
``K``, with ``K`` drawn from ``numpy.random.default_rng(seed)`` in ``[1, total]``. The killed run leaves
whatever it leaves; the resume (the same call again) must end byte-identical to the reference:

- extraction (tiny model, checkpoint after every batch): the cached ``.npy`` file;
- fine-tuning (tiny model, 12 updates, snapshots every 3): every snapshot's tensors (weights, head,
  optimizer and RNG state) and the loss/lr log;
- ``tuneprobe directprobe`` (CLI): after the kill every output file is either absent or complete and equal
  to the reference's; after the rerun all are equal (summary.json up to its timings);
- ``tuneprobe run`` on the experiments tests' tiny grid: results.parquet and results.csv.
"""

from __future__ import annotations

import csv
import hashlib
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

#: imported by every scenario script: arm(targets) wraps functions so that each call ticks, and the tick
#: numbered TUNEPROBE_KILL_AT sends SIGKILL to the process; the tick count is printed at exit
KILLER = textwrap.dedent(
    """
    import atexit, functools, importlib, os, signal, sys
    KILL_AT = int(os.environ.get("TUNEPROBE_KILL_AT", "0"))
    UNDER = os.environ["TUNEPROBE_KILL_UNDER"]
    TICKS = [0]
    def tick(*_args, **_kwargs):
        TICKS[0] += 1
        if TICKS[0] == KILL_AT:
            sys.stdout.flush(); sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    def arm(targets):
        for modname, attr in targets:
            mod = importlib.import_module(modname)
            real = getattr(mod, attr)
            def wrapper(*a, _real=real, _os=modname == "os", **k):
                # os.* calls tick only on the test's own files (not numba's or the HF hub's caches)
                if not _os or any(str(x).startswith(UNDER) for x in a):
                    tick()
                return _real(*a, **k)
            functools.update_wrapper(wrapper, real)
            setattr(mod, attr, wrapper)
    atexit.register(lambda: print(f"KILL-POINTS {TICKS[0]}", file=sys.stderr, flush=True))
    """
)


def run_script(
    body: str, h: SimpleNamespace, under: Path, kill_at: int = 0, timeout: int = 400
) -> tuple[int, int, str]:
    """Run KILLER + ``body`` in a fresh interpreter (``os.*`` kill points count only for paths below
    ``under``); returns (return code, ticks counted, stderr tail)."""
    env = {**h.subprocess_env(), "TUNEPROBE_KILL_AT": str(kill_at), "TUNEPROBE_KILL_UNDER": str(under)}
    proc = subprocess.run(
        [sys.executable, "-c", KILLER + textwrap.dedent(body)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    ticks = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("KILL-POINTS ")]
    return proc.returncode, (ticks[-1] if ticks else -1), proc.stderr[-3000:]


def kill_points(seed: int, total: int, n: int = 1) -> list[int]:
    """``n`` distinct kill ticks in ``[1, total]``, drawn with ``default_rng(seed)``."""
    assert total >= n, total
    rng = np.random.default_rng(seed)
    return sorted(int(k) for k in rng.choice(np.arange(1, total + 1), size=n, replace=False))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference_and_killed(body, h, under, seed, n_kills=1):  # type: ignore[no-untyped-def]
    """Run ``body(tag)`` uninterrupted (tag "ref") and then killed at seeded ticks (tags "k0", "k1", ...);
    returns the kill ticks and the total."""
    code, total, err = run_script(body("ref"), h, under)
    assert code == 0 and total > 0, err
    ticks = kill_points(seed, total, n_kills)
    print(f"kill points: SIGKILL at tick(s) {ticks} of {total}")  # shown with pytest -s / -rA
    for i, k in enumerate(ticks):
        code, _, err = run_script(body(f"k{i}"), h, under, kill_at=k)
        assert code == -signal.SIGKILL, f"tick {k}/{total}: {err}"
    return ticks, total


# ------------------------------------------------------------------------------------------------------------
# extraction


def test_extraction_killed_and_resumed(tmp_path: Path, tiny_dir: Path, h: SimpleNamespace) -> None:
    task = h.write_task(tmp_path / "task", h.length_label)

    def body(tag: str) -> str:
        return f"""
        import tuneprobe.encoders.extract as ex
        import tuneprobe.encoders.pool
        ex.CHECKPOINT_SECONDS = -1.0  # a partial-result checkpoint after every batch
        arm([("tuneprobe.encoders.pool", "pool_batch"), ("os", "replace")])
        rep = ex.extract("jsonl:{task}", model="{tiny_dir}", cache_dir="{tmp_path / tag}", batch_size=2,
                         device="cpu", progress=False)
        print(rep.meta["cache_file"])
        """

    ticks, total = reference_and_killed(body, h, tmp_path, seed=7)
    from tuneprobe.encoders.extract import extract

    ref = extract(
        f"jsonl:{task}",
        model=str(tiny_dir),
        cache_dir=tmp_path / "ref",
        batch_size=2,
        device="cpu",
        progress=False,
    )
    assert ref.meta["from_cache"] is True
    for i in range(len(ticks)):
        cache = tmp_path / f"k{i}"
        rep = extract(
            f"jsonl:{task}", model=str(tiny_dir), cache_dir=cache, batch_size=2, device="cpu", progress=False
        )
        assert digest(Path(rep.meta["cache_file"])) == digest(Path(ref.meta["cache_file"])), (ticks, total)
        assert h.partial_files(cache) == []  # the partial directory was resumed and removed


# ------------------------------------------------------------------------------------------------------------
# fine-tuning

FT_CFG = dict(batch_size=3, epochs=3, snapshots="every:3", device="cpu", lr=1e-3, keep_resume="all")


def _snapshot_files(out: Path) -> dict[str, str]:
    """sha256 of every tensor file of every snapshot (weights, head, optimizer, RNG)."""
    return {str(p.relative_to(out)): digest(p) for p in sorted(out.rglob("*.safetensors"))}


def _log(out: Path) -> list[tuple[str, ...]]:
    with open(out / "train_log.csv", newline="") as fh:
        return [(r["step"], r["epoch"], r["loss"], r["accuracy"], r["lr"]) for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_finetuning_killed_and_resumed(tmp_path: Path, tiny_dir: Path, h: SimpleNamespace) -> None:
    split_file = tmp_path / "sentences.json"
    sentences = [list(s) for s in h.tiny_models.SENTENCES] * 3  # 4 updates an epoch with batch 3
    split_file.write_text(json.dumps(sentences))
    helpers = str(Path(h.tiny_models.__file__))

    def body(tag: str) -> str:
        return f"""
        import importlib.util, json
        import torch
        torch.set_num_threads(1)
        spec = importlib.util.spec_from_file_location("tm", {helpers!r})
        tm = importlib.util.module_from_spec(spec); spec.loader.exec_module(tm)
        from tuneprobe.finetune import FinetuneConfig, finetune
        import tuneprobe.finetune.snapshot
        arm([("os", "replace"), ("tuneprobe.finetune.snapshot", "save_file")])
        split = tm.token_split([tuple(s) for s in json.load(open({str(split_file)!r}))])
        finetune(split, model={str(tiny_dir)!r}, out={str(tmp_path / tag)!r},
                 config=FinetuneConfig(**{FT_CFG!r}), progress=False, callback=tick)
        """

    ticks, total = reference_and_killed(body, h, tmp_path, seed=11)
    from tuneprobe.finetune import FinetuneConfig, finetune

    split = h.tiny_models.token_split([tuple(s) for s in sentences])
    ref = tmp_path / "ref"
    expected = _snapshot_files(ref)
    assert len(expected) >= 5 * 2 + 2  # 5 snapshots x (model, head) + resume state
    for i in range(len(ticks)):
        out = tmp_path / f"k{i}"
        res = finetune(split, model=str(tiny_dir), out=out, config=FinetuneConfig(**FT_CFG), progress=False)
        assert [s.step for s in res.snapshots] == [0, 3, 6, 9, 12]
        assert _snapshot_files(out) == expected, (ticks, total)
        assert _log(out) == _log(ref)
        assert h.partial_files(out) == [] and not list(out.rglob(".step-*"))


# ------------------------------------------------------------------------------------------------------------
# the directprobe command


def _without_timings(obj: object) -> object:
    """``obj`` with every ``seconds*`` key removed, at any depth (wall times differ between runs)."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if not k.startswith("seconds")}
    return obj


def _summary_without_timings(path: Path) -> object:
    return _without_timings(json.loads(path.read_text()))


def test_directprobe_cli_killed_and_rerun(tmp_path: Path, h: SimpleNamespace) -> None:
    rng = np.random.default_rng(3)
    centres = np.eye(3, 4) * 6
    X = np.concatenate([c + rng.normal(size=(12, 4)) for c in centres]).astype(np.float32)
    labels = [v for v in "abc" for _ in range(12)]
    np.save(tmp_path / "train.npy", X)
    (tmp_path / "train.labels.txt").write_text("".join(f"{v}\n" for v in labels))
    np.save(tmp_path / "test.npy", X[::4] + 0.1)
    (tmp_path / "test.labels.txt").write_text("".join(f"{v}\n" for v in labels[::4]))

    def args(tag: str) -> list[str]:
        return [
            "directprobe",
            "--reps",
            str(tmp_path / "train.npy"),
            "--predict-reps",
            str(tmp_path / "test.npy"),
            "--predict-labels",
            str(tmp_path / "test.labels.txt"),
            "--out",
            str(tmp_path / tag),
            "--no-progress",
            "--backend",
            "numpy",
        ]

    def body(tag: str) -> str:
        return f"""
        import sys
        import tuneprobe.directprobe.measure
        from tuneprobe import cli
        arm([("os", "replace"), ("tuneprobe.directprobe.measure", "fit_clustering")])
        sys.argv = ["tuneprobe", *{args(tag)!r}]
        cli.main()
        """

    ticks, total = reference_and_killed(body, h, tmp_path, seed=5, n_kills=2)
    ref = tmp_path / "ref"
    names = sorted(p.name for p in ref.iterdir())
    assert names == [
        "cluster_distances.csv",
        "clusters.txt",
        "distances.csv",
        "labels.csv",
        "predictions.txt",
        "summary.json",
    ]
    for i in range(len(ticks)):
        out = tmp_path / f"k{i}"
        for name in names:  # complete or absent
            if not (out / name).exists():
                continue
            if name == "summary.json":
                assert _summary_without_timings(out / name) == _summary_without_timings(ref / name)
            else:
                assert (out / name).read_bytes() == (ref / name).read_bytes(), (name, ticks, total)
        code, text = h.cli(args(f"k{i}"))
        assert code == 0, text
        assert sorted(p.name for p in out.iterdir()) == names  # no temporary file left behind
        for name in names:
            if name != "summary.json":
                assert (out / name).read_bytes() == (ref / name).read_bytes(), name
        assert _summary_without_timings(out / "summary.json") == _summary_without_timings(
            ref / "summary.json"
        )


# ------------------------------------------------------------------------------------------------------------
# a whole grid


@pytest.mark.slow
def test_run_grid_killed_and_resumed(
    tmp_path: Path, tiny_dir: Path, task_dirs, tiny_toml, h: SimpleNamespace
) -> None:
    """``tuneprobe run`` on the tiny grid of tests/experiments (fine-tuning, extraction, DirectProbe, probes,
    cross-task cells, every analysis), killed once at a seeded tick among all its atomic-write commits and
    safetensors writes, each with its own fresh cache; resumed with the same command."""

    def cfg(tag: str) -> Path:
        p = tmp_path / f"{tag}.toml"
        p.write_text(tiny_toml(tiny_dir, *task_dirs, tmp_path / tag / "out", tmp_path / tag / "cache"))
        return p

    def body(tag: str) -> str:
        return f"""
        import sys
        import tuneprobe.finetune.snapshot
        from tuneprobe import cli
        arm([("os", "replace"), ("tuneprobe.finetune.snapshot", "save_file")])
        sys.argv = ["tuneprobe", "run", {str(cfg(tag))!r}, "--device", "cpu", "--no-progress"]
        cli.main()
        """

    ticks, total = reference_and_killed(body, h, tmp_path, seed=2022)
    killed = tmp_path / "k0" / "out"
    code, _, err = run_script(body("k0"), h, tmp_path)  # the same command again, uninterrupted
    assert code == 0, err
    for name in ("results.parquet", "results.csv"):
        assert digest(killed / name) == digest(tmp_path / "ref" / "out" / name), (name, ticks, total)
    assert h.partial_files(tmp_path / "k0") == []
