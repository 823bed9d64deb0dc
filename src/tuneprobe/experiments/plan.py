"""Grid expansion: an :class:`~tuneprobe.experiments.config.ExperimentConfig` -> jobs with explicit
dependencies.

Job kinds, in dependency order::

    finetune(model, tune task, seed)                          snapshots = loadable model directories
      -> extract(model ref, task, split, layers)              tuneprobe.extract into the representation store
        -> directprobe(model ref, task, split, layer, control)  one DirectProbeCell (RESULTS/cells/<id>.npz)
        -> probe(model ref, task, layer)                      the paper's MLP probe (train, test, dev)
          -> train_test_similarity, similarity_to_original, outside_min_change, centroid_paths,
             centroid_shift                                   cross-cell analyses (read saved cells only)
    models(model), tasks(task)                                Tables 1 and 6 (no dependencies)

A *model ref* is ``{"model", "tuned_on", "seed", "step", "finetune", "run"}``: the original model
(``tuned_on = ""``, ``seed = 0``, ``step = 0``, no fine-tuning job) or snapshot ``step`` of the fine-tuning
job ``finetune`` (whose run directory is ``RESULTS/<run>``). Checkpoint 0 is always the original model, so
every tuning task shares its jobs.

Job ids. A job's id is the first 16 hex digits of sha256 over its kind and its *inputs* (canonical JSON of
``params``): the model ref (which holds the fine-tuning job's id, itself a hash of the model name, task,
settings and seed), the task reader and split, the subsample, the layer and every option that changes the
result. Dependencies are not hashed, so adding a layer to an extraction (a new extract id) does not change the
ids of the cells that were already computed. Ids do not depend on the results directory, the device or the
order of the config's lists.

Planning reads each model's ``config.json`` (for the number of layers; a hub model must be in the local
Hugging Face cache or reachable) and each fine-tuned task's training split (sentences per epoch, hence the
snapshot schedule), so a configuration that cannot run fails here, before any work.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tuneprobe.errors import TuneprobeError
from tuneprobe.experiments.config import (
    Checkpoints,
    ConfigError,
    ExperimentConfig,
    Layers,
    TaskSpec,
)

PLAN_FORMAT = 1
JOB_KINDS = (
    "models",
    "tasks",
    "finetune",
    "extract",
    "directprobe",
    "probe",
    "train_test_similarity",
    "similarity_to_original",
    "outside_min_change",
    "centroid_paths",
    "centroid_shift",
)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace): what job ids hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class Resources:
    """What a job needs, for a scheduler: CPU cores, whether it can use a GPU, a memory estimate."""

    cpus: int = 1
    gpu: bool = False
    memory_mb: int = 1000


@dataclass(frozen=True)
class Job:
    """One unit of work: small, picklable, identified by a hash of its inputs.

    kind: one of :data:`JOB_KINDS`. name: a readable description. params_json: canonical JSON of the inputs
    (everything :func:`tuneprobe.experiments.execute.run_job` needs besides the run context). deps: ids of
    the jobs whose outputs this one reads. id: 16 hex digits of sha256(kind, params).
    """

    kind: str
    name: str
    params_json: str
    deps: tuple[str, ...]
    resources: Resources
    id: str

    @property
    def params(self) -> dict[str, Any]:
        """The inputs as a fresh dict."""
        return json.loads(self.params_json)


def make_job(
    kind: str, name: str, params: dict[str, Any], deps: Iterable[str] = (), resources: Resources | None = None
) -> Job:
    """A :class:`Job` with its id computed from ``kind`` and ``params``."""
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    text = canonical_json(params)
    digest = hashlib.sha256(canonical_json({"format": PLAN_FORMAT, "kind": kind, "params": params}).encode())
    return Job(kind, name, text, tuple(sorted(set(deps))), resources or Resources(), digest.hexdigest()[:16])


@dataclass
class Plan:
    """The jobs of a config in dependency order (every job after the jobs it depends on)."""

    config: ExperimentConfig
    jobs: list[Job]
    n_layers: dict[str, int]
    snapshot_steps: dict[str, list[int]]  # finetune job id -> snapshot schedule

    @cached_property
    def by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}

    def counts(self) -> dict[str, int]:
        """Number of jobs per kind, in :data:`JOB_KINDS` order."""
        out = {k: 0 for k in JOB_KINDS}
        for j in self.jobs:
            out[j.kind] += 1
        return {k: v for k, v in out.items() if v}


# ------------------------------------------------------------------------------------------------------------
# what planning needs to know about models and tasks
def model_layers(model: str) -> int:
    """Number of transformer layers L of ``model`` from its ``config.json`` (no weights loaded)."""
    from tuneprobe.encoders.extract import _model_dims_from_dir
    from tuneprobe.encoders.load import resolve_model_dir

    return _model_dims_from_dir(resolve_model_dir(model))[0]


def load_task(spec: TaskSpec, data_dir: str | None) -> Any:
    """The ``tuneprobe.tasks.Task`` of a task spec."""
    from tuneprobe.tasks import get_task

    return get_task(spec.name, data_dir=data_dir, corpus=spec.corpus, **dict(spec.options))


def training_sentences(spec: TaskSpec, data_dir: str | None) -> int:
    """Sentences holding at least one training example (the fine-tuning batch unit)."""
    split = load_task(spec, data_dir).load("train")
    return len({e.sentence for e in split.examples})


def safe_name(text: str) -> str:
    """``text`` with path-unsafe characters replaced (for directory names)."""
    name = Path(text.rstrip("/")).name or text
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


# ------------------------------------------------------------------------------------------------------------
# selections
def resolve_checkpoints(sel: Checkpoints, steps: Sequence[int], where: str, source: str) -> list[int]:
    """Update counts selected by ``all`` / ``ends`` / ``final`` / a list, out of the schedule ``steps``."""
    if sel == "all":
        return list(steps)
    if sel == "ends":
        return sorted({steps[0], steps[-1]})
    if sel == "final":
        return [steps[-1]]
    missing = [s for s in sel if s not in steps]
    if missing:
        raise ConfigError(
            source,
            where,
            f"update(s) {', '.join(map(str, missing))} are not snapshots of the schedule "
            f"({', '.join(map(str, steps))})",
        )
    return list(sel)


def resolve_layer_list(sel: Layers, n_layers: int, where: str, source: str) -> list[int]:
    """Hidden-state indices selected by ``all`` (1..L) / ``last`` / a list (negative from the end)."""
    if sel == "all":
        return list(range(1, n_layers + 1))
    if sel == "last":
        return [n_layers]
    out = []
    for x in sel:
        k = x + n_layers + 1 if x < 0 else x
        if not 0 <= k <= n_layers:
            raise ConfigError(source, where, f"layer {x}: the model has hidden states 0..{n_layers}")
        out.append(k)
    return sorted(set(out))


# ------------------------------------------------------------------------------------------------------------
# expansion
@dataclass(frozen=True)
class _Cell:
    model: str
    tuned_on: str
    seed: int
    step: int
    task: str
    split: str
    layer: int
    control: str


def build_plan(config: ExperimentConfig) -> Plan:
    """Expand ``config`` into jobs (module docstring). Raises ConfigError / TuneprobeError early (unknown
    model, offline hub, missing data, a checkpoint or layer outside the schedule)."""
    src = config.source
    data_dir = config.data_dir

    n_layers: dict[str, int] = {}
    for i, model in enumerate(config.models):
        try:
            n_layers[model] = model_layers(model)
        except TuneprobeError as exc:
            raise ConfigError(
                src, f"run.models[{i}]", f"model {model!r} cannot be used here: {exc}"
            ) from None

    tasks = {t.id: t for t in config.tasks}
    available: dict[str, list[str]] = {}
    for i, spec in enumerate(config.tasks):
        try:
            available[spec.id] = load_task(spec, data_dir).split_names()
        except TuneprobeError as exc:
            raise ConfigError(src, f"tasks[{i}]", f"task {spec.name!r} cannot be read: {exc}") from None
        missing = [s for s in spec.splits if s not in available[spec.id]]
        if missing:
            raise ConfigError(
                src,
                f"tasks[{i}].splits",
                f"task {spec.name!r} has no split(s) {', '.join(missing)} "
                f"(it has {', '.join(available[spec.id])})",
            )

    jobs: dict[str, Job] = {}

    def add(job: Job) -> Job:
        jobs.setdefault(job.id, job)
        return job

    ext = config.extract.options()

    # -- fine-tuning ---------------------------------------------------------------------------------------
    finetune_jobs: dict[tuple[str, str, int], Job] = {}
    steps_of: dict[tuple[str, str], list[int]] = {}
    for model in config.models:
        for spec in config.tasks:
            if not spec.finetune:
                continue
            cfg = config.finetune_config(seed=0)
            settings = {k: v for k, v in cfg.to_dict().items() if k not in ("seed", "device", "extra")}
            n_sent = training_sentences(spec, data_dir)
            per_epoch = math.ceil(n_sent / cfg.batch_size)
            total = cfg.max_steps or cfg.resolved_epochs(n_layers[model]) * per_epoch
            from tuneprobe.finetune.config import parse_snapshots

            steps_of[(model, spec.id)] = parse_snapshots(cfg.snapshots, total)
            for seed in config.seeds:
                params = {
                    "model": model,
                    "task": spec.id,
                    "reader": spec.reader(),
                    "seed": seed,
                    "settings": settings,
                    "total_steps": total,
                    "snapshot_steps": steps_of[(model, spec.id)],
                }
                job = make_job(
                    "finetune",
                    f"finetune {model} on {spec.id} seed {seed} ({total} updates)",
                    params,
                    resources=Resources(cpus=1, gpu=True, memory_mb=4000),
                )
                finetune_jobs[(model, spec.id, seed)] = add(job)

    def ref(model: str, tuned_on: str, seed: int, step: int) -> dict[str, Any]:
        if step == 0 or not tuned_on:
            return {"model": model, "tuned_on": "", "seed": 0, "step": 0, "finetune": None, "run": None}
        ft = finetune_jobs[(model, tuned_on, seed)]
        return {
            "model": model,
            "tuned_on": tuned_on,
            "seed": seed,
            "step": step,
            "finetune": ft.id,
            "run": finetune_run_dir(ft),
        }

    # -- the cells and probes the config asks for ----------------------------------------------------------
    cells: set[_Cell] = set()
    probes: set[tuple[str, str, int, int, str, int]] = set()  # model, tuned_on, seed, step, task, layer

    def series(model: str, tuned_on: str, measured: str) -> list[tuple[str, int, list[int]]]:
        """(tuned_on, seed, schedule) of the runs whose snapshots are measured; the original model only when
        nothing is tuned on ``tuned_on``."""
        if tuned_on and tasks[tuned_on].finetune:
            return [(tuned_on, seed, steps_of[(model, tuned_on)]) for seed in config.seeds]
        return [("", 0, [0])]

    def selected(
        where: str,
        task_ids: Iterable[str],
        tuned: Iterable[str] | None,
        checkpoints: Checkpoints,
        layers: Layers,
    ) -> Iterator[tuple[str, str, int, int, str, int]]:
        """(model, tuned_on, seed, step, task, layer) of a selection; step 0 is the original model."""
        for model in config.models:
            for tid in task_ids:
                for tuned_on in tuned if tuned is not None else [tid]:
                    for t_on, seed, schedule in series(model, tuned_on, tid):
                        if t_on:
                            picked = resolve_checkpoints(checkpoints, schedule, f"{where}.checkpoints", src)
                        else:
                            picked = [0] if checkpoints in ("all", "ends") or 0 in checkpoints else []
                        for step in picked:
                            for layer in resolve_layer_list(layers, n_layers[model], f"{where}.layers", src):
                                yield model, t_on if step else "", seed if step else 0, step, tid, layer

    def expand(
        where: str,
        task_ids: Iterable[str],
        tuned: Iterable[str] | None,
        checkpoints: Checkpoints,
        layers: Layers,
        splits: Sequence[str] | None,
        random_control: bool,
    ) -> None:
        for model, t_on, seed, step, tid, layer in selected(where, task_ids, tuned, checkpoints, layers):
            for split in splits or tasks[tid].splits:
                if split not in tasks[tid].splits:
                    raise ConfigError(src, f"{where}.splits", f"task {tid!r} does not measure {split!r}")
                for control in ("real", "random") if random_control else ("real",):
                    cells.add(_Cell(model, t_on, seed, step, tid, split, layer, control))

    for i, scope in enumerate(config.directprobe.cells):
        expand(
            f"directprobe.cells[{i}]",
            scope.tasks or list(tasks),
            None,
            scope.checkpoints,
            scope.layers,
            scope.splits,
            scope.random_control,
        )
    for i, item in enumerate(config.cross_task):
        expand(
            f"cross_task[{i}]",
            [item.task],
            item.tuned_on,
            item.checkpoints,
            item.layers,
            item.splits,
            item.random_control,
        )
        # the original model's cells of the measured task are the base of every change
        expand(f"cross_task[{i}]", [item.task], [""], "ends", item.layers, item.splits, item.random_control)

    def add_probes(where: str, task_ids, tuned, checkpoints, layers) -> None:  # type: ignore[no-untyped-def]
        probes.update(selected(where, task_ids, tuned, checkpoints, layers))

    if config.probe.enabled:
        p = config.probe
        add_probes("probe", p.tasks or list(tasks), None, p.checkpoints, p.layers)
        for i, item in enumerate(config.cross_task):
            if item.probe:
                add_probes(f"cross_task[{i}]", [item.task], item.tuned_on, item.checkpoints, item.layers)
                add_probes(f"cross_task[{i}]", [item.task], [""], "ends", item.layers)

    # -- extraction: one job per (ref, task, split) with the union of the layers its consumers read --------
    def data(tid: str, split: str) -> dict[str, Any]:
        spec = tasks[tid]
        cap = spec.cap(split)
        return {
            "task": tid,
            "reader": spec.reader(),
            "split": split,
            "max_examples": cap,
            "subsample_seed": config.subsample_seed if cap else None,
            "extract": ext,
        }

    probe_splits: dict[str, list[str]] = {}
    for tid in tasks:
        sel = ["train", "test"]
        if config.probe.selection == "dev" and "dev" in available[tid]:
            sel.append("dev")
        probe_splits[tid] = sel
    needs: dict[tuple[str, str, int, int, str, str], set[int]] = defaultdict(set)
    predict = config.directprobe.predict
    for c in cells:
        needs[(c.model, c.tuned_on, c.seed, c.step, c.task, c.split)].add(c.layer)
        if predict and c.split == "train" and c.control == "real" and "test" in tasks[c.task].splits:
            needs[(c.model, c.tuned_on, c.seed, c.step, c.task, "test")].add(c.layer)
    for model, t_on, seed, step, tid, layer in probes:
        for split in probe_splits[tid]:
            needs[(model, t_on, seed, step, tid, split)].add(layer)

    extract_jobs: dict[tuple[str, str, int, int, str, str], Job] = {}
    for key in sorted(needs, key=repr):
        model, t_on, seed, step, tid, split = key
        r = ref(model, t_on, seed, step)
        layers = sorted(needs[key])
        job = make_job(
            "extract",
            f"extract {_ref_name(r)} {tid} {split} layers {_layers_name(layers)}",
            {"ref": r, "data": data(tid, split), "layers": layers},
            deps=[r["finetune"]] if r["finetune"] else [],
            resources=Resources(cpus=1, gpu=True, memory_mb=2000),
        )
        extract_jobs[key] = add(job)

    # -- DirectProbe cells ---------------------------------------------------------------------------------
    dp = config.directprobe
    cell_jobs: dict[_Cell, Job] = {}
    for c in sorted(cells, key=repr):
        r = ref(c.model, c.tuned_on, c.seed, c.step)
        dkey = (c.model, c.tuned_on, c.seed, c.step, c.task)
        deps = [extract_jobs[(*dkey, c.split)].id]
        params: dict[str, Any] = {
            "ref": r,
            "data": data(c.task, c.split),
            "layer": c.layer,
            "control": c.control,
            "min_cluster_size": dp.min_cluster_size,
            "predict": None,
        }
        if c.control == "random":
            params["control_seed"] = dp.control_seed
        if predict and c.split == "train" and c.control == "real" and "test" in tasks[c.task].splits:
            params["predict"] = data(c.task, "test")
            deps.append(extract_jobs[(*dkey, "test")].id)
        job = make_job(
            "directprobe",
            f"directprobe {_ref_name(r)} {c.task} {c.split} layer {c.layer} {c.control}",
            params,
            deps=deps,
            resources=Resources(cpus=1, memory_mb=2000),
        )
        cell_jobs[c] = add(job)

    # -- probes --------------------------------------------------------------------------------------------
    options = config.probe.search_options()
    if config.probe.workers is not None:  # changes float rounding only; hashed only when set
        options["workers"] = config.probe.workers
    for model, t_on, seed, step, tid, layer in sorted(probes, key=repr):
        r = ref(model, t_on, seed, step)
        splits = {s: data(tid, s) for s in probe_splits[tid]}
        job = make_job(
            "probe",
            f"probe {_ref_name(r)} {tid} layer {layer}",
            {"ref": r, "splits": splits, "layer": layer, "options": options},
            deps=[extract_jobs[(model, t_on, seed, step, tid, s)].id for s in splits],
            resources=Resources(cpus=config.probe.workers or 1, gpu=True, memory_mb=2000),
        )
        add(job)

    # -- cross-cell analyses -------------------------------------------------------------------------------
    an = config.analyses

    def cell_ids(cs: Iterable[_Cell]) -> list[str]:
        return [cell_jobs[c].id for c in cs]

    if an.train_test_similarity:
        for c in sorted(cells, key=repr):
            if c.split != "train":
                continue
            other = _Cell(c.model, c.tuned_on, c.seed, c.step, c.task, "test", c.layer, c.control)
            if other in cells:
                ids = cell_ids([c, other])
                add(
                    make_job(
                        "train_test_similarity",
                        f"train/test similarity {_cell_name(c)}",
                        {"train": ids[0], "test": ids[1]},
                        deps=ids,
                    )
                )

    # series: the tuned cells of one (model, tuned_on, seed, task, split, layer, control), with their base
    groups: dict[tuple, list[_Cell]] = defaultdict(list)
    for c in cells:
        if c.step > 0:
            groups[(c.model, c.tuned_on, c.seed, c.task, c.split, c.layer, c.control)].append(c)
    bases: dict[tuple, _Cell] = {}
    for key in sorted(groups, key=repr):
        model, _t, _s, tid, split, layer, control = key
        base = _Cell(model, "", 0, 0, tid, split, layer, control)
        if base in cells:
            bases[key] = base
            groups[key].sort(key=lambda c: c.step)
    for key in sorted(bases, key=repr):
        series_cells = [bases[key], *groups[key]]
        ids = cell_ids(series_cells)
        label = _cell_name(groups[key][0], step=False)
        if an.similarity_to_original:
            add(make_job("similarity_to_original", f"similarity to original {label}", {"cells": ids}, ids))
        if an.outside_min_change:
            add(
                make_job(
                    "outside_min_change",
                    f"outside_min change {label}",
                    {"base": ids[0], "cells": ids[1:]},
                    ids,
                )
            )

    # per (model, tuned_on, seed, task, split, control): centroid paths over layers, centroid shift per layer
    by_run: dict[tuple, dict[int, list[_Cell]]] = defaultdict(dict)
    for key in bases:
        model, t_on, seed, tid, split, layer, control = key
        by_run[(model, t_on, seed, tid, split, control)][layer] = [bases[key], *groups[key]]
    for rkey in sorted(by_run, key=repr):
        model, t_on, seed, tid, split, control = rkey
        per_layer = by_run[rkey]
        final = steps_of[(model, t_on)][-1]
        name = f"{model} tuned on {t_on} seed {seed}: {tid} {split} {control}"
        if an.centroid_paths:
            want = resolve_layer_list(
                an.centroid_paths_layers, n_layers[model], "analyses.centroid_paths_layers", src
            )
            if all(layer in per_layer for layer in want):
                common = set.intersection(*({c.step for c in per_layer[layer]} for layer in want))
                if len(common) >= 2:
                    layers_ids = {
                        str(layer): cell_ids([c for c in per_layer[layer] if c.step in common])
                        for layer in want
                    }
                    deps = [i for ids in layers_ids.values() for i in ids]
                    add(make_job("centroid_paths", f"centroid paths {name}", {"layers": layers_ids}, deps))
        if an.centroid_shift:
            pairs = {
                str(layer): cell_ids([cs[0], next(c for c in cs if c.step == final)])
                for layer, cs in sorted(per_layer.items())
                if any(c.step == final for c in cs)
            }
            if pairs:
                deps = [i for ids in pairs.values() for i in ids]
                add(make_job("centroid_shift", f"centroid shift {name}", {"layers": pairs}, deps))

    # -- Tables 1 and 6 ------------------------------------------------------------------------------------
    head: list[Job] = []
    if an.models_table:
        for model in config.models:
            head.append(make_job("models", f"models table {model}", {"model": model}))
    if an.tasks_table:
        for tid, spec in tasks.items():
            head.append(
                make_job(
                    "tasks",
                    f"tasks table {tid}",
                    {"task": tid, "reader": spec.reader(), "splits": available[tid]},
                )
            )
    ordered = head + list(jobs.values())
    _check_order(ordered)
    return Plan(
        config=config,
        jobs=ordered,
        n_layers=n_layers,
        snapshot_steps={finetune_jobs[k].id: steps_of[k[:2]] for k in finetune_jobs},
    )


def finetune_run_dir(job: Job) -> str:
    """The run directory of a fine-tuning job, relative to the results directory."""
    p = job.params
    return f"finetune/{safe_name(p['model'])}-{safe_name(p['task'])}-seed{p['seed']}-{job.id[:8]}"


def _check_order(jobs: Sequence[Job]) -> None:
    seen: set[str] = set()
    for j in jobs:
        missing = [d for d in j.deps if d not in seen]
        if missing:
            raise AssertionError(f"job {j.name} is planned before its dependencies {missing}")
        seen.add(j.id)


def _ref_name(r: dict[str, Any]) -> str:
    if not r["tuned_on"]:
        return f"{r['model']}"
    return f"{r['model']}[{r['tuned_on']} s{r['seed']} @{r['step']}]"


def _cell_name(c: _Cell, step: bool = True) -> str:
    who = (
        c.model if not c.tuned_on else f"{c.model}[{c.tuned_on} s{c.seed}" + (f" @{c.step}]" if step else "]")
    )
    return f"{who} {c.task} {c.split} layer {c.layer} {c.control}"


def _layers_name(layers: Sequence[int]) -> str:
    if len(layers) > 2 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))
