"""The paper's tables (PAPER.md section 7) and the random-label control table, drawn from result rows.

Each function takes the results frame (:func:`tuneprobe.report.data.load_results`) and returns a
:class:`~tuneprobe.report.document.Table` whose ``data`` holds the raw numbers (written as CSV) and whose
``display`` holds the formatted cells; when the run has no rows for it, ``missing`` says what it needs.
Original = checkpoint 0; tuned = the final checkpoint of the run tuned on the measured task itself; last
layer = the model's ``n_layers`` (see :mod:`tuneprobe.report.data`). Seeds are averaged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from tuneprobe.report.data import (
    PAPER_MODELS,
    at_last_layer,
    cover_threshold,
    final_checkpoints,
    finals,
    hidden_sizes,
    mean_over_seeds,
    originals,
    select,
)
from tuneprobe.report.document import Table, fmt, fmt_pm

_LOOKUP_KEYS = ["model", "tuned_on", "task", "split", "analysis", "metric", "label", "label_b", "control"]


class Lookup:
    """Seed-averaged values of a frame, looked up by key columns (missing keys give NaN)."""

    def __init__(self, frame: pd.DataFrame, keys: Iterable[str] = _LOOKUP_KEYS) -> None:
        self.keys = list(keys)
        m = mean_over_seeds(frame, self.keys)
        self._v: dict[tuple, tuple[float, float, int]] = {
            tuple(r[k] for k in self.keys): (float(r["value"]), float(r["std"]), int(r["n_seeds"]))
            for r in m.to_dict(orient="records")
        }

    def get(self, **key: Any) -> float:
        return self.full(**key)[0]

    def full(self, **key: Any) -> tuple[float, float, int]:
        """(mean over seeds, population std over seeds, number of seeds); NaNs and 0 when absent."""
        defaults = {"tuned_on": "", "split": "", "label": "", "label_b": "", "control": "real"}
        k = tuple(key.get(c, defaults.get(c, "")) for c in self.keys)
        return self._v.get(k, (float("nan"), float("nan"), 0))


def _endpoints(df: pd.DataFrame, part: pd.DataFrame) -> tuple[Lookup, Lookup]:
    """Lookups of ``part``'s original rows and of its tuned rows (final checkpoints of ``df``'s runs)."""
    return Lookup(originals(part)), Lookup(finals(part, df))


def _cells(*frames: pd.DataFrame, tuned_self: bool = True) -> list[tuple[str, str]]:
    """Sorted (model, task) pairs present in the frames (tuned rows only where tuned on the task itself)."""
    cells: set[tuple[str, str]] = set()
    for f in frames:
        if tuned_self:
            f = f[(f["tuned_on"] == "") | (f["tuned_on"] == f["task"]) | (f["checkpoint"] == 0)]
        cells.update(zip(f["model"].astype(str), f["task"].astype(str), strict=True))
    return sorted(c for c in cells if c[1])


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records)


# ---------------------------------------------------------------------------------------------- Table 1


def models_table(df: pd.DataFrame) -> Table:
    """Table 1: L, H, heads and parameter count of each model (``models`` rows)."""
    t = Table(
        "table1_models",
        "Table 1. Models.",
        "L layers, H hidden size, attention heads and the parameter count of the loaded weights.",
    )
    rows = select(df, analysis="models", control="real")
    if rows.empty:
        t.missing = "`models` rows (n_layers, hidden_size, n_heads, n_parameters), written once per model."
        return t
    look = Lookup(rows)
    data, disp = [], []
    for model in sorted(rows["model"].unique()):
        vals = {m: look.get(model=model, analysis="models", metric=m) for m in _MODEL_METRICS}
        data.append({"model": model, "paper_name": PAPER_MODELS.get(model, ""), **vals})
        disp.append(
            {
                "model": model,
                "paper name": PAPER_MODELS.get(model, "–"),
                "L": fmt(vals["n_layers"]),
                "H": fmt(vals["hidden_size"]),
                "heads": fmt(vals["n_heads"]),
                "parameters": _count(vals["n_parameters"]),
            }
        )
    t.data, t.display = _frame(data), _frame(disp)
    return t


_MODEL_METRICS = ("n_layers", "hidden_size", "n_heads", "n_parameters")


def _count(n: float) -> str:
    """A parameter count: ``22.7M`` from 100,000 up, else the exact number."""
    if np.isnan(n):
        return "–"
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{int(n):,}"


# ---------------------------------------------------------------------------------------------- Table 6

_SPLIT_ORDER = {"train": 0, "dev": 1, "test": 2}


def tasks_table(df: pd.DataFrame) -> Table:
    """Table 6: #labels and #examples of each task and split (``tasks`` rows)."""
    t = Table("table6_tasks", "Table 6. Task statistics.", "Labels and examples per split.")
    rows = select(df, analysis="tasks", control="real")
    if rows.empty:
        t.missing = "`tasks` rows (n_labels, n_examples per split), written once per task."
        return t
    look = Lookup(rows)
    splits = sorted((s for s in rows["split"].unique() if s), key=lambda s: (_SPLIT_ORDER.get(s, 9), s))
    data, disp = [], []
    for task in sorted(rows["task"].unique()):
        d: dict[str, Any] = {"task": task}
        shown: dict[str, str] = {"task": task}
        for s in splits:
            d[f"n_labels_{s}"] = look.get(task=task, split=s, analysis="tasks", metric="n_labels")
            d[f"n_examples_{s}"] = look.get(task=task, split=s, analysis="tasks", metric="n_examples")
        for s in splits:
            shown[f"#labels {s}"] = fmt(d[f"n_labels_{s}"])
        for s in splits:
            shown[f"#{s}"] = fmt(d[f"n_examples_{s}"])
        data.append(d)
        disp.append(shown)
    t.data, t.display = _frame(data), _frame(disp)
    return t


# ------------------------------------------------------------------------------------------ Tables 2, 7


def probing_table(df: pd.DataFrame, layers: dict[str, int], *, only_model: str | None = None) -> Table:
    """Tables 7 (every model) and 2 (``only_model``): MLP accuracy and train/test similarity, original vs
    tuned, last layer."""
    if only_model is None:
        t = Table(
            "table7_probing",
            "Table 7. Probing results, original vs tuned (last layer).",
            "MLP probe test accuracy in percent (mean ± population std over refit seeds), its best (h1, h2), "
            "and the train/test spatial similarity (Pearson of the DirectProbe distance vectors of train and "
            "of test), filled only where both splits are linearly separable; it uses the labels present and "
            "retained in both splits (their number: shared labels).",
        )
    else:
        name = PAPER_MODELS.get(only_model, only_model)
        t = Table(
            "table2_probing_small",
            f"Table 2. Probing results of {name} (Table 7's {name} rows).",
            "As Table 7.",
        )
    part = select(at_last_layer(df, layers), analysis=["probe", "train_test_similarity"], control="real")
    if only_model is not None:
        part = select(part, model=only_model)
    if part.empty:
        need = f"model {only_model} ({PAPER_MODELS.get(only_model, '')}); " if only_model else ""
        t.missing = (
            f"{need}`probe` rows (split test: accuracy_mean, accuracy_std) and `train_test_similarity` rows "
            "(pearson, n_pairs, linear) at the last layer, for the original model and the model tuned on "
            "the task."
        )
        return t
    orig, tuned = _endpoints(df, part)
    data, disp = [], []
    for model, task in _cells(part):
        o = _probe_cell(orig, model, "", task)
        u = _probe_cell(tuned, model, task, task)
        data.append(
            {
                "model": model,
                "task": task,
                "layer": layers.get(model, -1),
                **_prefix(o, "original"),
                **_prefix(u, "tuned"),
            }
        )
        fell = "–"
        if np.isfinite(o["similarity"]) and np.isfinite(u["similarity"]):
            fell = "yes" if u["similarity"] < o["similarity"] else "no"
        disp.append(
            {
                "model": model,
                "task": task,
                "layer": layers.get(model, -1),
                "MLP acc. original": fmt_pm(o["accuracy_mean"], o["accuracy_std"]),
                "MLP acc. tuned": fmt_pm(u["accuracy_mean"], u["accuracy_std"]),
                "(h1, h2) original": _shape(o),
                "(h1, h2) tuned": _shape(u),
                "similarity original": _similarity(o),
                "similarity tuned": _similarity(u),
                "similarity fell": fell,
                "shared labels (orig. / tuned)": f"{fmt(o['n_labels_shared'])} / {fmt(u['n_labels_shared'])}",
                "label pairs (orig. / tuned)": f"{fmt(o['n_pairs'])} / {fmt(u['n_pairs'])}",
            }
        )
    t.data, t.display = _frame(data), _frame(disp)
    seeds = max((r["n_seeds_tuned"] for r in data), default=0)
    if seeds > 1:
        t.notes.append(
            f"Tuned values are means over up to {seeds} fine-tuning seeds (`n_seeds_tuned` in the CSV); ± is "
            "the mean refit std, the std of the seeds' means is `accuracy_seed_std_tuned`."
        )
    if any(np.nansum([r["n_unseen_original"], r["n_unseen_tuned"]]) > 0 for r in data):
        t.notes.append("Test labels unseen in train count as errors (`n_unseen` in the CSV).")
    return t


def _probe_cell(look: Lookup, model: str, tuned_on: str, task: str) -> dict[str, float]:
    k = {"model": model, "tuned_on": tuned_on, "task": task}
    sim = {"split": "train|test", "analysis": "train_test_similarity"}
    return {
        "accuracy_mean": look.get(**k, split="test", analysis="probe", metric="accuracy_mean"),
        "accuracy_std": look.get(**k, split="test", analysis="probe", metric="accuracy_std"),
        "n_unseen": look.get(**k, split="test", analysis="probe", metric="n_unseen"),
        "best_h1": look.get(**k, analysis="probe", metric="best_h1"),
        "best_h2": look.get(**k, analysis="probe", metric="best_h2"),
        "best_shape_varies": float(
            any(look.full(**k, analysis="probe", metric=m)[1] > 0 for m in ("best_h1", "best_h2"))
        ),
        "similarity": look.get(**k, **sim, metric="pearson"),
        "n_pairs": look.get(**k, **sim, metric="n_pairs"),
        "n_labels_shared": look.get(**k, **sim, metric="n_labels"),
        "linear": look.get(**k, **sim, metric="linear"),
        "accuracy_seed_std": look.full(**k, split="test", analysis="probe", metric="accuracy_mean")[1],
        "n_seeds": look.full(**k, split="test", analysis="probe", metric="accuracy_mean")[2],
    }


def _prefix(d: dict[str, float], stage: str) -> dict[str, float]:
    return {f"{k}_{stage}": v for k, v in d.items()}


def _shape(c: dict[str, float]) -> str:
    if np.isnan(c["best_h1"]):
        return "–"
    if c["best_shape_varies"]:
        return "varies by seed"
    return f"({fmt(c['best_h1'])}, {fmt(c['best_h2'])})"


def _similarity(c: dict[str, float]) -> str:
    if np.isfinite(c["similarity"]):
        return fmt(c["similarity"], 3)
    if c["linear"] == 0:
        return "non-linear"
    return "–"


# ------------------------------------------------------------------------------------------ Tables 3, 4


def clusters_table(df: pd.DataFrame, layers: dict[str, int], *, task: str | None = None) -> Table:
    """Tables 3 (every task) and 4 (``task="trec50"``): DirectProbe #clusters on the train set, last layer,
    original vs tuned, against #labels, with the random-label control's #clusters beside each."""
    if task is None:
        t = Table(
            "table3_clusters",
            "Table 3. DirectProbe clusters before and after fine-tuning (train set, last layer).",
            "#clusters = #labels means linearly separable. The paper shows BERT_tiny only; every model of "
            "the run is listed. Random: the same data with labels permuted within the split.",
        )
    else:
        t = Table(
            f"table4_clusters_{task}",
            f"Table 4. {task} clusters (train set, last layer).",
            "Expected (F2): fewer clusters after tuning, but still more than #labels.",
        )
    part = select(at_last_layer(df, layers), analysis="directprobe", split="train")
    part = select(part, metric=["n_clusters", "n_labels", "is_linear", "n_points"])
    if task is not None:
        part = select(part, task=task)
    if part.empty:
        t.missing = (
            f"`directprobe` rows (n_clusters, n_labels) of {task or 'each task'}'s train split at the last "
            "layer, original and tuned."
        )
        return t
    orig, tuned = _endpoints(df, part)
    data, disp = [], []
    for model, tk in _cells(part):
        row: dict[str, Any] = {"model": model, "task": tk, "layer": layers.get(model, -1)}
        for stage, look, tuned_on in (("original", orig, ""), ("tuned", tuned, tk)):
            for control in ("real", "random"):
                for m in ("n_clusters", "n_labels", "is_linear"):
                    key = {"model": model, "tuned_on": tuned_on, "task": tk, "split": "train"}
                    row[f"{m}_{stage}_{control}"] = look.get(
                        **key, analysis="directprobe", metric=m, control=control
                    )
        n_labels = row["n_labels_original_real"]
        if np.isnan(n_labels):
            n_labels = row["n_labels_tuned_real"]
        row["n_labels"] = n_labels
        row["n_points"] = orig.get(
            model=model, tuned_on="", task=tk, split="train", analysis="directprobe", metric="n_points",
            control="real",
        )  # fmt: skip
        data.append(row)
        co, ct = row["n_clusters_original_real"], row["n_clusters_tuned_real"]
        disp.append(
            {
                "model": model,
                "task": tk,
                "#points": fmt(row["n_points"]),
                "#labels": fmt(n_labels),
                "#clusters original": fmt(co),
                "#clusters tuned": fmt(ct),
                "change": fmt(ct - co) if np.isfinite(ct - co) else "–",
                "original > #labels": _yes(co > n_labels) if np.isfinite(co) else "–",
                "tuned > #labels": _yes(ct > n_labels) if np.isfinite(ct) else "–",
                "random original": fmt(row["n_clusters_original_random"], 1),
                "random tuned": fmt(row["n_clusters_tuned_random"], 1),
            }
        )
    t.data, t.display = _frame(data), _frame(disp)
    return t


def _yes(b: bool) -> str:
    return "yes" if b else "no"


# ---------------------------------------------------------------------------------------------- Table 5


def cross_task_table(df: pd.DataFrame, layers: dict[str, int]) -> Table:
    """Table 5: a task measured after tuning on other tasks (train set, last layer): labels whose
    ``outside_min`` rose / fell, the mean change, linearity, and MLP accuracy."""
    t = Table(
        "table5_cross_task",
        "Table 5. Cross-task effect (train set, last layer).",
        "Each row measures the target task's train data under a model tuned on another task (or on the "
        "target itself): labels whose `outside_min` rose / fell relative to the original, the mean change "
        "(also divided by the original mean `inside_mean`, and under the random-label control), whether "
        "the target stays linearly separable, and the MLP probe's test accuracy.",
    )
    last = at_last_layer(df, layers)
    change = select(last, analysis="outside_min_change", split="train", control="real")
    tuned_change = finals(change, df)
    cross = tuned_change[tuned_change["tuned_on"] != tuned_change["task"]]
    if cross.empty:
        t.missing = (
            "`outside_min_change` rows of a task measured under a model tuned on another task (e.g. ps-fxn "
            "after tuning on ps-role and on pos), train split, last layer; plus `probe` rows of those "
            "models on the target task for the accuracy column."
        )
        return t
    probe = select(last, analysis="probe", split="test", metric="accuracy_mean", control="real")
    dp = select(last, analysis="directprobe", split="train", metric="is_linear", control="real")
    orig_probe, tuned_probe = _endpoints(df, probe)
    tuned_dp = Lookup(finals(dp, df))
    orig_dp = Lookup(originals(dp))
    random_change = Lookup(
        finals(select(last, analysis="outside_min_change", split="train", control="random"), df)
    )
    data, disp = [], []
    for (model, target), _ in cross.groupby(["model", "task"]):
        acc0 = orig_probe.get(
            model=model, task=target, split="test", analysis="probe", metric="accuracy_mean"
        )
        lin0 = orig_dp.get(
            model=model, task=target, split="train", analysis="directprobe", metric="is_linear"
        )
        data.append({"model": model, "target": target, "tuned_on": "", "accuracy": acc0, "linear": lin0})
        disp.append(
            {
                "model": model,
                "target": target,
                "tuned on": "(none)",
                "labels up": "–",
                "labels down": "–",
                "mean change": "–",
                "mean scaled change": "–",
                "mean change, random labels": "–",
                "linear": _lin(lin0),
                "accuracy": fmt_pm(acc0, np.nan),
            }
        )
        runs = select(tuned_change, model=model, task=target)
        order = sorted(runs["tuned_on"].unique(), key=lambda u: (u != target, u))
        for u in order:
            r = select(runs, tuned_on=u)
            per_label = select(r, metric="change")
            per_label = per_label[per_label["label"] != ""]
            scaled = select(r, metric="change_scaled")
            scaled = scaled[scaled["label"] != ""]
            look = Lookup(r)
            key = {
                "model": model,
                "tuned_on": u,
                "task": target,
                "split": "train",
                "analysis": "outside_min_change",
            }
            up = look.get(**key, metric="labels_up")
            down = look.get(**key, metric="labels_down")
            mean = look.get(**key, metric="mean_change")
            by_label = per_label.groupby("label")["value"].mean()
            if np.isnan(up) and len(by_label):
                up = float((by_label > 0).sum())
            if np.isnan(down) and len(by_label):
                down = float((by_label < 0).sum())
            if np.isnan(mean) and len(by_label):
                mean = float(by_label.mean())
            mean_scaled = look.get(**key, metric="mean_change_scaled")
            if np.isnan(mean_scaled) and len(scaled):
                mean_scaled = float(scaled.groupby("label")["value"].mean().mean())
            acc = tuned_probe.get(
                model=model, tuned_on=u, task=target, split="test", analysis="probe", metric="accuracy_mean"
            )
            lin = tuned_dp.get(
                model=model,
                tuned_on=u,
                task=target,
                split="train",
                analysis="directprobe",
                metric="is_linear",
            )
            mean_random = random_change.get(**key, metric="mean_change", control="random")
            n = look.get(**key, metric="n_labels")
            if np.isnan(n) and len(by_label):
                n = float(by_label.notna().sum())
            data.append(
                {
                    "model": model,
                    "target": target,
                    "tuned_on": u,
                    "labels_up": up,
                    "labels_down": down,
                    "n_labels": n,
                    "mean_change": mean,
                    "mean_change_scaled": mean_scaled,
                    "mean_change_random": mean_random,
                    "linear": lin,
                    "accuracy": acc,
                }
            )
            disp.append(
                {
                    "model": model,
                    "target": target,
                    "tuned on": u + (" (itself)" if u == target else ""),
                    "labels up": _of(up, n),
                    "labels down": _of(down, n),
                    "mean change": fmt(mean, 3),
                    "mean scaled change": fmt(mean_scaled, 3),
                    "mean change, random labels": fmt(mean_random, 3),
                    "linear": _lin(lin),
                    "accuracy": fmt_pm(acc, np.nan),
                }
            )
    t.data, t.display = _frame(data), _frame(disp)
    return t


def _of(k: float, n: float) -> str:
    return fmt(k) if np.isnan(n) else f"{fmt(k)} of {fmt(n)}"


def _lin(v: float) -> str:
    return "–" if np.isnan(v) else _yes(v == 1)


# --------------------------------------------------------------------------------- random-label control


def control_table(df: pd.DataFrame) -> Table:
    """Every DirectProbe cell that has a random-label control: the real and the random statistic side by
    side, with the Cover threshold d+1 (PAPER.md section 8) and the label pairs at or below it."""
    t = Table(
        "control_random_labels",
        "Random-label control (PAPER.md section 8).",
        "Each DirectProbe cell beside the same data with labels permuted within the split (label counts "
        "kept; mean over permutation seeds). d+1 is the Cover threshold (d = H, 2H for dep pairs): up to "
        "d+1 points in general position are separable under any labelling, so a cell with #points ≤ d+1 is "
        "separable by construction. 'pairs ≤ d+1' counts label pairs with n_i + n_j ≤ d+1, whose "
        "separation is guaranteed. Shown: checkpoint 0 and each run's final checkpoint; every cell is in "
        "the CSV.",
    )
    dp = select(df, analysis="directprobe")
    random = dp[dp["control"] == "random"]
    if random.empty:
        t.missing = (
            "`directprobe` rows with control `random` (labels permuted within the split) beside the "
            "real ones."
        )
        return t
    hidden = hidden_sizes(df)
    cell_keys = ["model", "tuned_on", "checkpoint", "layer", "task", "split"]
    finals_ = {(r.model, r.tuned_on, r.final) for r in final_checkpoints(df).itertuples()}
    data, disp = [], []
    cells = random[cell_keys].drop_duplicates().sort_values(cell_keys)
    dp_by_cell = {k: g for k, g in dp.groupby(cell_keys)}
    for cell in cells.itertuples(index=False):
        g = dp_by_cell[tuple(cell)]
        stats = {c: _dp_stats(g[g["control"] == c]) for c in ("real", "random")}
        real = g[g["control"] == "real"]
        dim = stats["real"]["dim"]
        d1 = dim + 1 if np.isfinite(dim) else cover_threshold(hidden.get(cell.model), cell.task)
        below = real[(real["metric"] == "below_cover") & (real["label"] != "")]
        if len(below):
            pair_flags = below.groupby(["label", "label_b"])["value"].mean()
            small_pairs, n_pairs = float((pair_flags == 1).sum()), len(pair_flags)
        else:  # from the label sizes: a pair with n_i + n_j <= d+1 is separable under any labelling
            n_lab = real[(real["metric"] == "n_points_label") & (real["label"] != "")]
            counts = n_lab.groupby("label")["value"].mean()
            counts = counts[counts > 0].to_numpy()
            iu = np.triu_indices(len(counts), k=1)
            pair_sums = counts[iu[0]] + counts[iu[1]]
            small_pairs = float((pair_sums <= d1).sum()) if np.isfinite(d1) else np.nan
            n_pairs = len(pair_sums)
        row = dict(zip(cell_keys, cell, strict=True))
        row.update({"cover_threshold": d1, "pairs_below_cover": small_pairs, "n_pairs": float(n_pairs)})
        for c, s in stats.items():
            row.update({f"{k}_{c}": v for k, v in s.items()})
        data.append(row)
        if cell.checkpoint != 0 and (cell.model, cell.tuned_on, cell.checkpoint) not in finals_:
            continue
        r, z = stats["real"], stats["random"]
        n_pts = r["n_points"]
        disp.append(
            {
                "model": cell.model,
                "tuned on": cell.tuned_on or "–",
                "ckpt": cell.checkpoint,
                "layer": cell.layer,
                "task": cell.task,
                "split": cell.split,
                "#points": fmt(n_pts),
                "d+1": fmt(d1),
                "#points ≤ d+1": _yes(n_pts <= d1) if np.isfinite(d1) and np.isfinite(n_pts) else "–",
                "eff. dim": fmt(r["effective_dimension"]),
                "#labels": fmt(r["n_labels"]),
                "#clusters real / random": f"{fmt(r['n_clusters'])} / {fmt(z['n_clusters'], 1)}",
                "linear real / random": f"{_lin(r['is_linear'])} / {_frac(z['is_linear'])}",
                "mean distance real / random": f"{fmt(r['mean_distance'], 3)} / {fmt(z['mean_distance'], 3)}",
                "mean outside_min real / random": (
                    f"{fmt(r['mean_outside_min'], 3)} / {fmt(z['mean_outside_min'], 3)}"
                ),
                "pairs ≤ d+1": f"{fmt(small_pairs)} of {n_pairs}" if np.isfinite(small_pairs) else "–",
            }
        )
    t.data, t.display = _frame(data), _frame(disp)
    if np.isnan([r["cover_threshold"] for r in data]).any():
        t.notes.append("d+1 is '–' where the cell has no `dim` row and the run no Table 1 hidden_size.")
    return t


def _frac(v: float) -> str:
    """A seed-averaged 0/1 flag: yes / no, or the fraction of permutations that were linear."""
    if np.isnan(v):
        return "–"
    if v in (0.0, 1.0):
        return _yes(v == 1)
    return f"{v:.2f}"


def _dp_stats(g: pd.DataFrame) -> dict[str, float]:
    """Whole-set DirectProbe statistics of one cell (seeds averaged): counts, linearity, mean label-pair
    distance, mean and min ``outside_min``."""

    def whole(metric: str) -> float:
        r = g[(g["metric"] == metric) & (g["label"] == "")]["value"]
        return float(r.mean()) if r.notna().any() else np.nan

    def per_seed(metric: str, how: str) -> float:
        r = g[(g["metric"] == metric) & (g["label"] != "")]
        if r.empty or r["value"].isna().all():
            return np.nan
        return float(r.groupby("seed")["value"].agg(how).mean())

    return {
        "n_points": whole("n_points"),
        "n_labels": whole("n_labels"),
        "n_clusters": whole("n_clusters"),
        "is_linear": whole("is_linear"),
        "effective_dimension": whole("effective_dimension"),
        "dim": whole("dim"),
        "mean_distance": per_seed("distance", "mean"),
        "mean_outside_min": per_seed("outside_min", "mean"),
        "min_outside_min": per_seed("outside_min", "min"),
    }


# ------------------------------------------------------------------------------- DirectProbe prediction


def prediction_table(df: pd.DataFrame, layers: dict[str, int]) -> Table:
    """The optional NAACL check (PAPER.md section 7): nearest-hull (intra-) accuracy vs 1-NN accuracy of the
    train clustering on another split, beside the MLP probe, last layer, original and tuned."""
    t = Table(
        "prediction_directprobe",
        "DirectProbe prediction (the NAACL check; last layer).",
        "Accuracy in percent of predicting a split from the train clustering: by the nearest cluster hull "
        "(intra-accuracy) and by the nearest training point (1-NN), beside the MLP probe's test accuracy. "
        "Expected: intra-accuracy ≥ 1-NN, and it tracks the probe's accuracy.",
    )
    metrics = ["intra_accuracy", "nn_accuracy"]
    part = select(at_last_layer(df, layers), analysis="directprobe", metric=metrics, control="real")
    if part.empty:
        t.missing = (
            "`directprobe` intra_accuracy / nn_accuracy rows (prediction of another split), last layer."
        )
        return t
    probe = select(at_last_layer(df, layers), analysis="probe", metric="accuracy_mean", split="test")
    orig, tuned = _endpoints(df, pd.concat([part, probe]))
    data, disp = [], []
    for model, task in _cells(part):
        for stage, look, tuned_on in (("original", orig, ""), ("tuned", tuned, task)):
            k = {"model": model, "tuned_on": tuned_on, "task": task}
            for split in sorted(part[(part["model"] == model) & (part["task"] == task)]["split"].unique()):
                intra = look.get(**k, split=split, analysis="directprobe", metric="intra_accuracy") * 100
                nn = look.get(**k, split=split, analysis="directprobe", metric="nn_accuracy") * 100
                mlp = look.get(**k, split="test", analysis="probe", metric="accuracy_mean")
                if np.isnan(intra) and np.isnan(nn):
                    continue
                data.append(
                    {
                        "model": model,
                        "task": task,
                        "stage": stage,
                        "predicted_split": split,
                        "intra_accuracy": intra,
                        "nn_accuracy": nn,
                        "mlp_accuracy": mlp,
                    }
                )
                disp.append(
                    {
                        "model": model,
                        "task": task,
                        "stage": stage,
                        "predicted split": split,
                        "intra-accuracy": fmt_pm(intra, np.nan),
                        "1-NN accuracy": fmt_pm(nn, np.nan),
                        "MLP accuracy": fmt_pm(mlp, np.nan),
                        "intra ≥ 1-NN": _yes(intra >= nn) if np.isfinite(intra + nn) else "–",
                    }
                )
    if not data:
        t.missing = "`directprobe` intra_accuracy / nn_accuracy rows of the original or the tuned model."
        return t
    t.data, t.display = _frame(data), _frame(disp)
    return t
