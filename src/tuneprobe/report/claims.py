"""The claims section: each of the paper's findings F0-F5 (PAPER.md section 1) checked against the rows.

A claim is judged per model, from the same numbers the tables show. Each checkable part of a finding is
``True`` (holds), ``False`` (fails) or ``None`` (not measured: the rows are absent or the premise does not
apply); the verdict is **supported** when every measured part holds, **not supported** when none does,
**partly** otherwise, and **not measured in this run** when no part could be measured. Thresholds that the
paper leaves qualitative are stated in the evidence (F0: ≥ 90 % of cells improve; F5: "≈ 1" means ≥ 0.9).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tuneprobe.report.data import MINILM_LABEL, PAPER_MODELS, at_last_layer, is_minilm, run_series, select
from tuneprobe.report.document import fmt

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
PARTLY = "partly"
NOT_MEASURED = "not measured in this run"

F0_FRACTION = 0.9
"""F0 holds when at least this fraction of (task) cells improve (the paper: 24 of 25)."""
F5_NEAR_ONE = 0.9
"""F5's "≈ 1 in low layers": the lowest layer's similarity to the original stays at or above this."""

CLAIMS: dict[str, tuple[str, str, str]] = {
    "F0": (
        "Fine-tuning improves the MLP probe",
        "Tuned MLP-probe test accuracy > original in 24 of 25 (model, task) cells; the exception is "
        "BERT_small / PS-fxn.",
        "–",
    ),
    "F1": (
        "Train/test divergence",
        "Where both splits are linearly separable, the Pearson similarity of the train and test distance "
        "vectors is lower after fine-tuning than before; the lowest tuned similarity is in the F0 exception.",
        "BERT_small / PS-fxn tuned = 0.44",
    ),
    "F2": (
        "Simplification",
        "Train set, last layer: #clusters > #labels before tuning for most tasks, #clusters(tuned) < "
        "#clusters(original) for every task; TREC-50 falls but stays above #labels.",
        "UNCONFIRMED",
    ),
    "F3": (
        "Labels pushed apart",
        "Last layer, train set: every label's outside_min is higher after fine-tuning than at update 0; "
        "centroids move in different directions and by different amounts.",
        "–",
    ),
    "F4": (
        "Cross-task",
        "Target PS-fxn: tuning on PS-role gives a positive mean outside_min change and slightly higher "
        "accuracy; tuning on POS lowers every label's outside_min and the accuracy; tuning on PS-fxn raises "
        "all labels and gives the best accuracy.",
        "acc. 87.75 original / 88.53 PS-role / 83.24 POS; POS mean change −1.68",
    ),
    "F5": (
        "Layers",
        "Higher layers move more, yet every layer's distance vector keeps Pearson > 0.5 to the original at "
        "every checkpoint, ≈ 1 in low layers.",
        "–",
    ),
}
"""Claim id -> (name, statement, the paper's known numbers)."""


@dataclass
class Verdict:
    """One model's verdict on one claim: the verdict, its reason and the measured evidence lines."""

    model: str
    verdict: str
    reason: str
    evidence: list[str] = field(default_factory=list)

    @property
    def disagrees(self) -> bool:
        return self.verdict in (NOT_SUPPORTED, PARTLY)


@dataclass
class Claim:
    id: str
    name: str
    statement: str
    paper: str
    verdicts: list[Verdict] = field(default_factory=list)
    missing: str = ""


def combine(parts: list[tuple[str, bool | None]]) -> tuple[str, str]:
    """(verdict, reason) from named parts (``None`` = not measured)."""
    measured = [(n, ok) for n, ok in parts if ok is not None]
    if not measured:
        return NOT_MEASURED, "; ".join(n for n, _ in parts) or "no rows"
    held = [n for n, ok in measured if ok]
    failed = [n for n, ok in measured if not ok]
    unmeasured = [n for n, ok in parts if ok is None]
    tail = f"; not measured: {', '.join(unmeasured)}" if unmeasured else ""
    if not failed:
        return SUPPORTED, f"holds: {', '.join(held)}{tail}"
    if not held:
        return NOT_SUPPORTED, f"fails: {', '.join(failed)}{tail}"
    return PARTLY, f"holds: {', '.join(held)}; fails: {', '.join(failed)}{tail}"


def _claim(cid: str) -> Claim:
    name, statement, paper = CLAIMS[cid]
    return Claim(cid, name, statement, paper)


def _models(*frames: pd.DataFrame | None) -> list[str]:
    out: set[str] = set()
    for f in frames:
        if f is not None and len(f):
            out.update(f["model"].astype(str))
    return sorted(out)


# ------------------------------------------------------------------------------------------------- F0, F1


def claim_f0(probing: pd.DataFrame | None) -> Claim:
    """F0 from Table 7's data: tuned vs original MLP accuracy per (model, task)."""
    c = _claim("F0")
    cols = ("accuracy_mean_original", "accuracy_mean_tuned")
    if probing is None or not len(probing):
        c.missing = "needs `probe` rows (accuracy_mean) of the original and the tuned model"
        return c
    for model, g in probing.groupby("model"):
        g = g.dropna(subset=list(cols))
        if g.empty:
            c.verdicts.append(
                Verdict(str(model), NOT_MEASURED, "no cell with both original and tuned accuracy")
            )
            continue
        ev, better = [], 0
        for r in g.itertuples():
            d = r.accuracy_mean_tuned - r.accuracy_mean_original
            spread = np.nanmax([r.accuracy_std_original, r.accuracy_std_tuned, 0.0])
            within = " (within the refit spread)" if abs(d) <= spread else ""
            better += d > 0
            ev.append(
                f"{r.task}: {r.accuracy_mean_original:.2f} → {r.accuracy_mean_tuned:.2f} ({d:+.2f}){within}"
            )
        frac = better / len(g)
        if better == len(g) or frac >= F0_FRACTION:
            verdict = SUPPORTED
        elif better == 0:
            verdict = NOT_SUPPORTED
        else:
            verdict = PARTLY
        worse = list(g[g["accuracy_mean_tuned"] <= g["accuracy_mean_original"]]["task"])
        reason = f"tuned > original in {better} of {len(g)} cells (threshold {F0_FRACTION:.0%})"
        if worse:
            reason += f"; not improved: {', '.join(worse)}"
        c.verdicts.append(Verdict(str(model), verdict, reason, ev))
    return c


def claim_f1(probing: pd.DataFrame | None) -> Claim:
    """F1 from Table 7's data: train/test similarity original vs tuned where both splits are linear."""
    c = _claim("F1")
    if (
        probing is None
        or not len(probing)
        or probing[["similarity_original", "similarity_tuned", "linear_original", "linear_tuned"]]
        .isna()
        .all()
        .all()
    ):
        c.missing = "needs `train_test_similarity` rows (pearson, linear) of the original and the tuned model"
        return c
    for model, g in probing.groupby("model"):
        both = g[(g["linear_original"] == 1) & (g["linear_tuned"] == 1)]
        both = both.dropna(subset=["similarity_original", "similarity_tuned"])
        ev = []
        for r in g.itertuples():
            if r.Index in both.index:
                fell = r.similarity_tuned < r.similarity_original
                ev.append(
                    f"{r.task}: {r.similarity_original:.3f} → {r.similarity_tuned:.3f} "
                    f"({'fell' if fell else 'did not fall'})"
                )
            else:
                ev.append(
                    f"{r.task}: skipped (linear original {fmt(r.linear_original)}, tuned "
                    f"{fmt(r.linear_tuned)}: a similarity needs both splits linearly separable)"
                )
        if both.empty:
            c.verdicts.append(
                Verdict(
                    str(model),
                    NOT_MEASURED,
                    "no cell where both splits are linearly separable, original and tuned",
                    ev,
                )
            )
            continue
        fell = both["similarity_tuned"] < both["similarity_original"]
        main = f"similarity fell in {int(fell.sum())} of {len(both)} linear cells"
        parts: list[tuple[str, bool | None]] = [(main, bool(fell.all()))]
        exc = g.dropna(subset=["accuracy_mean_original", "accuracy_mean_tuned"])
        exc = exc[exc["accuracy_mean_tuned"] <= exc["accuracy_mean_original"]]
        lowest = both.loc[both["similarity_tuned"].idxmin()]
        ev.append(f"lowest tuned similarity: {lowest['task']} ({lowest['similarity_tuned']:.3f})")
        if len(exc) and len(both) >= 2:
            parts.append(
                (
                    f"lowest tuned similarity in an F0 exception cell ({', '.join(exc['task'])})",
                    bool(lowest["task"] in set(exc["task"])),
                )
            )
        verdict, reason = combine(parts)
        if fell.any() and not fell.all():  # some cells fell, some did not: the finding holds in part
            verdict = PARTLY
            reason = f"{main} (not in: {', '.join(both[~fell]['task'])})" + "".join(
                f"; {'holds' if ok else 'fails'}: {name}" for name, ok in parts[1:]
            )
        elif not fell.any():  # the main statement fails everywhere; where the minimum lies is moot
            verdict = NOT_SUPPORTED
        c.verdicts.append(Verdict(str(model), verdict, reason, ev))
    return c


# ---------------------------------------------------------------------------------------------------- F2


def claim_f2(clusters: pd.DataFrame | None) -> Claim:
    """F2 from Table 3's data: cluster counts before/after tuning vs #labels (train, last layer)."""
    c = _claim("F2")
    if clusters is None or not len(clusters):
        c.missing = "needs `directprobe` n_clusters / n_labels rows of the train split, original and tuned"
        return c
    for model, g in clusters.groupby("model"):
        g = g.dropna(subset=["n_clusters_original_real", "n_clusters_tuned_real", "n_labels"])
        if g.empty:
            c.verdicts.append(
                Verdict(str(model), NOT_MEASURED, "no task with both original and tuned #clusters")
            )
            continue
        ev = []
        for r in g.itertuples():
            pts = getattr(r, "n_points", np.nan)
            line = (
                f"{r.task}: {fmt(pts)} points, #labels {fmt(r.n_labels)}, "
                f"#clusters {fmt(r.n_clusters_original_real)} → "
                f"{fmt(r.n_clusters_tuned_real)}"
            )
            if np.isfinite(r.n_clusters_original_random) or np.isfinite(r.n_clusters_tuned_random):
                line += (
                    f" (random labels: {fmt(r.n_clusters_original_random, 1)} → "
                    f"{fmt(r.n_clusters_tuned_random, 1)})"
                )
                if r.is_linear_original_random == 1 or r.is_linear_tuned_random == 1:  # every permutation
                    line += (
                        "; random labels are linearly separable too, so separability alone is "
                        "uninformative here (Cover's theorem, PAPER.md section 8)"
                    )
            ev.append(line)
        above = g["n_clusters_original_real"] > g["n_labels"]
        most = f"original > #labels for most tasks ({int(above.sum())} of {len(g)})"
        parts: list[tuple[str, bool | None]] = []
        if PAPER_MODELS.get(str(model)) == "BERT_tiny":
            parts.append((most, bool(above.sum() > len(g) / 2)))
        else:  # the paper: the larger models are already linearly separable on the token tasks before tuning
            ev.append(f"{most}; the paper states this for BERT_tiny only")
        room = g[above]
        if room.empty:
            parts.append(("tuned < original (every task already linearly separable before tuning)", None))
        else:
            fell = room["n_clusters_tuned_real"] < room["n_clusters_original_real"]
            parts.append(
                (
                    f"tuned < original for every non-separable task ({int(fell.sum())} of {len(room)})",
                    bool(fell.all()),
                )
            )
        lost = g[~above & (g["n_clusters_tuned_real"] > g["n_labels"])]
        if len(lost):
            ev.append(f"separable before tuning but not after: {', '.join(lost['task'])}")
        trec = g[g["task"] == "trec50"]
        if trec.empty:
            parts.append(("trec50 falls but stays > #labels (no trec50 rows)", None))
        else:
            r = trec.iloc[0]
            ok = bool(
                r["n_clusters_tuned_real"] < r["n_clusters_original_real"]
                and r["n_clusters_tuned_real"] > r["n_labels"]
            )
            parts.append(
                (
                    f"trec50 falls but stays > #labels ({fmt(r['n_clusters_original_real'])} → "
                    f"{fmt(r['n_clusters_tuned_real'])} clusters, {fmt(r['n_labels'])} labels)",
                    ok,
                )
            )
        verdict, reason = combine(parts)
        c.verdicts.append(Verdict(str(model), verdict, reason, ev))
    return c


# ---------------------------------------------------------------------------------------------------- F3


def claim_f3(df: pd.DataFrame, layers: dict[str, int]) -> Claim:
    """F3 from ``outside_min_change`` rows (final checkpoint of the run tuned on each task, last layer, train)
    and, as evidence, the spread of ``centroid_shift`` norms."""
    from tuneprobe.report.data import finals

    c = _claim("F3")
    last = at_last_layer(df, layers)
    ch = finals(select(last, analysis="outside_min_change", split="train", control="real"), df)
    ch = ch[(ch["tuned_on"] == ch["task"]) & (ch["label"] != "")]
    if ch.empty:
        c.missing = (
            "needs per-label `outside_min_change` rows of runs tuned on the measured task (train, last layer)"
        )
        return c
    shift = finals(select(last, analysis="centroid_shift", metric="norm", control="real"), df)
    for model, g in ch.groupby("model"):
        parts: list[tuple[str, bool | None]] = []
        ev = []
        for task, t in g.groupby("task"):
            change = select(t, metric="change").groupby("label")["value"].mean().dropna()
            scaled = select(t, metric="change_scaled").groupby("label")["value"].mean().dropna()
            if change.empty:
                continue
            up = int((change > 0).sum())
            low = change.idxmin()
            line = (
                f"{task}: {up} of {len(change)} labels up, mean change {change.mean():+.3f}"
                + (f" (scaled {scaled.mean():+.3f})" if len(scaled) else "")
                + f"; smallest: {low} {change[low]:+.3f}"
            )
            norms = select(shift, model=model, task=task, tuned_on=task)
            norms = norms[norms["label"] != ""].groupby("label")["value"].mean().dropna()
            if len(norms) >= 2 and norms.mean() > 0:
                line += (
                    f"; centroid shift norms {norms.min():.3f}–{norms.max():.3f} "
                    f"(CV {norms.std(ddof=0) / norms.mean():.2f})"
                )
            ev.append(line)
            parts.append((f"{task}: every label up ({up} of {len(change)} up)", up == len(change)))
        if not parts:
            c.verdicts.append(Verdict(str(model), NOT_MEASURED, "no per-label change values"))
            continue
        verdict, reason = combine(parts)
        if verdict == NOT_SUPPORTED:
            pooled = select(g, metric="change")["value"].dropna()
            if len(pooled) and (pooled > 0).mean() > 0.5:
                verdict = PARTLY
                reason = (
                    f"most labels rose ({(pooled > 0).mean():.0%} of label × task values) but not all; "
                    + reason
                )
        c.verdicts.append(Verdict(str(model), verdict, reason, ev))
    return c


# ---------------------------------------------------------------------------------------------------- F4


def claim_f4(cross: pd.DataFrame | None) -> Claim:
    """F4 from Table 5's data (target ps-fxn; another target's rows give the self-tuning part only)."""
    c = _claim("F4")
    if cross is None or not len(cross):
        c.missing = "needs `outside_min_change` rows of ps-fxn measured after tuning on ps-role and on pos"
        return c
    for model, g in cross.groupby("model"):
        target = "ps-fxn" if "ps-fxn" in set(g["target"]) else sorted(g["target"])[0]
        t = g[g["target"] == target]
        acc0 = float(t[t["tuned_on"] == ""]["accuracy"].iloc[0]) if (t["tuned_on"] == "").any() else np.nan
        rows = {r["tuned_on"]: r for r in t.to_dict(orient="records") if r["tuned_on"]}
        ev = [f"target {target}; original accuracy {fmt(acc0)}"]
        for u, r in rows.items():
            ev.append(
                f"tuned on {u}: labels up {fmt(r['labels_up'])}, down {fmt(r['labels_down'])} of "
                f"{fmt(r['n_labels'])}, mean change {fmt(r['mean_change'], 3)}, linear {fmt(r['linear'])}, "
                f"accuracy {fmt(r['accuracy'])}"
            )

        def acc_vs(u: str, higher: bool, rows: dict = rows, acc0: float = acc0) -> bool | None:
            a = rows[u]["accuracy"]
            if np.isnan(a) or np.isnan(acc0):
                return None
            return bool(a > acc0) if higher else bool(a < acc0)

        parts: list[tuple[str, bool | None]] = []
        if target == "ps-fxn":
            if "ps-role" in rows:
                parts.append(("ps-role: mean change > 0", bool(rows["ps-role"]["mean_change"] > 0)))
                parts.append(("ps-role: accuracy above the original", acc_vs("ps-role", True)))
            else:
                parts.append(("tuning on ps-role (no rows)", None))
            if "pos" in rows:
                parts.append(
                    (
                        f"pos: every label down ({fmt(rows['pos']['labels_down'])} down, "
                        f"{fmt(rows['pos']['labels_up'])} up)",
                        bool(rows["pos"]["labels_up"] == 0 and rows["pos"]["labels_down"] > 0),
                    )
                )
                parts.append(("pos: accuracy below the original", acc_vs("pos", False)))
            else:
                parts.append(("tuning on pos (no rows)", None))
        if target in rows:
            r = rows[target]
            parts.append(
                (
                    f"{target} itself: every label up ({fmt(r['labels_up'])} up, "
                    f"{fmt(r['labels_down'])} down)",
                    bool(r["labels_down"] == 0 and r["labels_up"] > 0),
                )
            )
            accs = {u: v["accuracy"] for u, v in rows.items() if np.isfinite(v["accuracy"])}
            if target in accs and len(accs) > 1:
                parts.append((f"{target} itself: the best accuracy", accs[target] == max(accs.values())))
        else:
            parts.append((f"tuning on {target} itself (no rows)", None))
        verdict, reason = combine(parts)
        c.verdicts.append(Verdict(str(model), verdict, reason, ev))
    return c


# ---------------------------------------------------------------------------------------------------- F5


def claim_f5(df: pd.DataFrame) -> Claim:
    """F5 from ``similarity_to_original`` rows over layers and checkpoints, and ``centroid_shift`` norms."""
    from scipy.stats import spearmanr

    from tuneprobe.report.data import finals

    c = _claim("F5")
    sim = select(df, analysis="similarity_to_original", metric="pearson", control="real")
    sim = sim[sim["tuned_on"] != ""]
    shift = finals(select(df, analysis="centroid_shift", metric="norm", control="real"), df)
    shift = shift[(shift["tuned_on"] == shift["task"]) & (shift["label"] != "")]
    if sim.empty and shift.empty:
        c.missing = (
            "needs `similarity_to_original` rows (every layer, several checkpoints) or `centroid_shift` rows"
        )
        return c
    for model in _models(sim, shift):
        parts: list[tuple[str, bool | None]] = []
        ev = []
        s = select(sim, model=model)
        s = s[(s["tuned_on"] == s["task"]) & (s["layer"] >= 1)]
        if s.empty:
            parts += [("similarity > 0.5 everywhere (no rows)", None)]
        else:
            per_layer = []
            for task in sorted(s["task"].unique()):
                t = run_series(s, model, task, task)
                t = t[t["checkpoint"] > 0]
                t = t[t["split"] == ("train" if (t["split"] == "train").any() else sorted(t["split"])[0])]
                m = t.groupby("layer")["value"].min()
                fin = t[t["checkpoint"] == t["checkpoint"].max()].groupby("layer")["value"].mean()
                ev.append(
                    f"{task}: min Pearson to the original per layer: "
                    + ", ".join(f"L{la} {v:.3f}" for la, v in m.items())
                )
                per_layer.append((task, m, fin))
            lowest, where = min((float(m.min()), f"{task} L{m.idxmin()}") for task, m, _ in per_layer)
            parts.append(
                (f"every layer > 0.5 at every checkpoint (lowest {lowest:.3f}, {where})", lowest > 0.5)
            )
            # the lowest layer only of series measured at several layers (a last-layer-only task has none)
            low = [float(m.iloc[0]) for _, m, _ in per_layer if len(m) >= 2]
            if low:
                parts.append(
                    (f"lowest layer ≈ 1 (≥ {F5_NEAR_ONE}; min {min(low):.3f})", min(low) >= F5_NEAR_ONE)
                )
            else:
                parts.append(("lowest layer ≈ 1 (no task measured at several layers)", None))
            rhos = []
            for _, _, fin in per_layer:
                if len(fin) >= 3 and fin.nunique() > 1:
                    rhos.append(float(spearmanr(fin.index, fin.to_numpy()).statistic))
            if rhos:
                ev.append(
                    f"Spearman(layer, final similarity) per task: {', '.join(f'{r:+.2f}' for r in rhos)}"
                )
                parts.append(
                    ("higher layers drift further (similarity falls with layer)", bool(np.mean(rhos) < 0))
                )
        n = select(shift, model=model)
        if n["layer"].nunique() >= 3:
            rhos = []
            for task, t in n.groupby("task"):
                mean_norm = t.groupby("layer")["value"].mean()
                if len(mean_norm) < 3 or mean_norm.nunique() < 2:  # too few layers for a trend
                    continue
                rho = float(spearmanr(mean_norm.index, mean_norm.to_numpy()).statistic)
                rhos.append(rho)
                ev.append(
                    f"{task}: mean centroid shift norm per layer: "
                    + ", ".join(f"L{la} {v:.3f}" for la, v in mean_norm.items())
                    + f" (Spearman {rho:+.2f})"
                )
            if rhos:
                parts.append(("higher layers' centroids move more", bool(np.mean(rhos) > 0)))
        verdict, reason = combine(parts)
        c.verdicts.append(Verdict(model, verdict, reason, ev))
    return c


def disagreement_note(model: str) -> str:
    """Why a model may disagree with the paper: the MiniLM caveat (PAPER.md section 3), or nothing."""
    if is_minilm(model):
        return (
            f"{model} is the {MINILM_LABEL} (PAPER.md section 3): contrastively trained on sentence pairs, "
            "no MLM head, its pre-trained geometry already shaped for semantic similarity; smaller or "
            "different changes than the paper's BERT models are expected."
        )
    if model not in PAPER_MODELS:
        return f"{model} is not one of the paper's models."
    return ""
