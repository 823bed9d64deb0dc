"""``tuneprobe.finetune.finetune``: the paper's fine-tuning recipe with a snapshot schedule and exact resume.

Run directory ``out``::

    run.json            what the run is (task, corpus, split fingerprint, model, weights hash, config,
                        schedule, label map); a rerun in the same directory must match it, and then resumes
    train_log.csv       tidy rows, one per update: step, epoch, loss, accuracy, lr, seconds
    snapshots/step-*/   see :mod:`tuneprobe.finetune.snapshot`

Determinism and resume. Before anything else python, numpy and torch are seeded with ``seed``; the head is
initialised from its own ``torch.Generator(seed)``. Epoch ``e`` visits the training sentences in the order
``torch.randperm(n, generator=Generator(seed_of(seed, e)))``, cut into consecutive batches of ``batch_size``
(the last one may be smaller), so the batch of any update is a pure function of (seed, update). The learning
rate is set from the update index before each step (no scheduler object to save). A snapshot of update ``s``
stores the encoder and head weights, Adam's state and the torch/numpy/python RNG states (dropout draws from
torch's global generator) right after update ``s``; resuming restores all of these and continues with the next
update, so a killed and resumed run does exactly the same floating-point operations as an uninterrupted one
and ends with bit-identical weights (same device, same torch build and thread count).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tuneprobe.errors import TuneprobeError
from tuneprobe.finetune.config import FinetuneConfig, lr_factor, parse_snapshots, warmup_steps
from tuneprobe.finetune.data import TrainingData
from tuneprobe.finetune.heads import TaskHead, forward_loss, make_head
from tuneprobe.finetune.snapshot import (
    SnapshotInfo,
    clean_partial,
    drop_resume_state,
    list_snapshots,
    load_head_state,
    load_model_state,
    load_optimizer,
    load_resume_state,
    set_rng_state,
    write_snapshot,
)
from tuneprobe.tasks.base import Split, Task

log = logging.getLogger("tuneprobe.finetune")

RUN_JSON = "run.json"
LOG_CSV = "train_log.csv"
LOG_FIELDS = ("step", "epoch", "loss", "accuracy", "lr", "seconds")
RUN_FORMAT = 1


@dataclass
class FinetuneResult:
    """What a run produced.

    out: the run directory. snapshots: every snapshot (step, path), by step. total_steps, steps_per_epoch,
    warmup_steps: the schedule. labels: the head's label map (index -> name). log_path: ``train_log.csv``.
    resumed_from: the step a resumed run started from (None for a fresh run). seconds: wall time of this call.
    final_loss: training loss of the last update (None when no update ran in this call and none is logged).
    """

    out: Path
    snapshots: list[SnapshotInfo]
    total_steps: int
    steps_per_epoch: int
    warmup_steps: int
    labels: list[str]
    log_path: Path
    resumed_from: int | None = None
    seconds: float = 0.0
    final_loss: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def snapshot_dirs(self) -> list[Path]:
        """The snapshot directories, by step."""
        return [s.path for s in self.snapshots]

    @property
    def final(self) -> Path:
        """Directory of the final snapshot."""
        return self.snapshots[-1].path


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the data-order generator of ``epoch`` (a 63-bit hash of (seed, epoch))."""
    return int.from_bytes(hashlib.sha256(f"tuneprobe-order:{seed}:{epoch}".encode()).digest()[:8], "big") >> 1


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """int64 ``[n]``: the order in which epoch ``epoch`` visits the ``n`` training sentences."""
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=g).numpy().astype(np.int64)


def _resolve_split(
    task: str | Task | Split, split: str, data_dir: Any, corpus: str | None, options: dict[str, Any]
) -> Split:
    if isinstance(task, Split):
        return task
    if isinstance(task, Task):
        return task.load(split)
    from tuneprobe.tasks import get_task

    return get_task(task, data_dir=data_dir, corpus=corpus, **options).load(split)


def _load_model(model: Any, device: str) -> tuple[Any, Any, str, Any]:
    """(base model, tokenizer, name, Encoder) of a name/directory, or of an ``Encoder`` (model copied)."""
    import copy

    from tuneprobe.encoders.load import Encoder, load_encoder

    if isinstance(model, Encoder):
        enc = Encoder(
            copy.deepcopy(model.full_model), model.tokenizer, name=model.name, path=None, device=device
        )
    else:
        enc = load_encoder(str(model), device=device)
    return enc.model, enc.tokenizer, enc.name, enc


class Trainer:
    """One fine-tuning run in memory: model, head, optimizer, data and the schedule.

    ``train_step(k)`` performs update ``k`` (0-based) and returns (loss, accuracy, lr); everything a step does
    is here, so the benchmark times exactly this.
    """

    def __init__(self, split: Split, model: Any, config: FinetuneConfig, device: str = "auto") -> None:
        self.config = config
        self.split = split
        self.base, self.tokenizer, self.model_name, self.encoder = _load_model(model, device)
        self.device = self.encoder.device
        self.data = TrainingData(
            split,
            self.encoder,
            pooling=config.pooling,
            sentence_pooling=config.sentence_pooling,
            max_length=config.max_length,
        )
        self.labels = self.data.labels
        seed_everything(
            config.seed
        )  # after loading: dropout draws from torch's global generator from here on
        self.n_layers = self.encoder.n_layers
        self.steps_per_epoch = math.ceil(self.data.n_sentences / config.batch_size)
        self.epochs = config.resolved_epochs(self.n_layers)
        self.total_steps = config.max_steps or self.epochs * self.steps_per_epoch
        self.warmup_steps = warmup_steps(self.total_steps, config.warmup)
        self.snapshot_steps = parse_snapshots(config.snapshots, self.total_steps)
        self.head: TaskHead = make_head(
            self.base,
            self.data.n_parts,
            len(self.labels),
            split.unit_kind,
            config.sentence_head,
            config.head_init_std,
            config.seed,
        ).to(self.device)
        named = [(f"encoder.{n}", p) for n, p in self.base.named_parameters() if p.requires_grad]
        named += [(f"head.{n}", p) for n, p in self.head.named_parameters()]
        self.param_names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.optimizer = torch.optim.Adam(
            self.params,
            lr=config.lr,
            betas=config.adam_betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        self._orders: dict[int, np.ndarray] = {}

    # -- schedule ----------------------------------------------------------------------------------------
    def lr_at(self, k: int) -> float:
        """Learning rate of update ``k`` (0-based)."""
        return self.config.lr * lr_factor(k, self.total_steps, self.warmup_steps)

    def batch_sentences(self, k: int) -> np.ndarray:
        """Training-sentence indices of update ``k`` (0-based): a slice of its epoch's permutation."""
        epoch, b = divmod(k, self.steps_per_epoch)
        order = self._orders.get(epoch)
        if order is None:
            self._orders = {epoch: epoch_order(self.config.seed, epoch, self.data.n_sentences)}
            order = self._orders[epoch]
        bs = self.config.batch_size
        return order[b * bs : (b + 1) * bs]

    # -- one update --------------------------------------------------------------------------------------
    def train_step(self, k: int) -> tuple[float, float, float]:
        """Perform update ``k`` (0-based); returns (loss, accuracy in [0, 1], lr used)."""
        batch = self.data.batch(self.batch_sentences(k)).to(self.device)
        lr = self.lr_at(k)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.base.train()
        loss, correct, n = forward_loss(self.base, self.head, batch)
        loss.backward()
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        n_val = int(n)
        return float(loss.detach()), (int(correct) / n_val if n_val else float("nan")), lr

    # -- state ---------------------------------------------------------------------------------------------
    def restore(self, snapshot: Path) -> int:
        """Load weights, head, optimizer and RNG state from a resumable snapshot; returns its step."""
        opt_t, rng_t, res = load_resume_state(snapshot)
        if res.get("param_names") != self.param_names:
            raise TuneprobeError(f"{snapshot}: its optimizer state belongs to different parameters")
        state = load_model_state(snapshot)
        own = self.base.state_dict()
        unknown = sorted(set(state) - set(own))
        if unknown:
            raise TuneprobeError(f"{snapshot}: weights {unknown[:3]} do not belong to this model")
        missing = [n for n, _ in self.base.named_parameters() if n not in state]
        if missing:
            raise TuneprobeError(f"{snapshot}: parameters {missing[:3]} are missing from its weights")
        with torch.no_grad():
            for name, t in state.items():
                own[name].copy_(t)
        self.head.load_state_dict(load_head_state(snapshot))
        load_optimizer(self.optimizer, opt_t, res["optimizer"])
        set_rng_state(rng_t, res["rng"])
        return int(res["step"])


def _run_spec(trainer: Trainer, split: Split, model_hash: str) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "task": split.task,
        "corpus": split.corpus,
        "split": split.name,
        "unit_kind": split.unit_kind,
        "data_fingerprint": split.fingerprint(),
        "model": trainer.model_name,
        "model_weights_sha256": model_hash,
        "config": trainer.config.to_dict(),
        "labels": trainer.labels,
        "n_train_sentences": trainer.data.n_sentences,
        "n_train_examples": trainer.data.n_examples,
        "steps_per_epoch": trainer.steps_per_epoch,
        "epochs": trainer.epochs,
        "total_steps": trainer.total_steps,
        "warmup_steps": trainer.warmup_steps,
        "snapshot_steps": trainer.snapshot_steps,
    }


def _model_hash(model: Any, trainer: Trainer) -> str:
    from tuneprobe.encoders.load import Encoder, resolve_model_dir
    from tuneprobe.store.keys import dir_weights_sha256

    if isinstance(model, Encoder):
        return trainer.encoder.weights_sha256()
    return dir_weights_sha256(resolve_model_dir(str(model)))


def _read_log(path: Path, upto: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if all(r.get(f) for f in LOG_FIELDS)]  # drops a torn last line
    return [r for r in rows if int(r["step"]) <= upto]


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    from tuneprobe.store.arrays import atomic_write_text

    lines = [",".join(LOG_FIELDS)] + [",".join(str(r[f]) for f in LOG_FIELDS) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def finetune(
    task: str | Task | Split,
    model: Any = "default",
    out: str | os.PathLike[str] = "finetune-out",
    config: FinetuneConfig | None = None,
    *,
    split: str = "train",
    corpus: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    **task_options: Any,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``task`` and write snapshots to ``out`` (see the module docstring).

    task: a task name (``get_task(task, data_dir=..., corpus=..., **task_options)``), a ``Task`` or a ready
    ``Split`` (trained on as given). model: ``default``, a model directory (a snapshot too), a hub id, or an
    ``Encoder`` (its model is copied, never changed). config: :class:`FinetuneConfig` (paper defaults).
    resume: continue a matching run found in ``out`` from its last resumable snapshot (a finished run is
    returned as is). overwrite: allow a run with different settings to replace what ``out`` holds.
    callback(step, row): called after every update with its log row (step = updates done).

    Raises TuneprobeError when ``out`` holds a different run (and ``overwrite`` is False).
    """
    t0 = time.perf_counter()
    cfg = config or FinetuneConfig()
    sp = _resolve_split(task, split, data_dir, corpus, task_options)
    out = Path(out).expanduser()
    trainer = Trainer(sp, model, cfg, device=cfg.device)
    spec = _run_spec(trainer, sp, _model_hash(model, trainer))
    snap_root = out / "snapshots"
    log_path = out / LOG_CSV
    out.mkdir(parents=True, exist_ok=True)
    clean_partial(snap_root)

    run_path = out / RUN_JSON
    start = 0
    resumed_from: int | None = None
    rows: list[dict[str, Any]] = []
    if run_path.is_file():
        old = json.loads(run_path.read_text())
        same = old == json.loads(json.dumps(spec, default=str))
        if not same and not overwrite:
            diff = sorted(
                k for k in set(old) | set(spec) if old.get(k) != json.loads(json.dumps(spec.get(k)))
            )
            raise TuneprobeError(
                f"{out} holds a different fine-tuning run (differs in: {', '.join(diff)}); "
                "use another --out or --overwrite"
            )
        if not same or not resume:
            import shutil

            shutil.rmtree(snap_root, ignore_errors=True)
            log_path.unlink(missing_ok=True)
        else:
            snaps = [s for s in list_snapshots(out) if s.resumable]
            if snaps:
                last = snaps[-1]
                start = trainer.restore(last.path)
                resumed_from = start
                rows = _read_log(log_path, start)
                log.info("resuming %s from update %d", out, start)
    from tuneprobe.store.arrays import atomic_write_text

    atomic_write_text(run_path, json.dumps(spec, indent=1, sort_keys=True, default=str) + "\n")
    _write_log(log_path, rows)

    steps = set(trainer.snapshot_steps)
    meta_base = {
        "task": sp.task,
        "corpus": sp.corpus,
        "split": sp.name,
        "unit_kind": sp.unit_kind,
        "data_fingerprint": spec["data_fingerprint"],
        "model": trainer.model_name,
        "model_weights_sha256": spec["model_weights_sha256"],
        "seed": cfg.seed,
        "labels": trainer.labels,
        "label_map": {name: i for i, name in enumerate(trainer.labels)},
        "config": cfg.to_dict(),
        "total_steps": trainer.total_steps,
        "steps_per_epoch": trainer.steps_per_epoch,
        "warmup_steps": trainer.warmup_steps,
        "head": {
            "kind": sp.unit_kind,
            "in_dim": trainer.data.n_parts * trainer.encoder.hidden_size,
            "n_labels": len(trainer.labels),
            "sentence_head": cfg.sentence_head if sp.unit_kind == "sentence" else None,
        },
    }
    prev_resumable: Path | None = None
    if resumed_from is not None:
        prev_resumable = snap_root / f"step-{start:06d}"

    def snapshot(step: int, row: dict[str, Any] | None) -> None:
        nonlocal prev_resumable
        meta = {
            **meta_base,
            "epoch": step / trainer.steps_per_epoch,
            "lr": None if row is None else row["lr"],
            "loss": None if row is None else row["loss"],
            "accuracy": None if row is None else row["accuracy"],
        }
        path = write_snapshot(
            snap_root,
            step,
            trainer.base,
            trainer.tokenizer,
            trainer.head,
            meta,
            optimizer=trainer.optimizer,  # the newest snapshot is always resumable
            param_names=trainer.param_names,
        )
        if cfg.keep_resume == "last" and prev_resumable is not None and prev_resumable != path:
            drop_resume_state(prev_resumable)
        prev_resumable = path

    if start == 0 and not (snap_root / "step-000000").is_dir():
        snapshot(0, None)

    from tqdm.auto import tqdm

    last_loss: float | None = float(rows[-1]["loss"]) if rows else None
    history: list[dict[str, float]] = []
    with (
        open(log_path, "a", newline="") as fh,
        tqdm(
            total=trainer.total_steps,
            initial=start,
            desc=f"finetune {sp.task}",
            unit="upd",
            disable=not progress,
        ) as bar,
    ):
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        for k in range(start, trainer.total_steps):
            loss, acc, lr = trainer.train_step(k)
            step = k + 1
            row = {
                "step": step,
                "epoch": round(step / trainer.steps_per_epoch, 6),
                "loss": loss,
                "accuracy": acc,
                "lr": lr,
                "seconds": round(time.perf_counter() - t0, 3),
            }
            writer.writerow(row)
            fh.flush()
            history.append(row)
            last_loss = loss
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}", lr=f"{lr:.2e}")
            if step in steps:
                snapshot(step, row)
            if callback is not None:
                callback(step, row)
    trainer.base.eval()
    return FinetuneResult(
        out=out,
        snapshots=list_snapshots(out),
        total_steps=trainer.total_steps,
        steps_per_epoch=trainer.steps_per_epoch,
        warmup_steps=trainer.warmup_steps,
        labels=trainer.labels,
        log_path=log_path,
        resumed_from=resumed_from,
        seconds=time.perf_counter() - t0,
        final_loss=last_loss,
        history=history,
    )
