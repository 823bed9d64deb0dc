"""The paper's probe on a task's cached representations: ``probe_task(task, model, snapshot, layer)``.

Train, dev (when the task has one) and test vectors of one layer come from :func:`tuneprobe.extract` (the
representation store computes each (weights, layer) matrix once and caches it), then :class:`ProbeSearch`
runs the grid, selection and refits, and the result becomes tidy rows
(:data:`tuneprobe.experiments.results.ROW_COLUMNS`, analysis ``probe``).

Which weights (:func:`resolve_model`):

- ``model`` alone: ``"default"``, a model directory or hub id (``tuned_on=""``, ``checkpoint=0``), or a
  fine-tuning snapshot directory (``tuned_on``, ``checkpoint`` and the base model's name from its
  ``tuneprobe_snapshot.json``);
- ``snapshot`` as an update count (or ``last``) with ``model`` a fine-tuning run directory: that run's
  snapshot (:func:`tuneprobe.finetune.snapshot.snapshot_path`);
- ``snapshot`` as a directory: a snapshot directory, or a run directory (its newest snapshot).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneprobe.errors import TuneprobeError

#: ``tuneprobe.finetune.snapshot.SNAPSHOT_JSON`` (not imported: that module loads torch and safetensors)
_SNAPSHOT_JSON = "tuneprobe_snapshot.json"


@dataclass(frozen=True)
class ModelRef:
    """Weights to probe: ``source`` (what :func:`tuneprobe.extract` loads) and the row fields ``model`` (the
    base model's name), ``tuned_on`` (``""`` for an original model), ``checkpoint`` (updates) and ``seed``."""

    source: str
    model: str
    tuned_on: str = ""
    checkpoint: int = 0
    seed: int = 0  # the fine-tuning seed (0 for an original model)


def _from_snapshot(path: Path) -> ModelRef:
    meta = json.loads((path / _SNAPSHOT_JSON).read_text())
    return ModelRef(
        source=str(path),
        model=str(meta.get("model", path.name)),
        tuned_on=str(meta.get("task", "")),
        checkpoint=int(meta.get("step", 0)),
        seed=int(meta.get("seed", 0)),
    )


def _is_run_dir(path: Path) -> bool:
    return (path / "snapshots").is_dir()


def resolve_model(model: str, snapshot: str | int | None = None) -> ModelRef:
    """Resolve ``model`` / ``snapshot`` (module docstring) to a :class:`ModelRef`.

    Raises TuneprobeError for a run directory without ``snapshot``, a step the run does not have, or a
    ``snapshot`` path that is neither a snapshot nor a run directory.
    """
    from tuneprobe.finetune.snapshot import snapshot_path

    if snapshot is None:
        p = Path(model).expanduser()
        if (p / _SNAPSHOT_JSON).is_file():
            return _from_snapshot(p)
        if _is_run_dir(p):
            raise TuneprobeError(
                f"{model} is a fine-tuning run directory; pick a snapshot with --snapshot STEP (or 'last')"
            )
        return ModelRef(source=model, model=model)
    text = str(snapshot).strip()
    if text.lstrip("-").isdigit() or text == "last":
        run = Path(model).expanduser()
        if not _is_run_dir(run):
            raise TuneprobeError(
                f"--snapshot {text}: --model must be a fine-tuning run directory (with snapshots/), "
                f"got {model!r}"
            )
        return _from_snapshot(snapshot_path(run, -1 if text == "last" else int(text)))
    p = Path(text).expanduser()
    if (p / _SNAPSHOT_JSON).is_file():
        return _from_snapshot(p)
    if _is_run_dir(p):
        return _from_snapshot(snapshot_path(p, -1))
    raise TuneprobeError(f"--snapshot {text}: not a snapshot directory, a run directory or an update count")


@dataclass
class TaskProbe:
    """Outcome of :func:`probe_task`: the search result, its tidy rows, the probed layer and the weights."""

    result: Any  # ProbeSearchResult
    rows: list[dict[str, Any]]
    layer: int
    ref: ModelRef
    splits: dict[str, int]  # examples per split used
    extract_seconds: float


def probe_task(
    task: str,
    model: str = "default",
    snapshot: str | int | None = None,
    layer: int | None = None,
    *,
    corpus: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    pooling: str = "mean",
    sentence_pooling: str = "cls",
    extract_device: str = "auto",
    batch_size: int = 64,
    task_options: dict[str, Any] | None = None,
    extract_progress: bool = True,
    log: Callable[[str], None] | None = None,
    **search_options: Any,
) -> TaskProbe:
    """Extract hidden-state ``layer`` (default: the last) of ``task``'s train / dev / test examples from the
    weights ``model`` / ``snapshot`` name (:func:`resolve_model`), run :class:`ProbeSearch`
    (``search_options``: its fields, e.g. ``device``, ``configs``, ``seeds``), return a :class:`TaskProbe`.

    Selection uses the dev split when the task has one, else a stratified hold-out of train.
    ``extract_progress``: extraction progress bars; ``log`` gets one line per split (cached or extracted).
    """
    import time

    from tuneprobe.encoders.extract import extract
    from tuneprobe.probes.search import probe_representations
    from tuneprobe.tasks import get_task

    ref = resolve_model(model, snapshot)
    opts = dict(task_options or {})
    t = get_task(task, data_dir=data_dir, corpus=corpus, **opts)
    names = t.split_names()
    for need in ("train", "test"):
        if need not in names:
            raise TuneprobeError(f"task {task} has no {need} split (has: {', '.join(names)})")
    want = [-1 if layer is None else int(layer)]
    reps = {}
    t0 = time.perf_counter()
    for split in ("train", "dev", "test"):
        if split not in names:
            continue
        rep = extract(
            t,
            model=ref.source,
            split=split,
            layers=want,
            pooling=pooling,
            sentence_pooling=sentence_pooling,
            device=extract_device,
            batch_size=batch_size,
            cache_dir=cache_dir,
            progress=extract_progress,
        )
        reps[split] = rep
        if log is not None:
            how = "cached" if rep.meta.get("from_cache") else "extracted"
            log(f"{split}: {rep.n_examples} examples x {rep.X.shape[-1]}, layer {rep.layers[0]} ({how})")
    extract_s = time.perf_counter() - t0
    used = int(reps["train"].layers[0])
    result, rows = probe_representations(
        reps["train"],
        reps["test"],
        layer=used,
        dev=reps.get("dev"),
        model=ref.model,
        tuned_on=ref.tuned_on,
        checkpoint=ref.checkpoint,
        seed=ref.seed,
        **search_options,
    )
    for r in rows:
        r["task"] = task
    return TaskProbe(
        result=result,
        rows=rows,
        layer=used,
        ref=ref,
        splits={k: int(v.n_examples) for k, v in reps.items()},
        extract_seconds=extract_s,
    )
