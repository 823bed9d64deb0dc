"""The paper's figures (PAPER.md section 7), drawn with matplotlib (Agg) from result rows, saved as PNG
and SVG.

Each function returns a :class:`~tuneprobe.report.document.Figure`; when the run has no rows for it, the
figure's ``missing`` says what it needs and no file is written. Line plots average seeds; PCA scatter plots
(Figures 3, 5, 7-10) use the smallest seed, because PCA coordinates of different runs do not share axes.
Runs over updates include checkpoint 0 (the original model's rows when the run has none of its own).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from tuneprobe.report.data import at_last_layer, finals, model_label, run_series, select
from tuneprobe.report.document import Figure

TASK_FIGURE: dict[str, int] = {"pos": 7, "dep": 8, "ps-fxn": 9, "ps-role": 10}
"""PAPER.md section 7: the appendix figure of each task's centroid shifts (Figures 7-10)."""


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig: object, out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``fig`` as ``out_dir/name.png`` and ``.svg`` (deterministic SVG ids, no dates); close it."""
    import matplotlib

    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
        fig.savefig(png, dpi=110, bbox_inches="tight", metadata={"Software": None})  # type: ignore[attr-defined]
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return png, svg


def _prefer_train(frame: pd.DataFrame) -> pd.DataFrame:
    """The train split's rows if there are any, else the first split's."""
    if frame.empty:
        return frame
    splits = sorted(frame["split"].unique())
    return frame[frame["split"] == ("train" if "train" in splits else splits[0])]


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.4)):
    plt = _pyplot()
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _self_runs(frame: pd.DataFrame, model: str) -> list[str]:
    """Tasks of ``model`` that have rows of a run tuned on the task itself (checkpoint > 0)."""
    f = select(frame, model=model)
    f = f[(f["tuned_on"] == f["task"]) & (f["checkpoint"] > 0)]
    return sorted(f["task"].unique())


# ------------------------------------------------------------------------------------------ Figures 2, 6


def outside_min_figure(
    df: pd.DataFrame,
    layers: dict[str, int],
    model: str,
    out_dir: Path,
    *,
    tasks: list[str] | None = None,
    figure: str = "6",
) -> Figure:
    """Figures 2/6: per-label ``outside_min`` over updates (train set, last layer, the run tuned on each
    task), for the 3 labels with the largest and the 3 with the smallest gain (final minus update 0)."""
    which = "PS-role and POS" if figure == "2" else "every task of the run"
    fig_id = f"fig{figure}_outside_min_{slug(model)}"
    title = f"Figure {figure}. Per-label minimum distance over updates, {model_label(model)} ({which})."
    rows = select(
        at_last_layer(df, layers),
        analysis="directprobe",
        control="real",
        split="train",
        metric=["outside_min", "is_linear"],
        model=model,
    )
    changes = select(df, analysis="outside_min_change", control="real", split="train", model=model)
    found = [t for t in _self_runs(rows, model) if tasks is None or t in tasks]
    series = {}
    for task in found:
        s = run_series(rows, model, task, task)
        om = select(s, metric="outside_min")
        om = om[om["label"] != ""].groupby(["checkpoint", "label"])["value"].mean().unstack("label")
        if len(om.index) >= 2 and 0 in om.index:
            lin = select(s, metric="is_linear").groupby("checkpoint")["value"].mean()
            series[task] = (om.sort_index(), lin)
    if not series:
        want = ", ".join(tasks) if tasks else "a task"
        return Figure(
            fig_id,
            title,
            missing=(
                f"`directprobe` outside_min rows of {model} at the last layer, train split, at checkpoint 0 "
                f"and at least one later checkpoint of a run tuned on {want}."
            ),
        )
    fig, axes = _grid(len(series), ncols=2, size=(5.5, 3.8))
    notes = []
    for ax, (task, (om, lin)) in zip(axes, series.items(), strict=True):
        gain = (om.iloc[-1] - om.loc[0]).dropna().sort_values()
        up, down = _extremes(changes, model, task, layers.get(model, -1))
        if not up:  # no outside_min_change rows: rank by the outside_min series itself
            up = list(gain.index[-3:][::-1])
            down = list(gain.index[:3])
        for lab in [*up, *(lab for lab in down if lab not in up)]:
            style = "-" if lab in up else "--"
            ax.plot(om.index, om[lab], style, marker="o", ms=3, label=f"{lab} ({gain.get(lab, np.nan):+.2f})")
        nonlin = [int(c) for c, v in lin.items() if v == 0]
        if nonlin:
            notes.append(f"{task}: not linearly separable at update(s) {', '.join(map(str, nonlin))}")
        ax.set_title(f"{task}, layer {layers.get(model)}")
        ax.set_xlabel("updates")
        ax.set_ylabel("outside_min")
        ax.legend(fontsize=7, title="gain: largest (—), smallest (--)", title_fontsize=7)
    fig.tight_layout()
    png, svg = save(fig, out_dir, fig_id)
    cap = (
        "Solid: the 3 labels with the largest gain (final minus update 0); dashed: the 3 with the "
        "smallest. Expected (F3): every label ends above its start; curves need not be monotone."
    )
    if notes:
        cap += " " + "; ".join(notes) + " (the label partition overlaps there)."
    return Figure(fig_id, title, cap, png, svg)


def _extremes(changes: pd.DataFrame, model: str, task: str, layer: int) -> tuple[list[str], list[str]]:
    """The 3 labels whose ``outside_min`` rose most / least in the run tuned on ``task`` (smallest seed), by
    :func:`tuneprobe.geometry.analyses.extreme_labels` on its ``outside_min_change`` rows."""
    from tuneprobe.geometry.analyses import extreme_labels

    rows = select(changes, tuned_on=task, task=task, layer=layer)
    if rows.empty:
        return [], []
    rows = select(rows, seed=int(rows["seed"].min()))
    return extreme_labels(rows.to_dict(orient="records"), 3)


def _explained(rows: pd.DataFrame) -> str:
    """`` (explained variance a, b)`` from one layer's whole-set ``explained_variance_1/2`` rows, else
    ``""``."""
    ev = select(rows, metric=["explained_variance_1", "explained_variance_2"], label="")
    ev = ev.groupby("metric")["value"].mean().tolist()
    return f" (explained variance {ev[0]:.2f}, {ev[1]:.2f})" if len(ev) == 2 else ""


# ---------------------------------------------------------------------------------------------- Figure 3


def centroid_paths_figure(df: pd.DataFrame, model: str, task: str, out_dir: Path) -> Figure:
    """Figure 3: 2-D PCA paths of the closest label triple's centroids over checkpoints, one panel per
    layer (the runner writes the first and the last)."""
    fig_id = f"fig3_centroid_paths_{slug(model)}_{slug(task)}"
    title = f"Figure 3. Centroid paths of the three closest labels, {task}, {model_label(model)}."
    rows = run_series(select(df, analysis="centroid_paths", control="real"), model, task, task)
    rows = _prefer_train(rows)
    if not rows.empty:
        rows = select(rows, seed=int(rows["seed"].min()))
    pts = rows[rows["label"] != ""]
    pts = pts[pts["metric"].isin(["pc1", "pc2"])]
    layer_list = sorted(pts["layer"].unique())
    if len(pts) == 0 or pts["checkpoint"].nunique() < 2:
        return Figure(
            fig_id,
            title,
            missing=(
                "`centroid_paths` rows (pc1, pc2 per label and checkpoint; explained_variance_1/2) of "
                f"{model} on {task}, tuned on {task}, for at least two checkpoints."
            ),
        )
    fig, axes = _grid(len(layer_list), ncols=2, size=(5.0, 4.2))
    for ax, layer in zip(axes, layer_list, strict=True):
        lay = select(rows, layer=layer)
        xy = select(lay, metric=["pc1", "pc2"])
        xy = xy[xy["label"] != ""].pivot_table(
            index=["label", "checkpoint"], columns="metric", values="value"
        )
        for lab, path in xy.groupby(level="label"):
            p = path.droplevel("label").sort_index()
            line = ax.plot(p["pc1"], p["pc2"], "-", marker=".", ms=4, label=lab)[0]
            ax.plot(p["pc1"].iloc[0], p["pc2"].iloc[0], "o", color=line.get_color(), ms=7, mfc="white")
            ax.plot(p["pc1"].iloc[-1], p["pc2"].iloc[-1], "s", color=line.get_color(), ms=6)
        ax.set_title(f"layer {layer}{_explained(lay)}")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.legend(fontsize=7)
    fig.tight_layout()
    png, svg = save(fig, out_dir, fig_id)
    cap = (
        "Open circle: update 0; square: the final update. Expected: in the last layer the three start close "
        "and move apart in different directions; in the first layer they follow nearly the same short path."
    )
    return Figure(fig_id, title, cap, png, svg)


# ---------------------------------------------------------------------------------------------- Figure 4


def similarity_figure(df: pd.DataFrame, model: str, out_dir: Path) -> Figure:
    """Figure 4: per-layer Pearson similarity of each checkpoint's distance vector to the original's, over
    updates, one panel per task (every other layer when the model has more than 6)."""
    fig_id = f"fig4_similarity_{slug(model)}"
    title = f"Figure 4. Similarity to the original layer during fine-tuning, {model_label(model)}."
    rows = select(df, analysis="similarity_to_original", metric="pearson", control="real", model=model)
    tasks = _self_runs(rows, model)
    panels = {}
    for task in tasks:
        s = _prefer_train(run_series(rows, model, task, task))
        piv = s.groupby(["checkpoint", "layer"])["value"].mean().unstack("layer").sort_index()
        if len(piv.index) >= 2:
            panels[task] = piv
    if not panels:
        return Figure(
            fig_id,
            title,
            missing=(
                f"`similarity_to_original` pearson rows of {model} for each layer over at least two "
                "checkpoints of "
                "a run tuned on the measured task."
            ),
        )
    fig, axes = _grid(len(panels), ncols=2, size=(5.0, 3.6))
    lowest = 1.0
    for ax, (task, piv) in zip(axes, panels.items(), strict=True):
        cols = list(piv.columns)
        if len(cols) > 6:
            cols = [c for c in cols if (c - cols[0]) % 2 == 0] + (
                [cols[-1]] if (cols[-1] - cols[0]) % 2 else []
            )
        for layer in cols:
            ax.plot(piv.index, piv[layer], marker=".", ms=4, label=f"layer {layer}")
        lowest = min(lowest, float(np.nanmin(piv.to_numpy())))
        ax.axhline(0.5, color="grey", ls=":", lw=1)
        ax.set_title(task)
        ax.set_xlabel("updates")
        ax.set_ylabel("Pearson to update 0")
        ax.legend(fontsize=7, ncol=2)
    for ax in axes:
        ax.set_ylim(min(0.0, lowest - 0.05), 1.05)
    fig.tight_layout()
    png, svg = save(fig, out_dir, fig_id)
    cap = "Dotted: 0.5. Expected (F5): low layers stay ≈1; higher layers drop more, but all stay above 0.5."
    return Figure(fig_id, title, cap, png, svg)


# ------------------------------------------------------------------------------------- Figures 5, 7-10


def centroid_shift_figure(
    df: pd.DataFrame,
    model: str,
    task: str,
    out_dir: Path,
    *,
    tuned_on: str | None = None,
    every_other: bool = False,
) -> Figure:
    """Figures 5 (``every_other``, POS) and 7-10 (all layers): per layer, the 2-D PCA of the labels' centroid
    difference vectors (tuned minus original), scattered with label names. ``tuned_on`` (default: the task
    itself) names the fine-tuning run; another task's run gives a supplementary figure (``S``)."""
    tuned_on = tuned_on or task
    own = tuned_on == task
    number = "5" if every_other else str(TASK_FIGURE.get(task, "S") if own else "S")
    run = "" if own else f"_tuned_{slug(tuned_on)}"
    fig_id = f"fig{slug(number)}_centroid_shift_{slug(model)}_{slug(task)}{run}"
    which = "every other layer" if every_other else "every layer"
    after = "fine-tuning" if own else f"fine-tuning on {tuned_on}"
    title = f"Figure {number}. Centroid shifts after {after}, {task}, {model_label(model)} ({which})."
    rows = select(df, analysis="centroid_shift", control="real", model=model, tuned_on=tuned_on, task=task)
    rows = _prefer_train(finals(rows, df))
    if not rows.empty:
        rows = select(rows, seed=int(rows["seed"].min()))
    xy = rows[(rows["label"] != "") & rows["metric"].isin(["pc1", "pc2"])]
    layer_list = sorted(xy["layer"].unique())
    if every_other and len(layer_list) > 2:
        layer_list = [la for la in layer_list if (la - layer_list[0]) % 2 == 1] or layer_list
    if not layer_list:
        return Figure(
            fig_id,
            title,
            missing=(
                f"`centroid_shift` rows (pc1, pc2 per label and layer) of {model} tuned on {tuned_on}, at "
                "the run's final checkpoint."
            ),
        )
    fig, axes = _grid(len(layer_list), ncols=4 if len(layer_list) > 4 else len(layer_list), size=(3.6, 3.3))
    for ax, layer in zip(axes, layer_list, strict=True):
        p = select(xy, layer=layer).pivot_table(index="label", columns="metric", values="value").dropna()
        ax.scatter(p["pc1"], p["pc2"], s=10)
        for lab, r in p.iterrows():
            ax.annotate(str(lab), (r["pc1"], r["pc2"]), fontsize=6, xytext=(2, 2), textcoords="offset points")
        ax.set_title(f"layer {layer}{_explained(select(rows, layer=layer))}", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    png, svg = save(fig, out_dir, fig_id)
    cap = (
        "Each point is one label's centroid difference (tuned minus original), projected on that layer's "
        "2-D PCA (centred, not whitened, so ranges compare across layers). Expected: low layers span a much "
        "smaller range and point along a few shared directions."
    )
    return Figure(fig_id, title, cap, png, svg)
