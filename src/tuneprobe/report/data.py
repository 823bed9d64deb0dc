"""Reading the tidy results table and picking the rows a table, figure or claim needs.

Everything in :mod:`tuneprobe.report` is drawn from the rows of
:data:`tuneprobe.experiments.results.ROW_COLUMNS`, never from a live model. The conventions used here:

- **original** rows are those at ``checkpoint == 0`` (the pre-trained weights). A runner may write them with
  ``tuned_on == ""`` or under a fine-tuning run's name; :func:`originals` keeps one copy (``tuned_on == ""``
  preferred) and sets ``tuned_on`` to ``""``.
- **tuned** rows are a fine-tuning run's rows at its **final** checkpoint: the largest ``checkpoint`` that
  any row of that ``(model, tuned_on, seed)`` carries (:func:`finals`).
- the **last layer** of a model is ``n_layers`` from its ``models`` rows (Table 1), else the largest layer
  among its rows (:func:`last_layers`).
- values of several seeds (fine-tuning, probe or permutation seeds) are averaged (:func:`mean_over_seeds`),
  and the number of seeds is kept in ``n_seeds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuneprobe.errors import DataNotFoundError
from tuneprobe.experiments.results import KEY_COLUMNS, ROW_COLUMNS, read_rows, rows_to_frame

RESULT_FILES: tuple[str, ...] = ("results.parquet", "results.csv")
"""The names the runner writes the table under, in order of preference."""

PAPER_MODELS: dict[str, str] = {
    "google/bert_uncased_L-2_H-128_A-2": "BERT_tiny",
    "google/bert_uncased_L-4_H-256_A-4": "BERT_mini",
    "google/bert_uncased_L-4_H-512_A-8": "BERT_small",
    "google/bert_uncased_L-8_H-512_A-8": "BERT_medium",
    "bert-base-uncased": "BERT_base",
    "google-bert/bert-base-uncased": "BERT_base",
}
"""Hub names of the paper's models (PAPER.md section 3) -> the paper's names."""

MINILM_LABEL = "sentence-embedding pre-trained MiniLM"


def is_minilm(model: str) -> bool:
    """Whether ``model`` names the offline default (the sentence-embedding MiniLM of PAPER.md section 3)."""
    return model == "default" or "minilm" in model.lower()


def model_label(model: str) -> str:
    """A display name: the paper's name for its models, the MiniLM caveat label for the offline default."""
    if model in PAPER_MODELS:
        return f"{PAPER_MODELS[model]} ({model})"
    if is_minilm(model):
        return f"{model} ({MINILM_LABEL})"
    return model


def results_path(results_dir: str | Path) -> Path:
    """The results table in ``results_dir`` (``results.parquet`` preferred, else ``results.csv``).

    Raises :class:`~tuneprobe.errors.DataNotFoundError` naming the directory and what was expected.
    """
    d = Path(results_dir)
    if not d.is_dir():
        raise DataNotFoundError(f"{d}: no such results directory (run `tuneprobe run CONFIG.toml` first)")
    for name in RESULT_FILES:
        if (d / name).is_file():
            return d / name
    raise DataNotFoundError(
        f"{d}: no results table (expected {' or '.join(RESULT_FILES)}, written by "
        "`tuneprobe run CONFIG.toml`)"
    )


def load_results(results_dir: str | Path) -> tuple[pd.DataFrame, Path]:
    """The validated rows of ``results_dir``'s table as a frame with :data:`ROW_COLUMNS`, and its path."""
    path = results_path(results_dir)
    return rows_to_frame(read_rows(path)), path


def frame_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A frame with :data:`ROW_COLUMNS` from rows built with ``make_row`` (validated, sorted)."""
    return rows_to_frame(rows)


def select(df: pd.DataFrame, **eq: Any) -> pd.DataFrame:
    """Rows where every named column equals the given value (a list or tuple: is one of the values)."""
    mask = np.ones(len(df), dtype=bool)
    for col, want in eq.items():
        if isinstance(want, list | tuple | set):
            mask &= df[col].isin(list(want)).to_numpy()
        else:
            mask &= (df[col] == want).to_numpy()
    return df[mask]


def originals(df: pd.DataFrame) -> pd.DataFrame:
    """Rows at checkpoint 0, one copy per key (``tuned_on == ""`` preferred), with ``tuned_on`` set to
    ``""``."""
    orig = df[df["checkpoint"] == 0].copy()
    if orig.empty:
        return orig
    orig["_pref"] = (orig["tuned_on"] != "").astype(int)
    orig = orig.sort_values("_pref", kind="stable").assign(tuned_on="")
    keys = [c for c in KEY_COLUMNS if c != "tuned_on"]
    return orig.drop_duplicates(subset=keys, keep="first").drop(columns="_pref")


def final_checkpoints(df: pd.DataFrame) -> pd.DataFrame:
    """``model, tuned_on, seed, final``: the largest checkpoint of each fine-tuning run
    (``tuned_on != ""``)."""
    runs = df[(df["tuned_on"] != "") & (df["checkpoint"] > 0)]
    out = runs.groupby(["model", "tuned_on", "seed"], as_index=False)["checkpoint"].max()
    return out.rename(columns={"checkpoint": "final"})


def finals(df: pd.DataFrame, everything: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows of ``df`` at their fine-tuning run's final checkpoint.

    ``everything`` (default ``df``) is the frame the final checkpoints are taken from, so that a run's final
    update is the same for every analysis.
    """
    fin = final_checkpoints(df if everything is None else everything)
    merged = df.merge(fin, on=["model", "tuned_on", "seed"], how="inner")
    merged = merged[merged["checkpoint"] == merged["final"]]
    return merged.drop(columns="final")


def run_series(df: pd.DataFrame, model: str, tuned_on: str, task: str) -> pd.DataFrame:
    """A fine-tuning run's rows over its checkpoints, checkpoint 0 included (from the original when the run
    itself has no checkpoint-0 rows); ``tuned_on`` is set to the run's name on every row."""
    own = select(df, model=model, tuned_on=tuned_on, task=task)
    orig = originals(select(df, model=model, task=task))
    keys = [c for c in KEY_COLUMNS if c != "tuned_on"]
    both = pd.concat([own, orig.assign(tuned_on=tuned_on)], ignore_index=True)
    return both.drop_duplicates(subset=keys, keep="first")


def last_layers(df: pd.DataFrame) -> dict[str, int]:
    """model -> its last hidden-state layer: ``n_layers`` of Table 1 if present, else its largest layer."""
    out: dict[str, int] = {}
    layered = df[df["layer"] >= 0]
    for model, g in layered.groupby("model"):
        out[str(model)] = int(g["layer"].max())
    for r in select(df, analysis="models", metric="n_layers").itertuples():
        if np.isfinite(r.value):
            out[str(r.model)] = int(r.value)
    return out


def at_last_layer(df: pd.DataFrame, layers: dict[str, int]) -> pd.DataFrame:
    """Rows whose layer is their model's last layer (``layers`` from :func:`last_layers`)."""
    want = df["model"].map(layers)
    return df[df["layer"] == want]


def mean_over_seeds(df: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """One row per ``keys`` (default: every key column but ``seed``): ``value`` = the mean over seeds (NaN
    ignored; NaN when every seed is NaN), ``std`` = population std over seeds, ``n_seeds``."""
    keys = keys or [c for c in KEY_COLUMNS if c != "seed"]
    if df.empty:
        return pd.DataFrame(columns=[*keys, "value", "std", "n_seeds"])
    g = df.groupby(keys, dropna=False, sort=True)["value"]
    out = pd.DataFrame({"value": g.mean(), "std": g.std(ddof=0), "n_seeds": g.size()})
    return out.reset_index()


def value_of(df: pd.DataFrame, default: float = float("nan"), **eq: Any) -> float:
    """The mean value over the rows matching ``eq`` (seeds averaged); ``default`` when none match."""
    rows = select(df, **eq) if eq else df
    vals = rows["value"].to_numpy(dtype=float)
    if vals.size == 0 or np.isnan(vals).all():
        return default
    return float(np.nanmean(vals))


def hidden_sizes(df: pd.DataFrame) -> dict[str, int]:
    """model -> hidden size from its Table 1 rows (absent when the run has no ``models`` rows)."""
    return {
        str(r.model): int(r.value)
        for r in select(df, analysis="models", metric="hidden_size").itertuples()
        if np.isfinite(r.value)
    }


def cover_threshold(hidden_size: int | None, task: str) -> float:
    """PAPER.md section 8: d+1, where d is the vector dimension (2H for the ``dep`` pair vectors, else H)."""
    if hidden_size is None:
        return float("nan")
    return float((2 if task == "dep" else 1) * hidden_size + 1)


__all__ = [
    "MINILM_LABEL",
    "PAPER_MODELS",
    "RESULT_FILES",
    "ROW_COLUMNS",
    "at_last_layer",
    "cover_threshold",
    "final_checkpoints",
    "finals",
    "frame_from_rows",
    "hidden_sizes",
    "is_minilm",
    "last_layers",
    "load_results",
    "mean_over_seeds",
    "model_label",
    "originals",
    "results_path",
    "run_series",
    "select",
    "value_of",
]
