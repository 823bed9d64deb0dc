"""Snapshot directories: loadable HF model directories plus tuneprobe's metadata, head and resume state.

Layout of ``<out>/snapshots/step-000120/``::

    config.json, model.safetensors            save_pretrained of the encoder (what extraction loads)
    tokenizer.json, vocab.txt, ...            the tokenizer files
    tuneprobe_snapshot.json                   step, epoch, lr, loss, accuracy, seed, data fingerprint,
                                              label map, model, config, ...
    tuneprobe/head.safetensors                the task head (kept out of the top level so that the store's
                                              weights hash covers the encoder weights only)
    tuneprobe/resume/optimizer.safetensors    Adam state: "<param index>.<key>" tensors
    tuneprobe/resume/rng.safetensors          torch CPU (and CUDA) RNG states, numpy's MT19937 key
    tuneprobe/resume/resume.json              param names in optimizer order, param groups, python/numpy RNG

A snapshot is written into ``snapshots/.step-000120.tmp-<pid>`` and renamed into place, so a directory named
``step-*`` is always complete. With ``keep_resume="last"`` the ``resume/`` folder of the previous snapshot is
removed (renamed away first, then deleted) once the next snapshot is in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tuneprobe.errors import TuneprobeError

SNAPSHOT_JSON = "tuneprobe_snapshot.json"
STATE_DIR = "tuneprobe"
HEAD_FILE = "head.safetensors"
RESUME_DIR = "resume"
_NAME = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot on disk: update count and directory."""

    step: int
    path: Path

    @property
    def resumable(self) -> bool:
        """True when the directory holds optimizer and RNG state."""
        return (self.path / STATE_DIR / RESUME_DIR / "resume.json").is_file()

    def meta(self) -> dict[str, Any]:
        """The parsed ``tuneprobe_snapshot.json``."""
        return json.loads((self.path / SNAPSHOT_JSON).read_text())


def snapshot_name(step: int) -> str:
    """Directory name of the snapshot after ``step`` updates, e.g. ``step-000120``."""
    return f"step-{int(step):06d}"


def list_snapshots(out: str | os.PathLike[str]) -> list[SnapshotInfo]:
    """Complete snapshots under ``out`` (a run directory or its ``snapshots/`` folder), by step."""
    root = Path(out)
    if (root / "snapshots").is_dir():
        root = root / "snapshots"
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = _NAME.match(p.name)
            if m and p.is_dir() and (p / SNAPSHOT_JSON).is_file():
                found.append(SnapshotInfo(int(m.group(1)), p))
    return sorted(found, key=lambda s: s.step)


def snapshot_path(out: str | os.PathLike[str], step: int) -> Path:
    """Directory of the snapshot after ``step`` updates of the run in ``out`` (``-1`` = the newest one).

    Raises TuneprobeError when there is no such snapshot.
    """
    snaps = list_snapshots(out)
    if step == -1 and snaps:
        return snaps[-1].path
    for s in snaps:
        if s.step == step:
            return s.path
    have = ", ".join(str(s.step) for s in snaps) or "none"
    raise TuneprobeError(f"{out}: no snapshot at update {step} (have: {have})")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def clean_partial(root: Path) -> None:
    """Remove leftovers of killed writers (``.*.tmp-*`` and ``.*.trash-*`` directories) under ``root``."""
    if not root.is_dir():
        return
    for p in root.iterdir():
        if p.name.startswith(".") and (".tmp-" in p.name or ".trash-" in p.name):
            shutil.rmtree(p, ignore_errors=True)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Atomically move the finished directory ``tmp`` to ``final`` (an existing ``final`` is replaced)."""
    if final.exists():
        trash = final.with_name(f".{final.name}.trash-{uuid.uuid4().hex[:8]}")
        os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_dir(final.parent)


# ------------------------------------------------------------------------------------------------------------
# resume state
def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state as (flat tensors ``"<param index>.<key>"``, JSON-ready rest: param groups, scalars)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{k}"] = v.detach().to("cpu").contiguous().clone()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: dict[str, Any]
) -> None:
    """Inverse of :func:`optimizer_tensors`: load the state into ``opt`` (same parameters, same order)."""
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = t
    for key, v in rest.get("scalars", {}).items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    groups = rest["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Current python, numpy and torch RNG states as (tensors, JSON-ready dict)."""
    tensors = {"torch_cpu": torch.get_rng_state().clone()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s.clone()
    name, key, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy_key"] = torch.from_numpy(np.asarray(key, dtype=np.uint32).view(np.int32).copy())
    py_version, py_state, py_gauss = random.getstate()
    rest = {
        "numpy": {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }
    return tensors, rest


def set_rng_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> None:
    """Restore the states captured by :func:`rng_state`."""
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda_"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    n = rest["numpy"]
    key = tensors["numpy_key"].numpy().view(np.uint32)
    np.random.set_state((n["name"], key, n["pos"], n["has_gauss"], n["cached"]))
    p = rest["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# ------------------------------------------------------------------------------------------------------------
# writing and reading
@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-save progress bars (they would break our own progress bar)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def write_snapshot(
    root: Path,
    step: int,
    model: Any,
    tokenizer: Any,
    head: torch.nn.Module,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    param_names: list[str] | None = None,
) -> Path:
    """Write the snapshot after ``step`` updates under ``root`` (``<out>/snapshots``), atomically.

    With ``optimizer`` the resume state (optimizer, RNG, ``param_names``) is included. Returns the directory.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / snapshot_name(step)
    tmp = root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with _quiet_transformers():
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        state = tmp / STATE_DIR
        state.mkdir()
        save_file(
            {k: v.detach().to("cpu").contiguous() for k, v in head.state_dict().items()}, state / HEAD_FILE
        )
        if optimizer is not None:
            res = state / RESUME_DIR
            res.mkdir()
            opt_t, opt_rest = optimizer_tensors(optimizer)
            save_file(opt_t, res / "optimizer.safetensors")
            rng_t, rng_rest = rng_state()
            save_file(rng_t, res / "rng.safetensors")
            _write_json(
                res / "resume.json",
                {"step": int(step), "param_names": param_names or [], "optimizer": opt_rest, "rng": rng_rest},
            )
        _write_json(tmp / SNAPSHOT_JSON, {**meta, "step": int(step)})
        _fsync_dir(tmp)
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def drop_resume_state(snapshot: Path) -> None:
    """Delete a snapshot's ``tuneprobe/resume`` folder (rename first, so it is never seen half-deleted)."""
    res = snapshot / STATE_DIR / RESUME_DIR
    if not res.is_dir():
        return
    trash = snapshot / STATE_DIR / f".{RESUME_DIR}.trash-{uuid.uuid4().hex[:8]}"
    os.rename(res, trash)
    shutil.rmtree(trash, ignore_errors=True)


def load_head_state(snapshot: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The head's state dict saved in a snapshot directory."""
    return load_file(Path(snapshot) / STATE_DIR / HEAD_FILE)


def load_model_state(snapshot: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The encoder's tensors saved in a snapshot directory (all ``*.safetensors`` at its top level)."""
    files = sorted(Path(snapshot).glob("*.safetensors"))
    if not files:
        raise TuneprobeError(f"{snapshot}: no safetensors weights")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(f))
    return out


def load_resume_state(
    snapshot: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """(optimizer tensors, RNG tensors, resume.json) of a resumable snapshot."""
    res = Path(snapshot) / STATE_DIR / RESUME_DIR
    if not (res / "resume.json").is_file():
        raise TuneprobeError(f"{snapshot}: no resume state (tuneprobe/resume/resume.json)")
    return (
        load_file(res / "optimizer.safetensors"),
        load_file(res / "rng.safetensors"),
        json.loads((res / "resume.json").read_text()),
    )
