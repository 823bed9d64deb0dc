"""The tidy results table: one row per (model, snapshot, layer, task, split, analysis, metric, ...).

Every analysis of the pipeline writes rows of this one shape, and tables, figures and reports are drawn from
them, never from live models (DESIGN.md). A row is a plain ``dict`` with exactly the keys of
:data:`ROW_COLUMNS`:

============  =======  ==================================================================================
column        type     meaning
============  =======  ==================================================================================
model         str      the encoder as the user named it (``default``, a hub name or a local path)
tuned_on      str      the task the encoder was fine-tuned on; ``""`` for the original (pre-trained) model
checkpoint    int      updates of fine-tuning behind the weights; 0 = the original model
layer         int      hidden-state index (0 = embeddings, 1..L); -1 where no layer applies
task          str      the task whose examples were measured (``""`` where none applies)
split         str      ``train`` / ``dev`` / ``test``; ``""`` where none applies; ``train|test`` for a
                       comparison of two splits
analysis      str      what produced the row (one of :data:`ANALYSES`)
metric        str      the quantity (documented per analysis in :data:`ANALYSES`)
label         str      the label the value is about; ``""`` for whole-set values
label_b       str      the second label of a label pair; ``""`` otherwise
value         float    the number (NaN where undefined, e.g. a distance to a label with no cluster)
seed          int      the fine-tuning / probe / permutation seed; 0 where no randomness applies
control       str      ``real``, or ``random`` for the random-label control (labels permuted within the split)
============  =======  ==================================================================================

Rows are sorted by the key columns before writing (:func:`sort_rows`), so a table's bytes depend only on its
content, not on the order in which jobs finished.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROW_COLUMNS: tuple[str, ...] = (
    "model",
    "tuned_on",
    "checkpoint",
    "layer",
    "task",
    "split",
    "analysis",
    "metric",
    "label",
    "label_b",
    "value",
    "seed",
    "control",
)
"""The columns of the results table, in order."""

KEY_COLUMNS: tuple[str, ...] = tuple(c for c in ROW_COLUMNS if c != "value")
"""Every column but ``value``: together they identify a row."""

_TYPES: dict[str, type] = {
    "model": str,
    "tuned_on": str,
    "checkpoint": int,
    "layer": int,
    "task": str,
    "split": str,
    "analysis": str,
    "metric": str,
    "label": str,
    "label_b": str,
    "value": float,
    "seed": int,
    "control": str,
}

CONTROLS: tuple[str, ...] = ("real", "random")

ANALYSES: dict[str, str] = {
    "models": "Table 1. metrics: n_layers, hidden_size, n_heads, n_parameters (task, split empty; layer -1)",
    "tasks": "Table 6. metrics: n_labels, n_examples (per split; model empty; layer -1)",
    "finetune": "training curve. metrics: loss, accuracy, learning_rate (per checkpoint; split train)",
    "probe": (
        "PAPER.md section 5 MLP probe on (model, checkpoint, layer). split test: accuracy_mean, accuracy_std "
        "(percent, population std over refit seeds), n_unseen (test examples whose label is unseen in "
        "train); "
        "split dev: best_dev_accuracy; best_h1, best_h2, best_alpha (split empty)"
    ),
    "directprobe": (
        "DirectProbe fit on one split. whole set: n_points, n_labels, n_clusters, is_linear (0/1), "
        "intra_accuracy and nn_accuracy (nearest-hull / 1-NN prediction of another split: split names the "
        "predicted split, e.g. test, and the fitted split is train), effective_dimension (PCA rank at 99 %), "
        "dim (the points' dimension d; Cover threshold d + 1); "
        "per label present in the split: outside_min, inside_mean, inside_max, n_points_label, "
        "n_clusters_label; per pair of present labels (label, label_b with label < label_b): distance (mean "
        "over cluster pairs), distance_min, below_cover (1 when the pair has at most d + 1 points, so it is "
        "separable under any labelling)"
    ),
    "train_test_similarity": (
        "Tables 2/7: Pearson of the train and test distance vectors (split train|test) over the labels "
        "present and retained in both. metrics: pearson, n_pairs (label pairs used), n_labels (labels "
        "shared), linear (1 when both splits are linearly separable; pearson is NaN otherwise)"
    ),
    "similarity_to_original": (
        "Figure 4: Pearson of a checkpoint's distance vector with the same layer's at checkpoint 0. "
        "metrics: pearson, n_pairs, n_labels, linear (1 when both cells are linearly separable)"
    ),
    "outside_min_change": (
        "Figures 2/6 and Table 5: per label, outside_min at this checkpoint minus at checkpoint 0 of the "
        "original model. metrics: change, change_scaled (divided by the mean inside_mean at checkpoint 0); "
        "whole set: labels_up, labels_down, mean_change, mean_change_scaled, n_labels (defined changes)"
    ),
    "centroid_paths": (
        "Figure 3: 2-D PCA (centred, not whitened) of the closest label triple's centroids over checkpoints. "
        "per label and checkpoint: pc1, pc2; per layer (checkpoint = the path's last): explained_variance_1, "
        "explained_variance_2 (fractions of the variance)"
    ),
    "centroid_shift": (
        "Figures 5, 7-10: per label, the centroid difference tuned minus original: norm, and its 2-D PCA "
        "coordinates pc1, pc2 (PCA over the labels' difference vectors of one layer; a label that did not "
        "move sits at 0, 0); whole set: explained_variance_1, explained_variance_2"
    ),
}
"""The analyses the runner knows, each with the metrics it writes."""


def make_row(
    *,
    analysis: str,
    metric: str,
    value: float,
    model: str = "",
    tuned_on: str = "",
    checkpoint: int = 0,
    layer: int = -1,
    task: str = "",
    split: str = "",
    label: str = "",
    label_b: str = "",
    seed: int = 0,
    control: str = "real",
) -> dict[str, Any]:
    """One validated row (a dict with the keys of :data:`ROW_COLUMNS`, in order)."""
    row = {
        "model": model,
        "tuned_on": tuned_on,
        "checkpoint": checkpoint,
        "layer": layer,
        "task": task,
        "split": split,
        "analysis": analysis,
        "metric": metric,
        "label": label,
        "label_b": label_b,
        "value": value,
        "seed": seed,
        "control": control,
    }
    return validate_row(row)


def validate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Check one row's keys and types; return it as a plain dict in column order (ints and floats coerced).

    Raises ``ValueError`` naming the column at fault.
    """
    keys = set(row)
    missing = [c for c in ROW_COLUMNS if c not in keys]
    extra = sorted(keys - set(ROW_COLUMNS))
    if missing or extra:
        raise ValueError(f"result row has missing columns {missing} / unknown columns {extra}: {dict(row)}")
    out: dict[str, Any] = {}
    for col in ROW_COLUMNS:
        v = row[col]
        want = _TYPES[col]
        if want is str:
            if not isinstance(v, str):
                raise ValueError(f"result row column {col!r} must be a string, got {v!r}")
        elif want is int:
            if isinstance(v, bool) or not float(v).is_integer():
                raise ValueError(f"result row column {col!r} must be an integer, got {v!r}")
            v = int(v)
        else:
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"result row column {col!r} must be a number, got {v!r}") from None
        out[col] = v
    if out["control"] not in CONTROLS:
        raise ValueError(f"result row column 'control' must be one of {CONTROLS}, got {out['control']!r}")
    return out


def sort_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated rows sorted by :data:`KEY_COLUMNS` (a deterministic order independent of job order)."""
    return sorted((validate_row(r) for r in rows), key=lambda r: tuple(r[c] for c in KEY_COLUMNS))


def rows_to_frame(rows: Iterable[Mapping[str, Any]]) -> Any:
    """A ``pandas.DataFrame`` with the columns of :data:`ROW_COLUMNS` and fixed dtypes, rows sorted."""
    import pandas as pd

    data = sort_rows(rows)
    frame = pd.DataFrame(data, columns=list(ROW_COLUMNS))
    dtypes = {c: ("int64" if t is int else "float64" if t is float else "object") for c, t in _TYPES.items()}
    return frame.astype(dtypes)


def _atomic_write(path: Path, write: Any) -> None:
    from tuneprobe.store.arrays import sweep_stale_temps, temp_prefix

    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)  # temporaries of killed writers of this path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows atomically as Parquet (``.parquet``) or CSV (any other suffix); returns the path.

    CSV writes NaN as an empty field and floats with 17 significant digits, so a CSV round trip is exact.
    """
    return write_frame(rows_to_frame(rows), path)


def write_frame(frame: Any, path: str | Path) -> Path:
    """Write a frame made by :func:`rows_to_frame` (columns, dtypes and row order as it sets them) the way
    :func:`write_rows` does; returns the path."""
    path = Path(path)
    if path.suffix == ".parquet":
        _atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        _atomic_write(
            path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.17g", lineterminator="\n")
        )
    return path


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read a table written by :func:`write_rows` (Parquet or CSV) back into validated rows."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no results table at {path}")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        # pandas 2.x's default float parser can lose the last digit; 3.x is exact and deprecates the option
        exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
        frame = pd.read_csv(
            path,
            keep_default_na=False,
            na_values=[""],
            **exact,
            dtype={c: str for c in ROW_COLUMNS if _TYPES[c] is str},
        )
    rows = []
    for rec in frame.to_dict(orient="records"):
        for c in ROW_COLUMNS:
            if _TYPES[c] is str and not isinstance(rec.get(c), str):
                v = rec.get(c)
                rec[c] = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
        rows.append(validate_row(rec))
    return rows
