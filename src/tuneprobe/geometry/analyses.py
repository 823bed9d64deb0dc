"""The paper's analyses as functions from DirectProbe cells to tidy result rows (PAPER.md §7, §8).

Every function reads :class:`~tuneprobe.geometry.cells.DirectProbeCell` objects (never points or models) and
returns rows built with :func:`tuneprobe.experiments.results.make_row`; the metric names of each analysis are
documented in :data:`tuneprobe.experiments.results.ANALYSES`.

Labels are matched **by name** between cells (two splits or two checkpoints may have different vocabularies).
Strict profile (§6.7): an undefined distance is NaN and is left out of Pearson correlations and averages; each
row set says how many label pairs or labels it used.

- :func:`train_test_similarity`: Tables 2/7, Pearson of the train and the test distance vectors.
- :func:`similarity_to_original`: Fig. 4, Pearson of each checkpoint's distance vector with checkpoint 0's.
- :func:`outside_min_change`: Figs. 2/6 and Table 5, per-label ``outside_min`` change against the original;
  :func:`extreme_labels` picks the labels that Figs. 2/6 draw.
- :func:`closest_triple` and :func:`centroid_paths`: Fig. 3, 2-D PCA paths of three label centroids.
- :func:`centroid_shift`: Figs. 5, 7-10, 2-D PCA of the label centroids' difference vectors.
- :func:`model_rows`, :func:`task_rows`: Tables 1 and 6.
- :func:`linear_cka`: linear CKA of two representations of the same examples (an extra similarity measure).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tuneprobe.directprobe.metrics import distance_vector, pearson_similarity
from tuneprobe.experiments.results import make_row
from tuneprobe.geometry.cells import DirectProbeCell

__all__ = [
    "train_test_similarity",
    "similarity_to_original",
    "outside_min_change",
    "extreme_labels",
    "closest_triple",
    "centroid_paths",
    "centroid_shift",
    "model_rows",
    "task_rows",
    "pca_2d",
    "linear_cka",
    "shared_labels",
]


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def _check_same(cells: Sequence[DirectProbeCell], fields: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` unless all cells agree on the key ``fields``."""
    for f in fields:
        values = {getattr(c.key, f) for c in cells}
        if len(values) > 1:
            raise ValueError(f"{what}: the cells differ in {f} ({sorted(map(str, values))})")


def shared_labels(a: DirectProbeCell, b: DirectProbeCell, *, retained: bool = True) -> list[str]:
    """Sorted names of the labels present in both cells (and, with ``retained``, keeping at least one cluster
    under the cells' ``min_cluster_size``)."""

    def names(c: DirectProbeCell) -> set[str]:
        ok = c.present() & (c.retained() if retained else True)
        return {c.labels[i] for i in np.flatnonzero(ok)}

    return sorted(names(a) & names(b))


def _sub_vector(cell: DirectProbeCell, names: Sequence[str]) -> np.ndarray:
    """The distance vector ``[len(names)(len(names)-1)/2]`` of ``cell`` over ``names`` (in that order)."""
    index = cell.index()
    ids = np.array([index[n] for n in names], dtype=np.int64)
    return distance_vector(cell.label_distance[np.ix_(ids, ids)]) if ids.size else np.zeros(0)


def _similarity(a: DirectProbeCell, b: DirectProbeCell) -> tuple[float, int, int]:
    """(Pearson r, label pairs used, labels used) of two cells' distance vectors over their shared labels."""
    names = shared_labels(a, b)
    sim = pearson_similarity(_sub_vector(a, names), _sub_vector(b, names))
    return sim.r, sim.n_pairs, len(names)


def _series_key(cells: Sequence[DirectProbeCell], what: str) -> tuple[str, int]:
    """(tuned_on, seed) of a checkpoint series: those of its tuned cells (checkpoint > 0), whose checkpoint-0
    cell may be keyed as the original model (``tuned_on=""``, seed 0)."""
    tuned = [c for c in cells if c.key.checkpoint != 0] or list(cells)
    _check_same(tuned, ("tuned_on", "seed"), what)
    return tuned[0].key.tuned_on, tuned[0].key.seed


def pca_2d(M: np.ndarray, *, origin: str = "mean") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-component PCA of the rows of ``M`` (``[m, d]``), centred and not whitened.

    The components are the top right singular vectors of the centred finite rows, each signed so that its
    largest-magnitude entry is positive (deterministic). Returns (coordinates float64 ``[m, 2]``, NaN for
    rows with NaN; components ``[2, d]``; explained variance ratios ``[2]``). ``origin="mean"``: the
    coordinates of the centred rows (the usual PCA transform); ``origin="zero"``: the projections of the rows
    themselves onto the same components, so a zero row sits at (0, 0).
    """
    if origin not in ("mean", "zero"):
        raise ValueError(f"origin must be 'mean' or 'zero', got {origin!r}")
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2:
        raise ValueError(f"M must be [m, d], got {M.shape}")
    ok = np.isfinite(M).all(1)
    F = M[ok]
    comps = np.zeros((2, M.shape[1]))
    ratio = np.zeros(2)
    mean = F.mean(0) if F.shape[0] else np.zeros(M.shape[1])
    if F.shape[0] >= 2:
        _, s, vt = np.linalg.svd(F - mean, full_matrices=False)
        k = min(2, vt.shape[0])
        comps[:k] = vt[:k]
        var = s**2
        if var.sum() > 0:
            ratio[:k] = var[:k] / var.sum()
    for r in range(2):
        big = int(np.argmax(np.abs(comps[r]))) if comps.shape[1] else 0
        if comps.shape[1] and comps[r, big] < 0:
            comps[r] = -comps[r]
    coords = np.full((M.shape[0], 2), np.nan)
    shift = mean if origin == "mean" else 0.0
    coords[ok] = (F - shift) @ comps.T
    return coords, comps, ratio


# ----------------------------------------------------------------------------------------------------------
# Tables 2/7, Figure 4
# ----------------------------------------------------------------------------------------------------------


def train_test_similarity(train: DirectProbeCell, test: DirectProbeCell) -> list[dict[str, Any]]:
    """Tables 2/7: Pearson similarity of the train and the test distance vectors (PAPER.md §7).

    Both cells must share every key column but the split. The vectors run over the labels present and
    retained in both splits (sorted names); undefined entries are left out. ``pearson`` is reported only
    when both splits are linearly separable (NaN otherwise); ``n_pairs`` (pairs used), ``n_labels`` (labels
    shared) and ``linear`` (0/1) always. Rows: split ``"<train split>|<test split>"``, the train cell's key.
    """
    _check_same(
        [train, test], ("model", "tuned_on", "checkpoint", "layer", "task", "seed", "control"), "train/test"
    )
    r, n_pairs, n_labels = _similarity(train, test)
    linear = bool(train.is_linear and test.is_linear)
    k = train.key.row_key(split=f"{train.key.split}|{test.key.split}")
    return [
        make_row(analysis="train_test_similarity", metric="pearson", value=r if linear else math.nan, **k),
        make_row(analysis="train_test_similarity", metric="n_pairs", value=n_pairs, **k),
        make_row(analysis="train_test_similarity", metric="n_labels", value=n_labels, **k),
        make_row(analysis="train_test_similarity", metric="linear", value=float(linear), **k),
    ]


def similarity_to_original(cells: Sequence[DirectProbeCell]) -> list[dict[str, Any]]:
    """Figure 4: Pearson of each checkpoint's distance vector with the same layer's at checkpoint 0.

    ``cells``: one (model, tuned_on, task, split, layer, seed, control) series over checkpoints, including
    exactly one checkpoint-0 cell (which may be keyed as the original model: ``tuned_on=""``, seed 0). Per
    checkpoint (checkpoint 0 included): ``pearson`` over the labels present and retained in both cells,
    ``n_pairs``, ``n_labels``, and ``linear`` (1 when both cells are linearly separable, where the distance
    vector is canonical). Rows carry the series' tuned_on and seed.
    """
    if not cells:
        return []
    _check_same(cells, ("model", "task", "split", "layer", "control"), "similarity_to_original")
    base = [c for c in cells if c.key.checkpoint == 0]
    if len(base) != 1:
        raise ValueError(f"similarity_to_original needs exactly one checkpoint-0 cell, got {len(base)}")
    tuned_on, seed = _series_key(cells, "similarity_to_original")
    checkpoints = [c.key.checkpoint for c in cells]
    if len(set(checkpoints)) != len(checkpoints):
        raise ValueError(f"similarity_to_original: repeated checkpoints {sorted(checkpoints)}")
    rows = []
    for c in sorted(cells, key=lambda c: c.key.checkpoint):
        r, n_pairs, n_labels = _similarity(base[0], c)
        k = c.key.row_key(tuned_on=tuned_on, seed=seed)
        linear = float(c.is_linear and base[0].is_linear)
        for metric, value in (
            ("pearson", r),
            ("n_pairs", n_pairs),
            ("n_labels", n_labels),
            ("linear", linear),
        ):
            rows.append(make_row(analysis="similarity_to_original", metric=metric, value=value, **k))
    return rows


# ----------------------------------------------------------------------------------------------------------
# Figures 2/6, Table 5
# ----------------------------------------------------------------------------------------------------------


def outside_min_change(base: DirectProbeCell, other: DirectProbeCell) -> list[dict[str, Any]]:
    """Figures 2/6 and Table 5: per-label ``outside_min`` of ``other`` minus that of ``base``.

    base: the original model's cell (checkpoint 0) of the same model, task, split, layer and control; other:
    any cell of that task (a checkpoint of fine-tuning on it or on another task). Over the labels present in
    both (by name): per label ``change`` and ``change_scaled`` (divided by the mean of ``base``'s
    ``inside_mean`` over its labels, PAPER.md §8; NaN where undefined). Whole set: ``labels_up`` and
    ``labels_down`` (changes > 0 and < 0), ``mean_change`` and ``mean_change_scaled`` (over defined
    changes), ``n_labels`` (defined changes). Rows carry ``other``'s key. Under the reference profile
    (``undefined="zero"``) an undefined ``outside_min`` is 0, so such a label contributes a change of 0.
    """
    _check_same([base, other], ("model", "task", "split", "layer", "control"), "outside_min_change")
    names = shared_labels(base, other, retained=False)
    ib, io = base.index(), other.index()
    change = np.array([other.outside_min[io[n]] - base.outside_min[ib[n]] for n in names], dtype=np.float64)
    inside = base.inside_mean[base.present()]
    inside = inside[np.isfinite(inside)]
    scale = float(inside.mean()) if inside.size else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = change / scale if scale else np.full_like(change, math.nan)
    k = other.key.row_key()

    def row(metric: str, value: float, label: str = "") -> dict[str, Any]:
        return make_row(analysis="outside_min_change", metric=metric, value=value, label=label, **k)

    rows = []
    for n, c, s in zip(names, change.tolist(), scaled.tolist(), strict=True):
        rows += [row("change", c, n), row("change_scaled", s, n)]
    ok = np.isfinite(change)
    rows += [
        row("labels_up", int((change[ok] > 0).sum())),
        row("labels_down", int((change[ok] < 0).sum())),
        row("mean_change", float(change[ok].mean()) if ok.any() else math.nan),
        row("mean_change_scaled", float(scaled[ok].mean()) if ok.any() else math.nan),
        row("n_labels", int(ok.sum())),
    ]
    return rows


def extreme_labels(
    rows: Iterable[Mapping[str, Any]], k: int = 3, *, metric: str = "change"
) -> tuple[list[str], list[str]]:
    """Figures 2/6: the ``k`` labels whose ``outside_min`` rose most and the ``k`` that rose least.

    rows: ``outside_min_change`` rows of one series (model, tuned_on, task, split, layer, seed, control); the
    ranking uses its last checkpoint (final minus checkpoint 0), ``metric`` ``"change"`` or
    ``"change_scaled"``. Returns (largest first, smallest first); undefined changes are skipped; ties go to
    the smaller name.
    """
    picked = [
        r for r in rows if r["analysis"] == "outside_min_change" and r["metric"] == metric and r["label"]
    ]
    if not picked:
        return [], []
    series = {
        tuple(r[c] for c in ("model", "tuned_on", "task", "split", "layer", "seed", "control"))
        for r in picked
    }
    if len(series) > 1:
        raise ValueError(f"extreme_labels: rows of {len(series)} series; pass one")
    last = max(r["checkpoint"] for r in picked)
    final = sorted(
        (
            (float(r["value"]), r["label"])
            for r in picked
            if r["checkpoint"] == last and math.isfinite(r["value"])
        ),
        key=lambda t: (t[0], t[1]),
    )
    up = [n for _, n in sorted(final, key=lambda t: (-t[0], t[1]))[:k]]
    down = [n for _, n in final[:k]]
    return up, down


# ----------------------------------------------------------------------------------------------------------
# Figure 3
# ----------------------------------------------------------------------------------------------------------


def closest_triple(cell: DirectProbeCell) -> tuple[int, int, int]:
    """Figure 3's "three closest labels" (PAPER.md §7, our default rule): the label ids ``i < j < k`` whose
    sum of pairwise D_lab is smallest, over labels whose three distances are all defined. Ties go to the
    lexicographically smallest ids. Pass the original model's (checkpoint 0) cell of the last layer."""
    D = np.array(cell.label_distance, dtype=np.float64)
    usable = cell.present() & cell.retained()
    D[~usable, :] = math.inf
    D[:, ~usable] = math.inf
    n = D.shape[0]
    best = (math.inf, (-1, -1, -1))
    for i in range(n - 2):
        # S[j, k] = D[i, j] + D[i, k] + D[j, k] over j < k, both > i
        S = D[i, :, None] + D[i, None, :] + D
        S[~np.isfinite(S)] = math.inf
        mask = np.triu(np.ones((n, n), dtype=bool), 1)
        mask[: i + 1, :] = False
        S = np.where(mask, S, math.inf)
        flat = int(np.argmin(S))
        value = float(S.flat[flat])
        if value < best[0]:
            best = (value, (i, flat // n, flat % n))
    if not math.isfinite(best[0]):
        raise ValueError("closest_triple needs three labels whose pairwise distances are all defined")
    return best[1]


def centroid_paths(
    cells_by_layer: Mapping[int, Sequence[DirectProbeCell]], triple: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Figure 3: 2-D PCA paths of three labels' centroids over checkpoints, per layer.

    cells_by_layer: layer -> that layer's cells of one series (model, tuned_on, task, split, seed, control)
    over checkpoints, each checkpoint once. triple: three label names; default :func:`closest_triple` of the
    checkpoint-0 cell of the last (largest) layer, used for every layer. Per layer, a PCA (centred, not
    whitened; :func:`pca_2d`) is fitted on the 3 x n_checkpoints centroids. Rows: per label and checkpoint
    ``pc1``, ``pc2`` (NaN where the label has no points); per layer ``explained_variance_1``,
    ``explained_variance_2`` (fractions of the variance; checkpoint = the last checkpoint of the path). Rows
    carry the series' tuned_on and seed.
    """
    layers = sorted(cells_by_layer)
    if not layers:
        return []
    every = [c for layer in layers for c in cells_by_layer[layer]]
    _check_same(every, ("model", "task", "split", "control"), "centroid_paths")
    tuned_on, seed = _series_key(every, "centroid_paths")
    if triple is None:
        zero = [c for c in cells_by_layer[layers[-1]] if c.key.checkpoint == 0]
        if len(zero) != 1:
            raise ValueError(f"centroid_paths: the last layer needs one checkpoint-0 cell, got {len(zero)}")
        triple = [zero[0].labels[i] for i in closest_triple(zero[0])]
    triple = [str(t) for t in triple]
    if len(triple) != 3 or len(set(triple)) != 3:
        raise ValueError(f"centroid_paths: triple must be three distinct label names, got {triple}")
    rows = []
    for layer in layers:
        cells = sorted(cells_by_layer[layer], key=lambda c: c.key.checkpoint)
        if any(c.key.layer != layer for c in cells):
            raise ValueError(f"centroid_paths: a cell listed under layer {layer} has another layer")
        checkpoints = [c.key.checkpoint for c in cells]
        if len(set(checkpoints)) != len(checkpoints):
            raise ValueError(f"centroid_paths: repeated checkpoints at layer {layer}: {checkpoints}")
        dim = cells[0].centroids.shape[1]
        M = np.full((len(cells), 3, dim), np.nan)
        for t, c in enumerate(cells):
            index = c.index()
            for a, name in enumerate(triple):
                if name in index:
                    M[t, a] = c.centroids[index[name]]
        coords, _, ratio = pca_2d(M.reshape(-1, dim), origin="mean")
        coords = coords.reshape(len(cells), 3, 2)
        for t, c in enumerate(cells):
            k = c.key.row_key(tuned_on=tuned_on, seed=seed)
            for a, name in enumerate(triple):
                for p in range(2):
                    rows.append(
                        make_row(
                            analysis="centroid_paths",
                            metric=f"pc{p + 1}",
                            value=coords[t, a, p],
                            label=name,
                            **k,
                        )
                    )
        k = cells[-1].key.row_key(tuned_on=tuned_on, seed=seed)
        for p in range(2):
            rows.append(
                make_row(analysis="centroid_paths", metric=f"explained_variance_{p + 1}", value=ratio[p], **k)
            )
    return rows


# ----------------------------------------------------------------------------------------------------------
# Figures 5, 7-10
# ----------------------------------------------------------------------------------------------------------


def centroid_shift(
    original: DirectProbeCell, tuned: DirectProbeCell, *, origin: str = "zero"
) -> list[dict[str, Any]]:
    """Figures 5, 7-10: per label, the centroid movement delta(i) = mu_tuned(i) - mu_original(i) of one layer.

    Over the labels present in both cells (by name): ``norm`` = ||delta(i)||, and ``pc1``, ``pc2`` from a 2-D
    PCA of the labels' difference vectors (centred, not whitened, so ranges compare across layers). With
    ``origin="zero"`` (default) the coordinates are the projections of delta(i) onto the principal axes, so a
    label that did not move sits at (0, 0); ``origin="mean"`` gives the centred coordinates. Whole set:
    ``explained_variance_1``, ``explained_variance_2``. Rows carry ``tuned``'s key.
    """
    _check_same([original, tuned], ("model", "task", "split", "layer", "control"), "centroid_shift")
    names = shared_labels(original, tuned, retained=False)
    io, it = original.index(), tuned.index()
    dim = original.centroids.shape[1]
    if tuned.centroids.shape[1] != dim:
        raise ValueError(f"centroid_shift: dimensions differ ({dim} vs {tuned.centroids.shape[1]})")
    delta = np.array([tuned.centroids[it[n]] - original.centroids[io[n]] for n in names]).reshape(-1, dim)
    coords, _, ratio = pca_2d(delta, origin=origin)
    norm = np.linalg.norm(delta, axis=1)
    k = tuned.key.row_key()
    rows = []
    for a, name in enumerate(names):
        for metric, value in (("norm", norm[a]), ("pc1", coords[a, 0]), ("pc2", coords[a, 1])):
            rows.append(make_row(analysis="centroid_shift", metric=metric, value=value, label=name, **k))
    for p in range(2):
        rows.append(
            make_row(analysis="centroid_shift", metric=f"explained_variance_{p + 1}", value=ratio[p], **k)
        )
    return rows


# ----------------------------------------------------------------------------------------------------------
# Tables 1 and 6
# ----------------------------------------------------------------------------------------------------------


def _config_value(config: Any, names: Sequence[str]) -> int:
    for name in names:
        value = config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)
        if value is not None:
            return int(value)
    raise ValueError(f"model config has none of {list(names)}")


def model_rows(name: str, config: Any, n_parameters: int) -> list[dict[str, Any]]:
    """Table 1: ``n_layers``, ``hidden_size``, ``n_heads``, ``n_parameters`` of one encoder.

    config: a Hugging Face config (``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``) or a
    mapping with those keys (or ``n_layers``, ``n_heads``).
    """
    values = {
        "n_layers": _config_value(config, ("num_hidden_layers", "n_layers", "n_layer")),
        "hidden_size": _config_value(config, ("hidden_size", "dim", "d_model")),
        "n_heads": _config_value(config, ("num_attention_heads", "n_heads", "n_head")),
        "n_parameters": int(n_parameters),
    }
    return [make_row(analysis="models", metric=m, value=v, model=name) for m, v in values.items()]


def task_rows(task: str, split_sizes: Mapping[str, int], n_labels: Mapping[str, int]) -> list[dict[str, Any]]:
    """Table 6: per split, ``n_examples`` (from ``split_sizes``) and ``n_labels`` (from ``n_labels``)."""
    rows = []
    for split in sorted(set(split_sizes) | set(n_labels)):
        if split in split_sizes:
            rows.append(
                make_row(
                    analysis="tasks", metric="n_examples", value=split_sizes[split], task=task, split=split
                )
            )
        if split in n_labels:
            rows.append(
                make_row(analysis="tasks", metric="n_labels", value=n_labels[split], task=task, split=split)
            )
    return rows


# ----------------------------------------------------------------------------------------------------------
# an extra similarity
# ----------------------------------------------------------------------------------------------------------


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) of two representations ``X`` ``[n, d1]`` and ``Y`` ``[n, d2]`` of
    the same n examples: ``||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F)`` with column-centred ``Xc``, ``Yc``.

    1 for representations equal up to rotation, isotropic scaling and translation; NaN when either is
    constant. Memory O((d1 + d2)^2).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"expected X [n, d1] and Y [n, d2] with the same n, got {X.shape} and {Y.shape}")
    Xc = X - X.mean(0)
    Yc = Y - Y.mean(0)
    cross = float(np.linalg.norm(Yc.T @ Xc) ** 2)
    den = float(np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    return cross / den if den > 0 else math.nan
