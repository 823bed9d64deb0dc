"""A synthetic results table with known values, covering every analysis of ``ANALYSES``.

Model ``default`` (3 layers, H 8), tasks pos / ps-fxn / trec50, each tuned on itself with checkpoints 0, 10,
20; ps-fxn is also measured after tuning on ps-role and on pos (Table 5). The values are chosen so that:

- F0 partly holds (pos and trec50 improve, ps-fxn falls: 70 -> 65);
- F1 holds (similarity falls in both linear cells; the lowest tuned one, ps-fxn 0.44, is the F0 exception);
- F2 holds (5 -> 3, 4 -> 3 clusters for 3 labels; trec50 80 -> 60 for 50 labels);
- F3 holds (every label's outside_min rises, with a dip of pos label A at update 10);
- F4 partly holds (ps-role +, pos all down, ps-fxn itself all up but not the best accuracy);
- F5 holds (Pearson to the original >= 0.7, layer 1 >= 0.98, falling with layer; shift norms rising).
"""

from __future__ import annotations

import math

from tuneprobe.experiments.results import make_row

M = "default"
LAYERS = (1, 2, 3)
CKPTS = (0, 10, 20)
POS = ("A", "B", "C")
FXN = ("p.X", "p.Y", "p.Z")
TREC = tuple(f"L{i:02d}" for i in range(50))

# outside_min at the last layer (3), train split, over checkpoints 0, 10, 20 of the run tuned on the task
OUTSIDE_MIN = {
    "pos": {"A": (1.0, 0.8, 1.5), "B": (1.0, 1.2, 1.4), "C": (2.0, 2.1, 2.2)},
    "ps-fxn": {"p.X": (0.5, 0.7, 1.0), "p.Y": (0.6, 0.7, 0.9), "p.Z": (0.4, 0.45, 0.5)},
}
# ps-fxn, last layer, per label change at the final checkpoint of runs tuned on other tasks
CROSS = {"ps-role": {"p.X": 0.2, "p.Y": -0.1, "p.Z": 0.3}, "pos": {"p.X": -1.0, "p.Y": -2.0, "p.Z": -0.5}}
# (original, tuned) MLP test accuracy (mean, std), last layer
ACC = {
    "pos": ((80.0, 1.0), (90.0, 1.0)),
    "ps-fxn": ((70.0, 2.0), (65.0, 1.0)),
    "trec50": ((60.0, 0.5), (70.0, 0.5)),
}
CROSS_ACC = {"ps-role": 72.0, "pos": 60.0}
# (original, tuned) train/test similarity; trec50 is non-linear
SIM = {"pos": (0.9, 0.6), "ps-fxn": (0.8, 0.44), "trec50": (math.nan, math.nan)}
# (n_labels, original clusters, tuned clusters, random-label clusters)
CLUSTERS = {"pos": (3, 5, 3, 40), "ps-fxn": (3, 4, 3, 30), "trec50": (50, 80, 60, 300)}
# similarity to the original per layer at checkpoints 0, 10, 20 (pos, tuned on pos)
SIM_ORIG = {1: (1.0, 0.99, 0.98), 2: (1.0, 0.95, 0.9), 3: (1.0, 0.8, 0.7)}
SHIFT_NORM = {1: 0.1, 2: 0.5, 3: 1.0}


def _r(**kw):
    kw.setdefault("model", M)
    return make_row(**kw)


def synthetic_rows(
    *,
    sim: dict | None = None,
    outside_min: dict | None = None,
    clusters: dict | None = None,
    sim_orig: dict | None = None,
    acc: dict | None = None,
) -> list[dict]:
    """The synthetic table; keyword overrides replace the module constants of the same meaning."""
    sim, outside_min = sim or SIM, outside_min or OUTSIDE_MIN
    clusters, sim_orig, acc = clusters or CLUSTERS, sim_orig or SIM_ORIG, acc or ACC
    rows = [
        _r(analysis="models", metric=m, value=v)
        for m, v in (("n_layers", 3), ("hidden_size", 8), ("n_heads", 2), ("n_parameters", 22_700_000))
    ]
    labels = {"pos": POS, "ps-fxn": FXN, "trec50": TREC}
    for task, labs in labels.items():
        for split, n in (("train", 100), ("test", 40)):
            rows.append(
                _r(model="", analysis="tasks", metric="n_labels", value=len(labs), task=task, split=split)
            )
            rows.append(_r(model="", analysis="tasks", metric="n_examples", value=n, task=task, split=split))
        for ck in CKPTS[1:]:
            rows.append(
                _r(
                    analysis="finetune",
                    metric="loss",
                    value=1.0 / ck,
                    tuned_on=task,
                    checkpoint=ck,
                    task=task,
                    split="train",
                )
            )
    for task in labels:
        for stage, (tuned_on, ck) in enumerate((("", 0), (task, 20))):
            key = {"tuned_on": tuned_on, "checkpoint": ck, "layer": 3, "task": task}
            mean, std = acc[task][stage]
            rows += [
                _r(analysis="probe", metric="accuracy_mean", value=mean, split="test", **key),
                _r(analysis="probe", metric="accuracy_std", value=std, split="test", **key),
                _r(analysis="probe", metric="n_unseen", value=0, split="test", **key),
                _r(analysis="probe", metric="best_h1", value=64 * (stage + 1), **key),
                _r(analysis="probe", metric="best_h2", value=32, **key),
            ]
            s = sim[task][stage]
            linear = 0.0 if math.isnan(s) else 1.0
            for metric, v in (("pearson", s), ("n_pairs", 3), ("n_labels", 3), ("linear", linear)):
                rows.append(
                    _r(analysis="train_test_similarity", metric=metric, value=v, split="train|test", **key)
                )
            if task == "pos":  # nearest-hull and 1-NN prediction of test by the train clustering
                for metric, v in (("intra_accuracy", (0.8, 0.9)[stage]), ("nn_accuracy", (0.7, 0.95)[stage])):
                    rows.append(_r(analysis="directprobe", metric=metric, value=v, split="test", **key))
            n_lab, c0, c1, cr = clusters[task]
            nc = (c0, c1)[stage]
            for control, n_clusters in (("real", nc), ("random", cr)):
                for seed in (0,) if control == "real" else (0, 1):
                    k = {**key, "split": "train", "control": control, "seed": seed}
                    rows += [
                        _r(analysis="directprobe", metric="n_clusters", value=n_clusters + seed, **k),
                        _r(analysis="directprobe", metric="n_labels", value=n_lab, **k),
                        _r(analysis="directprobe", metric="is_linear", value=float(n_clusters == n_lab), **k),
                        _r(analysis="directprobe", metric="n_points", value=100, **k),
                        _r(analysis="directprobe", metric="dim", value=8, **k),
                        _r(analysis="directprobe", metric="effective_dimension", value=6, **k),
                    ]
                    labs = labels[task]
                    for lab in labs[:3]:
                        rows.append(
                            _r(analysis="directprobe", metric="n_points_label", value=5, label=lab, **k)
                        )
                        if control == "random" or task not in outside_min:  # else written below
                            om = 1.0 if control == "real" else 0.1
                            rows.append(
                                _r(analysis="directprobe", metric="outside_min", value=om, label=lab, **k)
                            )
                    for i, a in enumerate(labs[:3]):
                        for b in labs[i + 1 : 3]:
                            d = 2.0 if control == "real" else 0.2
                            rows.append(
                                _r(
                                    analysis="directprobe",
                                    metric="distance",
                                    value=d,
                                    label=a,
                                    label_b=b,
                                    **k,
                                )
                            )
                            rows.append(
                                _r(
                                    analysis="directprobe",
                                    metric="below_cover",
                                    value=0.0,
                                    label=a,
                                    label_b=b,
                                    **k,
                                )
                            )
    # per-label outside_min over checkpoints (Figures 2/6) and its change (F3)
    for task, per_label in outside_min.items():
        for i, ck in enumerate(CKPTS):
            tuned_on = "" if ck == 0 else task
            key = {"tuned_on": tuned_on, "checkpoint": ck, "layer": 3, "task": task, "split": "train"}
            for lab, vals in per_label.items():
                rows.append(_r(analysis="directprobe", metric="outside_min", value=vals[i], label=lab, **key))
            if ck:
                for lab, vals in per_label.items():
                    ch = vals[i] - vals[0]
                    rows.append(
                        _r(analysis="outside_min_change", metric="change", value=ch, label=lab, **key)
                    )
                    rows.append(
                        _r(
                            analysis="outside_min_change",
                            metric="change_scaled",
                            value=ch / 2,
                            label=lab,
                            **key,
                        )
                    )
                ch = [v[i] - v[0] for v in per_label.values()]
                rows += [
                    _r(
                        analysis="outside_min_change", metric="labels_up", value=sum(c > 0 for c in ch), **key
                    ),
                    _r(
                        analysis="outside_min_change",
                        metric="labels_down",
                        value=sum(c < 0 for c in ch),
                        **key,
                    ),
                    _r(analysis="outside_min_change", metric="mean_change", value=sum(ch) / len(ch), **key),
                    _r(analysis="outside_min_change", metric="n_labels", value=len(ch), **key),
                ]
    for tuned_on, per_label in CROSS.items():
        key = {"tuned_on": tuned_on, "checkpoint": 20, "layer": 3, "task": "ps-fxn", "split": "train"}
        for lab, ch in per_label.items():
            rows.append(_r(analysis="outside_min_change", metric="change", value=ch, label=lab, **key))
        ch = list(per_label.values())
        rows += [
            _r(analysis="outside_min_change", metric="labels_up", value=sum(c > 0 for c in ch), **key),
            _r(analysis="outside_min_change", metric="labels_down", value=sum(c < 0 for c in ch), **key),
            _r(analysis="outside_min_change", metric="mean_change", value=sum(ch) / len(ch), **key),
            _r(analysis="outside_min_change", metric="n_labels", value=len(ch), **key),
            _r(analysis="directprobe", metric="is_linear", value=1.0, **key),
            _r(analysis="outside_min_change", metric="mean_change", value=0.01, control="random", **key),
        ]
        rows.append(
            _r(
                analysis="probe",
                metric="accuracy_mean",
                value=CROSS_ACC[tuned_on],
                **{**key, "split": "test"},
            )
        )
    # Figure 4 / F5: similarity to the original, pos tuned on pos
    for layer, vals in sim_orig.items():
        for ck, v in zip(CKPTS, vals, strict=True):
            rows.append(
                _r(
                    analysis="similarity_to_original",
                    metric="pearson",
                    value=v,
                    tuned_on="pos",
                    checkpoint=ck,
                    layer=layer,
                    task="pos",
                    split="train",
                )
            )
    # Figure 3: centroid paths of pos at layers 1 and 3
    for layer in (1, 3):
        for j, lab in enumerate(POS):
            for i, ck in enumerate(CKPTS):
                k = {
                    "tuned_on": "pos" if ck else "",
                    "checkpoint": ck,
                    "layer": layer,
                    "task": "pos",
                    "split": "train",
                    "label": lab,
                }
                spread = 0.1 if layer == 1 else 1.0
                rows.append(_r(analysis="centroid_paths", metric="pc1", value=j + spread * i, **k))
                rows.append(_r(analysis="centroid_paths", metric="pc2", value=spread * i * (j - 1), **k))
        for p, v in ((1, 0.8), (2, 0.15)):
            rows.append(
                _r(
                    analysis="centroid_paths",
                    metric=f"explained_variance_{p}",
                    value=v,
                    tuned_on="pos",
                    checkpoint=20,
                    layer=layer,
                    task="pos",
                    split="train",
                )
            )
    # Figures 5, 7-10: centroid shifts of pos and ps-fxn
    for task, labs in (("pos", POS), ("ps-fxn", FXN)):
        for layer in LAYERS:
            k = {"tuned_on": task, "checkpoint": 20, "layer": layer, "task": task, "split": "train"}
            for j, lab in enumerate(labs):
                norm = SHIFT_NORM[layer] * (1 + j)
                rows += [
                    _r(analysis="centroid_shift", metric="norm", value=norm, label=lab, **k),
                    _r(analysis="centroid_shift", metric="pc1", value=norm * (j - 1), label=lab, **k),
                    _r(analysis="centroid_shift", metric="pc2", value=norm * 0.5, label=lab, **k),
                ]
    return rows
