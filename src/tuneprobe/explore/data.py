"""The explorer's inputs, read from a finished ``tuneprobe run`` results directory.

A *series* is what one page shows: one task, one split, one model fine-tuned on one task with one seed,
at every snapshot and layer that has a DirectProbe cell (``control = "real"``). Snapshot 0 is the
pre-trained model (its cells have ``tuned_on = ""``). For each cell the representations are re-obtained
exactly as the runner obtained them (:func:`tuneprobe.experiments.execute.representations`, a cache hit),
so the rows line up with the cell's per-point clusters; the examples (sentences, units) come from the same
``Split`` (:func:`tuneprobe.experiments.execute.load_split`, with the run's subsample).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuneprobe.errors import TuneprobeError
from tuneprobe.geometry.cells import DirectProbeCell


@dataclass
class SnapshotLayer:
    """One (snapshot, layer): X float32 ``[n, dim]`` (rows: the series' examples) and its DirectProbe
    cell."""

    X: np.ndarray
    cell: DirectProbeCell


@dataclass
class HeldOut:
    """The examples of a held-out split shown beside the series (the split its cells predict).

    split: its name. y: int64 ``[m]`` gold label ids into the series' labels (-1: a label the fitted split
    lacks). example_ids, sentences, sentence, units: as in :class:`Series`. X: ``(step, layer) ->`` float32
    ``[m, dim]``.
    """

    split: str
    y: np.ndarray
    example_ids: list[str]
    sentences: list[tuple[str, ...]]
    sentence: np.ndarray
    units: list[tuple[int, ...]]
    X: dict[tuple[int, int], np.ndarray]


@dataclass
class Series:
    """Everything one explorer page shows.

    labels: label vocabulary (label id -> name). y: int64 ``[n]`` gold label ids. example_ids: ``[n]``.
    sentences: the split's sentences (tuples of words). sentence: int64 ``[n]`` index into ``sentences``
    of every example. units: ``[n]`` word indices of each example's unit (``()`` = the whole sentence).
    steps: snapshot steps (sorted); layers: hidden-state indices (sorted). cells: ``(step, layer) ->``
    :class:`SnapshotLayer` (a missing pair has no cell).
    """

    task: str
    split: str
    model: str
    tuned_on: str
    seed: int
    labels: list[str]
    y: np.ndarray
    example_ids: list[str]
    sentences: list[tuple[str, ...]]
    sentence: np.ndarray
    units: list[tuple[int, ...]]
    steps: list[int]
    layers: list[int]
    cells: dict[tuple[int, int], SnapshotLayer]
    meta: dict[str, Any] = field(default_factory=dict)
    held_out: HeldOut | None = None

    @property
    def n(self) -> int:
        return len(self.y)


def _directprobe_jobs(results: Path) -> list[dict[str, Any]]:
    """``{"id", "params"}`` of every finished real-label directprobe job of the results directory's plan."""
    plan_path = results / "plan.json"
    if not plan_path.exists():
        raise TuneprobeError(f"{results}: no plan.json (not a `tuneprobe run` results directory)")
    plan = json.loads(plan_path.read_text())
    out = []
    for job in plan["jobs"]:
        if job["kind"] != "directprobe":
            continue
        meta = results / "jobs" / f"{job['id']}.json"
        cell = results / "cells" / f"{job['id']}.npz"
        if not (meta.exists() and cell.exists()):
            continue  # not finished
        params = json.loads(meta.read_text())["params"]
        if params["control"] == "real":
            out.append({"id": job["id"], "params": params})
    return out


def available(results_dir: str | Path) -> list[dict[str, Any]]:
    """The series a results directory can show: dicts with task, split, model, tuned_on, seed, n_cells
    (pre-trained cells counted in every series of their model), most cells first."""
    jobs = _directprobe_jobs(Path(results_dir))
    series: dict[tuple[str, str, str, str, int], int] = {}
    for j in jobs:
        p = j["params"]
        r = p["ref"]
        if r["tuned_on"]:
            key = (p["data"]["task"], p["data"]["split"], r["model"], r["tuned_on"], r["seed"])
            series[key] = series.get(key, 0) + 1
    for j in jobs:
        p = j["params"]
        r = p["ref"]
        if not r["tuned_on"]:
            hits = [k for k in series if k[:3] == (p["data"]["task"], p["data"]["split"], r["model"])]
            for k in hits:
                series[k] += 1
            if not hits:
                key = (p["data"]["task"], p["data"]["split"], r["model"], "", r["seed"])
                series[key] = series.get(key, 0) + 1
    rows = [
        dict(task=k[0], split=k[1], model=k[2], tuned_on=k[3], seed=k[4], n_cells=v)
        for k, v in series.items()
    ]
    return sorted(rows, key=lambda r: (-r["n_cells"], r["task"] != r["tuned_on"], r["task"], r["model"]))


def choose_series(
    results_dir: str | Path,
    task: str | None = None,
    model: str | None = None,
    split: str | None = None,
    tuned_on: str | None = None,
) -> dict[str, Any]:
    """The series :func:`load_series` shows for these choices: among the matching series, the one with the
    most cells, preferring a model tuned on the task itself."""
    rows = available(results_dir)
    want = {"task": task, "model": model, "split": split, "tuned_on": tuned_on}
    hits = [r for r in rows if all(v is None or r[k] == v for k, v in want.items())]
    if not hits:
        asked = {k: v for k, v in want.items() if v is not None}
        have = sorted({(r["task"], r["split"], r["model"], r["tuned_on"]) for r in rows})
        raise TuneprobeError(
            f"{results_dir}: no DirectProbe cells for {asked}; have (task, split, model, tuned_on): {have}"
        )
    return hits[0]


def load_series(
    results_dir: str | Path,
    task: str | None = None,
    model: str | None = None,
    split: str | None = None,
    tuned_on: str | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    held_out: bool = True,
) -> Series:
    """The :class:`Series` of a results directory (:func:`choose_series` picks it).

    data_dir / cache_dir: default to the run's config (``run.json``), then to the environment. Raises
    ``TuneprobeError`` when the cells and the representations disagree (the cache changed since the run).
    held_out: also load the split the cells predict (``[directprobe] predict = true``), at every cell.
    """
    from tuneprobe.experiments.config import parse_config
    from tuneprobe.experiments.execute import RunContext, load_split, representations

    results = Path(results_dir)
    pick = choose_series(results, task, model, split, tuned_on)
    run_json = results / "run.json"
    if run_json.exists():
        conf = json.loads(run_json.read_text())["config"]
        cfg = parse_config(conf["toml"], source=conf.get("source", str(run_json)))
        data_dir = data_dir or cfg.data_dir
        cache_dir = cache_dir or cfg.cache_dir
    ctx = RunContext(results=str(results), data_dir=data_dir, cache_dir=cache_dir, device=device)

    jobs = []
    for j in _directprobe_jobs(results):
        p = j["params"]
        r = p["ref"]
        if (p["data"]["task"], p["data"]["split"], r["model"]) != (
            pick["task"],
            pick["split"],
            pick["model"],
        ):
            continue
        if r["tuned_on"] == pick["tuned_on"] and r["seed"] == pick["seed"] or not r["tuned_on"]:
            jobs.append(j)
    data = jobs[0]["params"]["data"]
    sp = load_split(data, data_dir)
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for j in jobs:
        by_ref.setdefault(json.dumps(j["params"]["ref"], sort_keys=True), []).append(j)
    cells: dict[tuple[int, int], SnapshotLayer] = {}
    labels: list[str] | None = None
    pdata = next((j["params"]["predict"] for j in jobs if j["params"].get("predict")), None)
    pdata = pdata if held_out and all(j["params"].get("predict") == pdata for j in jobs) else None
    held_X: dict[tuple[int, int], np.ndarray] = {}
    ids = [e.id for e in sp.examples]
    for ref_json, group in by_ref.items():
        ref = json.loads(ref_json)
        layers = sorted({j["params"]["layer"] for j in group})
        if log:
            log(f"{pick['task']}: representations of step {ref['step']}, layers {layers}")
        reps = representations(ref, data, layers, ctx)
        if list(reps.example_ids) != ids:
            raise TuneprobeError(f"representations of {ref} do not match the examples of {pick['task']}")
        for j in group:
            cell = DirectProbeCell.load(results / "cells" / f"{j['id']}.npz")
            layer = j["params"]["layer"]
            X = np.asarray(reps.layer(layer), dtype=np.float32)
            if cell.n_points != len(X) or list(cell.labels) != list(reps.labels):
                raise TuneprobeError(f"cell {j['id']} does not match its representations (cache changed?)")
            labels = list(reps.labels)
            cells[(int(ref["step"]), int(layer))] = SnapshotLayer(X, cell)
        if pdata is not None:
            test = representations(ref, pdata, layers, ctx)
            for layer in layers:
                held_X[(int(ref["step"]), int(layer))] = np.asarray(test.layer(layer), dtype=np.float32)
    assert labels is not None
    vocab = {name: i for i, name in enumerate(labels)}
    held = None
    if pdata is not None:
        tsp = load_split(pdata, data_dir)
        held = HeldOut(
            split=pdata["split"],
            y=np.array([vocab.get(e.label, -1) for e in tsp.examples], dtype=np.int64),
            example_ids=[e.id for e in tsp.examples],
            sentences=list(tsp.sentences),
            sentence=np.array([e.sentence for e in tsp.examples], dtype=np.int64),
            units=[tuple(e.unit) for e in tsp.examples],
            X=held_X,
        )
    return Series(
        task=pick["task"],
        split=pick["split"],
        model=pick["model"],
        tuned_on=pick["tuned_on"],
        seed=int(pick["seed"]),
        labels=labels,
        y=np.array([vocab[e.label] for e in sp.examples], dtype=np.int64),
        example_ids=ids,
        sentences=list(sp.sentences),
        sentence=np.array([e.sentence for e in sp.examples], dtype=np.int64),
        units=[tuple(e.unit) for e in sp.examples],
        steps=sorted({s for s, _ in cells}),
        layers=sorted({la for _, la in cells}),
        cells=cells,
        meta={"results": str(results), "unit_kind": sp.unit_kind, "subsample": sp.options.get("subsample")},
        held_out=held,
    )
