"""What each job does: :func:`run_job` ``(job, context) -> rows``, the same function for every executor.

A job reads only its inputs (the data, the representation store, the fine-tuning run directories and the
saved DirectProbe cells of its dependencies) and returns result rows; the executor writes them. Artefacts:

- ``finetune``: the run directory ``RESULTS/finetune/<model>-<task>-seed<k>-<id8>/`` (``tuneprobe.finetune``
  resumes a killed run from its last snapshot);
- ``extract``: the representation store (``tuneprobe.extract``; a killed extraction resumes);
- ``directprobe``: ``RESULTS/cells/<job id>.npz`` (:meth:`DirectProbeCell.save`, atomic), read by the
  cross-cell analyses.

Row conventions added here: rows of a tuned model carry the fine-tuning seed in ``seed``; probe rows do too,
so the probe's per-refit accuracies are written as metrics ``accuracy_refit_<k>`` (k = the refit seed).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tuneprobe.errors import TuneprobeError
from tuneprobe.experiments.plan import Job, canonical_json
from tuneprobe.experiments.results import make_row

CELLS_DIR = "cells"


@dataclass(frozen=True)
class RunContext:
    """Where a job runs: the results directory and the machine-level settings (not part of job ids)."""

    results: str
    data_dir: str | None = None
    cache_dir: str | None = None
    device: str = "auto"
    progress: bool = False
    threads: int = 1
    """torch threads per job. Every executor runs each job with exactly this many (:func:`record_job`), so a
    run's bytes do not depend on the machine's core count or the executor: float reductions are ordered by the
    thread count, and runs with different values differ in the last bits."""

    def cell_path(self, job_id: str) -> Path:
        """The saved DirectProbe cell of the directprobe job ``job_id``."""
        return Path(self.results) / CELLS_DIR / f"{job_id}.npz"


# ------------------------------------------------------------------------------------------------------------
# data
def stratified_subsample(n_per_label: dict[Any, np.ndarray], cap: int, seed: int) -> np.ndarray:
    """Sorted indices of a stratified subsample of at most ``cap`` items.

    n_per_label: label -> int64 indices of its items (labels visited in sorted order). Each label gets
    ``floor(cap * n_label / n)`` items, at least 1, and the remaining places go to the largest remainders
    (ties: sorted label order); items are drawn with ``numpy.random.default_rng(seed)``. Returns every index
    when the total is at most ``cap``.
    """
    labels = sorted(n_per_label)
    sizes = np.array([len(n_per_label[lab]) for lab in labels], dtype=np.int64)
    n = int(sizes.sum())
    if n <= cap:
        return np.sort(np.concatenate([n_per_label[lab] for lab in labels])) if labels else np.zeros(0, int)
    exact = cap * sizes / n
    quota = np.maximum(1, np.floor(exact).astype(np.int64))
    quota = np.minimum(quota, sizes)
    left = cap - int(quota.sum())
    if left > 0:
        order = sorted(range(len(labels)), key=lambda i: (-(exact[i] - np.floor(exact[i])), i))
        for i in order:
            if left == 0:
                break
            if quota[i] < sizes[i]:
                quota[i] += 1
                left -= 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(n_per_label[lab], size=int(q), replace=False) for lab, q in zip(labels, quota, strict=True)
    ]
    return np.sort(np.concatenate(picked))


@lru_cache(maxsize=32)
def _load_split(reader_json: str, split: str, data_dir: str | None) -> Any:
    from tuneprobe.tasks import get_task

    r = json.loads(reader_json)
    return get_task(r["name"], data_dir=data_dir, corpus=r["corpus"], **r["options"]).load(split)


def load_split(data: dict[str, Any], data_dir: str | None) -> Any:
    """The ``Split`` a job's ``data`` describes: the task's split, subsampled when ``max_examples`` is set."""
    from tuneprobe.tasks.base import Split

    sp = _load_split(canonical_json(data["reader"]), data["split"], data_dir)
    cap = data.get("max_examples")
    if not cap or len(sp) <= cap:
        return sp
    by_label: dict[str, list[int]] = {}
    for i, e in enumerate(sp.examples):
        by_label.setdefault(e.label, []).append(i)
    keep = stratified_subsample(
        {k: np.asarray(v, dtype=np.int64) for k, v in by_label.items()}, cap, data["subsample_seed"]
    )
    return Split(
        task=sp.task,
        corpus=sp.corpus,
        name=sp.name,
        unit_kind=sp.unit_kind,
        sentences=sp.sentences,
        sentence_ids=sp.sentence_ids,
        examples=[sp.examples[i] for i in keep.tolist()],
        options={**sp.options, "subsample": {"max_examples": cap, "seed": data["subsample_seed"]}},
    )


def model_path(ref: dict[str, Any], ctx: RunContext) -> str:
    """What ``tuneprobe.extract`` loads for a model ref: the model name, or the snapshot directory."""
    if not ref["finetune"]:
        return ref["model"]
    from tuneprobe.finetune.snapshot import snapshot_path

    return str(snapshot_path(Path(ctx.results) / ref["run"], ref["step"]))


def representations(ref: dict[str, Any], data: dict[str, Any], layers: Sequence[int], ctx: RunContext) -> Any:
    """``tuneprobe.extract`` of one (model ref, split) at ``layers`` (a cache hit after the extract job)."""
    from tuneprobe.encoders.extract import extract

    opts = data["extract"]
    return extract(
        load_split(data, ctx.data_dir),
        model=model_path(ref, ctx),
        layers=list(layers),
        pooling=opts["pooling"],
        sentence_pooling=opts["sentence_pooling"],
        batch_size=opts["batch_size"],
        max_length=opts["max_length"],
        device=ctx.device,
        cache_dir=ctx.cache_dir,
        progress=ctx.progress,
    )


# ------------------------------------------------------------------------------------------------------------
# job bodies
def _quiet_transformers(ctx: RunContext) -> None:
    """Without inner progress bars, hide transformers' weight-loading bars too (they flood a log file)."""
    if not ctx.progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _finetune(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.experiments.plan import finetune_run_dir
    from tuneprobe.finetune.config import FinetuneConfig
    from tuneprobe.finetune.train import LOG_CSV, finetune

    _quiet_transformers(ctx)
    p = job.params
    r = p["reader"]
    cfg = FinetuneConfig(**p["settings"], seed=p["seed"], device=ctx.device)
    out = Path(ctx.results) / finetune_run_dir(job)
    res = finetune(
        r["name"],
        model=p["model"],
        out=out,
        config=cfg,
        corpus=r["corpus"],
        data_dir=ctx.data_dir,
        progress=ctx.progress,
        **r["options"],
    )
    steps = [s.step for s in res.snapshots]
    if steps != p["snapshot_steps"]:
        raise TuneprobeError(
            f"{out}: snapshots at {steps}, but the plan expected {p['snapshot_steps']} "
            "(the training data changed since planning?)"
        )
    rows = []
    with open(out / LOG_CSV, newline="") as fh:
        for rec in csv.DictReader(fh):
            for metric, col in (("loss", "loss"), ("accuracy", "accuracy"), ("learning_rate", "lr")):
                rows.append(
                    make_row(
                        analysis="finetune",
                        metric=metric,
                        value=float(rec[col]),
                        model=p["model"],
                        tuned_on=p["task"],
                        checkpoint=int(rec["step"]),
                        task=p["task"],
                        split="train",
                        seed=p["seed"],
                    )
                )
    return rows


def _extract(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    p = job.params
    representations(p["ref"], p["data"], p["layers"], ctx)
    return []


def _directprobe(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.geometry.cells import CellKey, permute_labels, run_directprobe_cell

    p = job.params
    ref, data, layer = p["ref"], p["data"], p["layer"]
    reps = representations(ref, data, [layer], ctx)
    y = np.asarray(reps.y)
    if p["control"] == "random":
        y = permute_labels(y, p["control_seed"])
    predict = None
    if p["predict"]:
        test = representations(ref, p["predict"], [layer], ctx)
        names = np.asarray(test.labels, dtype=object)[np.asarray(test.y)].astype(str)
        predict = {p["predict"]["split"]: (np.asarray(test.layer(layer)), names)}
    key = CellKey(
        model=ref["model"],
        tuned_on=ref["tuned_on"],
        checkpoint=ref["step"],
        layer=layer,
        task=data["task"],
        split=data["split"],
        seed=ref["seed"],
        control=p["control"],
    )
    cell = run_directprobe_cell(
        key,
        np.asarray(reps.layer(layer)),
        y,
        reps.labels,
        predict=predict,
        min_cluster_size=p["min_cluster_size"],
        progress=ctx.progress,
    )
    cell.save(ctx.cell_path(job.id))
    return cell.rows()


def _probe(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.probes.search import probe_representations

    p = job.params
    ref, layer = p["ref"], p["layer"]
    options = dict(p["options"])
    reps = {s: representations(ref, d, [layer], ctx) for s, d in p["splits"].items()}
    task = p["splits"]["train"]["task"]
    _, rows = probe_representations(
        reps["train"],
        reps["test"],
        layer,
        reps.get("dev"),
        model=ref["model"],
        tuned_on=ref["tuned_on"],
        checkpoint=ref["step"],
        device=None if ctx.device == "auto" else ctx.device,
        **options,
    )
    out = []
    for row in rows:
        row = dict(row, task=task)
        if row["metric"] == "accuracy":
            row["metric"] = f"accuracy_refit_{row['seed']}"
        row["seed"] = ref["seed"]
        out.append(make_row(**row))
    return out


def _cells(ids: Sequence[str], ctx: RunContext) -> list[Any]:
    from tuneprobe.geometry.cells import DirectProbeCell

    return [DirectProbeCell.load(ctx.cell_path(i)) for i in ids]


def _train_test_similarity(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.geometry.analyses import train_test_similarity

    p = job.params
    train, test = _cells([p["train"], p["test"]], ctx)
    return train_test_similarity(train, test)


def _similarity_to_original(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.geometry.analyses import similarity_to_original

    return similarity_to_original(_cells(job.params["cells"], ctx))


def _outside_min_change(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.geometry.analyses import outside_min_change

    p = job.params
    (base,) = _cells([p["base"]], ctx)
    return [row for other in _cells(p["cells"], ctx) for row in outside_min_change(base, other)]


def _centroid_paths(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.geometry.analyses import centroid_paths

    cells = {int(layer): _cells(ids, ctx) for layer, ids in job.params["layers"].items()}
    base = next(c for c in cells[max(cells)] if c.key.checkpoint == 0)
    if int((base.present() & base.retained()).sum()) < 3:
        return []  # Figure 3 needs three labels with clusters; a task with fewer has no paths
    return centroid_paths(cells)


def _centroid_shift(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.geometry.analyses import centroid_shift

    rows = []
    for ids in job.params["layers"].values():
        original, tuned = _cells(ids, ctx)
        rows += centroid_shift(original, tuned)
    return rows


def _models(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from transformers import AutoConfig, AutoModel

    from tuneprobe.encoders.load import resolve_model_dir
    from tuneprobe.geometry.analyses import model_rows

    _quiet_transformers(ctx)
    name = job.params["model"]
    path = resolve_model_dir(name)
    config = AutoConfig.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    n_parameters = sum(int(t.numel()) for t in model.parameters())
    return model_rows(name, config, n_parameters)


def _tasks(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    from tuneprobe.geometry.analyses import task_rows

    p = job.params
    sizes, n_labels = {}, {}
    for split in p["splits"]:
        sp = _load_split(canonical_json(p["reader"]), split, ctx.data_dir)
        sizes[split] = len(sp)
        n_labels[split] = len(sp.labels)
    return task_rows(p["task"], sizes, n_labels)


RUNNERS: dict[str, Callable[[Job, RunContext], list[dict[str, Any]]]] = {
    "finetune": _finetune,
    "extract": _extract,
    "directprobe": _directprobe,
    "probe": _probe,
    "train_test_similarity": _train_test_similarity,
    "similarity_to_original": _similarity_to_original,
    "outside_min_change": _outside_min_change,
    "centroid_paths": _centroid_paths,
    "centroid_shift": _centroid_shift,
    "models": _models,
    "tasks": _tasks,
}


def run_job(job: Job, ctx: RunContext) -> list[dict[str, Any]]:
    """Run one job and return its validated result rows (module docstring)."""
    return RUNNERS[job.kind](job, ctx)
