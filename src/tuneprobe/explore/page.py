"""The explorer page: one self-contained HTML file (plotly.js from the ``plotly`` package, the app script
``explorer.js`` and the data as one JSON object; no network access).

Data encoding (compact): 2-D coordinates are quantised to 16 bits over each array's range (``lo``, ``hi``;
value = lo + (q + 32768) / 65535 * (hi - lo)) and stored as base64 little-endian int16; per-point clusters as
base64 int32; distances rounded to 4 significant digits (``null`` = undefined); Mapper node members as row
lists. Row indices everywhere index the shown rows (``rows``, see :func:`tuneprobe.explore.views.shown_rows`).
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tuneprobe.explore.data import Series
from tuneprobe.explore.views import (
    MapperParams,
    held_out_predictions,
    held_rows,
    mapper_graph,
    projections,
    shown_rows,
    umap_available,
    umap_projections,
)

#: categorical colours (Tableau 10 + 10 lighter ones), cycled for more labels
PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
]  # fmt: skip


def _q16(a: np.ndarray) -> dict[str, Any]:
    """float ``[n, 2]`` -> ``{"lo", "hi", "b64"}`` (module docstring); NaN rows -> the minimum."""
    a = np.asarray(a, dtype=np.float64)
    finite = a[np.isfinite(a)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    span = hi - lo if hi > lo else 1.0
    q = np.round((np.nan_to_num(a, nan=lo) - lo) / span * 65535) - 32768
    b = np.clip(q, -32768, 32767).astype("<i2").tobytes()
    return {"lo": lo, "hi": lo + span, "b64": base64.b64encode(b).decode("ascii")}


def _b64_i32(a: np.ndarray) -> str:
    return base64.b64encode(np.asarray(a, dtype="<i4").tobytes()).decode("ascii")


def _num(v: float) -> float | None:
    return None if not math.isfinite(v) else float(f"{v:.4g}")


def _shown(n_shown: int, n: int, split: str, seed: int) -> str:
    if n_shown == n:
        return f"all {n} {split} examples"
    return (
        f"a stratified subsample of {n_shown} of {n} {split} examples (seed {seed}; every label keeps its "
        "share, at least one example)"
    )


def payload(
    series: Series,
    max_points: int = 5000,
    seed: int = 0,
    mapper: MapperParams = MapperParams(),
    log: Callable[[str], None] | None = None,
    umap: bool = False,
) -> dict[str, Any]:
    """The JSON object the page embeds (module docstring). Runs with one BLAS/OpenMP thread: the
    matrices are small (PCA of ``[n, d]``, many small DBSCAN fits) and extra threads only spin-wait.
    umap: also a UMAP projection of every cell (:func:`tuneprobe.explore.views.umap_projections`) when
    ``umap-learn`` is installed; without it the page says so and offers PCA only."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _payload(series, max_points, seed, mapper, log, umap)


def _payload(
    series: Series,
    max_points: int,
    seed: int,
    mapper: MapperParams,
    log: Callable[[str], None] | None,
    umap: bool = False,
) -> dict[str, Any]:
    rows = shown_rows(series, max_points, seed)
    h = series.held_out
    hrows = np.zeros(0, dtype=np.int64) if h is None else held_rows(h, max_points, seed)
    proj = projections(series, rows)
    if umap and umap_available():
        if log:
            log(f"{series.task}: UMAP of {len(series.cells)} cells")
        for k, v in umap_projections(series, rows, proj, seed).items():
            proj[k].update(v)
        umap_note = f"UMAP: umap-learn, n_neighbors 15, min_dist 0.1, seed {seed}, PCA-initialised."
    elif umap:
        umap_note = (
            "UMAP was asked for but umap-learn is not installed (pip install 'tuneprobe[umap]'): PCA only."
        )
    else:
        umap_note = "UMAP: not computed for this page (tuneprobe explore --umap, needs umap-learn)."
    held_pred = held_out_predictions(series)
    cells: dict[str, Any] = {}
    for (step, layer), sl in sorted(series.cells.items()):
        c = sl.cell
        p = proj[(step, layer)]
        g = mapper_graph(np.asarray(sl.X[rows], dtype=np.float32), p["fixed"], mapper)
        cells[f"{step}|{layer}"] = {
            "fixed": _q16(p["fixed"]),
            "own": _q16(p["own"]),
            "cent_fixed": [[_num(v) for v in r] for r in p["centroids_fixed"]],
            "cent_own": [[_num(v) for v in r] for r in p["centroids_own"]],
            "clusters": _b64_i32(np.asarray(c.clusters)[rows]),
            "dist": [[_num(v) for v in r] for r in np.asarray(c.label_distance)],
            "outside_min": [_num(v) for v in np.asarray(c.outside_min)],
            "n_clusters": int(c.n_clusters),
            "is_linear": bool(c.is_linear),
            "nodes": [m.tolist() for m in g["nodes"]],
            "links": [list(e) for e in g["links"]],
            "eps": _num(g["eps"]),
        }
        if "held_fixed" in p:
            cells[f"{step}|{layer}"].update(
                held_fixed=_q16(p["held_fixed"][hrows]),
                held_own=_q16(p["held_own"][hrows]),
                held_pred=held_pred[(step, layer)][hrows].tolist(),
            )
        if "umap" in p:
            cells[f"{step}|{layer}"].update(
                umap=_q16(p["umap"]), cent_umap=[[_num(v) for v in r] for r in p["centroids_umap"]]
            )
            if "held_umap" in p:
                cells[f"{step}|{layer}"]["held_umap"] = _q16(p["held_umap"][hrows])
        if log:
            log(f"{series.task}: step {step} layer {layer}: {len(g['nodes'])} Mapper nodes")
    used = sorted({int(series.sentence[i]) for i in rows})
    sent_index = {s: k for k, s in enumerate(used)}
    sentences = [list(series.sentences[s]) for s in used]
    held = None
    if h is not None:
        h_used = sorted({int(h.sentence[j]) for j in hrows})
        h_index = {s: len(sentences) + k for k, s in enumerate(h_used)}
        held = {
            "split": h.split,
            "id": [h.example_ids[j] for j in hrows],
            "s": [h_index[int(h.sentence[j])] for j in hrows],
            "u": [list(h.units[j]) for j in hrows],
            "y": [int(h.y[j]) for j in hrows],
        }
        sentences += [list(h.sentences[s]) for s in h_used]
    n_total = series.n
    rule = _shown(len(rows), n_total, series.split, seed)
    if h is not None:
        rule += f"; {_shown(len(hrows), len(h.y), h.split, seed)} with nearest-hull predictions"
    return {
        "task": series.task,
        "split": series.split,
        "model": series.model,
        "tuned_on": series.tuned_on,
        "seed": series.seed,
        "labels": series.labels,
        "colors": [PALETTE[i % len(PALETTE)] for i in range(len(series.labels))],
        "steps": series.steps,
        "layers": series.layers,
        "rule": rule,
        "umap_note": umap_note,
        "mapper": {
            "n_cubes": mapper.n_cubes,
            "overlap": mapper.overlap,
            "min_samples": mapper.min_samples,
            "eps_scale": mapper.eps_scale,
        },
        "ex": {
            "id": [series.example_ids[i] for i in rows],
            "s": [sent_index[int(series.sentence[i])] for i in rows],
            "u": [list(series.units[i]) for i in rows],
            "y": [int(series.y[i]) for i in rows],
        },
        "held": held,
        "sentences": sentences,
        "cells": cells,
    }


def build_page(data: dict[str, Any]) -> str:
    """The HTML text of the page for a :func:`payload`."""
    from plotly.offline import get_plotlyjs

    app = resources.files("tuneprobe.explore").joinpath("explorer.js").read_text(encoding="utf-8")
    style = resources.files("tuneprobe.explore").joinpath("explorer.css").read_text(encoding="utf-8")
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    title = html.escape(f"tuneprobe explorer: {data['task']} ({data['split']}, {data['model']})")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{style}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<script id='explorer-data' type='application/json'>{blob}</script>"
        f"<div id='app'></div><script>{app}</script></body></html>\n"
    )


def write_explorer(
    series: Series,
    out: str | Path,
    max_points: int = 5000,
    seed: int = 0,
    mapper: MapperParams = MapperParams(),
    log: Callable[[str], None] | None = None,
    umap: bool = False,
) -> dict[str, Any]:
    """Write the page of ``series`` to ``out``; returns ``{"path", "bytes", "seconds", "n_points"}``."""
    t0 = time.perf_counter()
    data = payload(series, max_points, seed, mapper, log, umap)
    text = build_page(data)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return {
        "path": path,
        "bytes": path.stat().st_size,
        "seconds": time.perf_counter() - t0,
        "n_points": len(data["ex"]["id"]),
    }
