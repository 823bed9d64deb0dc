"""Assemble the report: tables (markdown + CSV), figures (PNG + SVG), the claims section, one HTML page.

:func:`build_report` reads ``RESULTS_DIR/results.parquet`` (or ``.csv``) and writes, under ``OUT`` (default
``RESULTS_DIR/report``)::

    report.md            every table and figure, the claims, what is not in this run
    report.html          the same, self-contained (CSS inline, figures as base64 PNG)
    tables/<id>.csv      each table's raw numbers
    figures/<id>.png|svg each figure
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from tuneprobe.experiments.results import ANALYSES
from tuneprobe.report import claims as C
from tuneprobe.report import figures as F
from tuneprobe.report import tables as T
from tuneprobe.report.data import PAPER_MODELS, last_layers, load_results, model_label
from tuneprobe.report.document import Block, Code, Figure, Heading, Items, Para, Table, to_html, to_markdown

BERT_SMALL = "google/bert_uncased_L-4_H-512_A-8"


@dataclass
class Report:
    """What :func:`build_report` wrote, and the pieces it was made of."""

    out: Path
    markdown: Path
    html: Path
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    claims: list[C.Claim] = field(default_factory=list)


def _models(df: pd.DataFrame) -> list[str]:
    models = sorted(m for m in df["model"].unique() if m)
    return models or ["(no model)"]


def make_tables(df: pd.DataFrame, layers: dict[str, int]) -> list[Table]:
    """Every table, in report order (a table the run has no rows for carries ``missing``)."""
    small = BERT_SMALL if (df["model"] == BERT_SMALL).any() else None
    t2 = T.probing_table(df, layers, only_model=BERT_SMALL)
    if small is None:
        t2.display = t2.data = None
        t2.missing = (
            f"model {BERT_SMALL} (BERT_small): Table 2 is Table 7's BERT_small rows; Table 7 lists the "
            "models of this run."
        )
    return [
        T.models_table(df),
        T.tasks_table(df),
        T.probing_table(df, layers),
        t2,
        T.clusters_table(df, layers),
        T.clusters_table(df, layers, task="trec50"),
        T.cross_task_table(df, layers),
        T.control_table(df),
        T.prediction_table(df, layers),
    ]


def make_figures(
    df: pd.DataFrame, layers: dict[str, int], fig_dir: Path, log: Callable[[str], None]
) -> list[Figure]:
    """Every figure for every model of the run (missing ones say what they need)."""
    out: list[Figure] = []
    for model in _models(df):
        m = df[(df["model"] == model) & (df["task"] != "")]
        paths_tasks = sorted(m[m["analysis"] == "centroid_paths"]["task"].unique()) or ["pos"]
        shifted = m[(m["analysis"] == "centroid_shift") & (m["tuned_on"] != "")]
        shift_runs = sorted(
            {(t, t) for t in F.TASK_FIGURE} | set(zip(shifted["task"], shifted["tuned_on"], strict=True)),
            key=lambda tu: (tu[0] != tu[1], F.TASK_FIGURE.get(tu[0], 99), tu),
        )
        jobs: list[tuple[str, Callable[[], Figure]]] = [
            (
                "Figure 2",
                partial(
                    F.outside_min_figure, df, layers, model, fig_dir, tasks=["ps-role", "pos"], figure="2"
                ),
            ),
            ("Figure 6", partial(F.outside_min_figure, df, layers, model, fig_dir, figure="6")),
            *[
                (f"Figure 3 ({t})", partial(F.centroid_paths_figure, df, model, t, fig_dir))
                for t in paths_tasks
            ],
            ("Figure 4", partial(F.similarity_figure, df, model, fig_dir)),
            ("Figure 5", partial(F.centroid_shift_figure, df, model, "pos", fig_dir, every_other=True)),
            *[
                (
                    f"Figure {F.TASK_FIGURE.get(t, 'S') if t == u else 'S'} ({t}, tuned on {u})",
                    partial(F.centroid_shift_figure, df, model, t, fig_dir, tuned_on=u),
                )
                for t, u in shift_runs
            ],
        ]
        for name, job in jobs:
            fig = job()
            log(f"report: {name}, {model}: " + ("not in this run" if fig.missing else fig.id))
            out.append(fig)
    return out


def make_claims(df: pd.DataFrame, layers: dict[str, int], tables: list[Table]) -> list[C.Claim]:
    """F0-F5, judged from the tables' data and the rows."""
    by_id = {t.id: t.data for t in tables}
    probing = by_id.get("table7_probing")
    return [
        C.claim_f0(probing),
        C.claim_f1(probing),
        C.claim_f2(by_id.get("table3_clusters")),
        C.claim_f3(df, layers),
        C.claim_f4(by_id.get("table5_cross_task")),
        C.claim_f5(df),
    ]


def _claim_blocks(claims: list[C.Claim]) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Claims", "claims"),
        Para(
            "Each finding of the paper (PAPER.md section 1), judged per model from this run's rows: "
            "**supported** (every measured part holds), **partly**, **not supported** (no measured part "
            "holds) or **not measured in this run**. Compare signs and orderings, not decimals: STREUSLE "
            "4.7.1 is not 4.2, the PUD split is ours, and each cell is one fine-tuning run unless several "
            "seeds are listed."
        ),
    ]
    summary = []
    for c in claims:
        if not c.verdicts:
            summary.append(
                {"claim": f"{c.id} {c.name}", "model": "–", "verdict": C.NOT_MEASURED, "reason": c.missing}
            )
        for v in c.verdicts:
            summary.append(
                {"claim": f"{c.id} {c.name}", "model": v.model, "verdict": v.verdict, "reason": v.reason}
            )
    blocks.append(Table("claims", "Verdicts.", display=pd.DataFrame(summary), data=pd.DataFrame(summary)))
    for c in claims:
        blocks.append(Heading(3, f"{c.id}: {c.name}", f"claim-{c.id}"))
        blocks.append(Para(f"*Paper:* {c.statement} Known numbers: {c.paper}."))
        if not c.verdicts:
            blocks.append(Para(f"**{C.NOT_MEASURED}**: {c.missing}."))
        for v in c.verdicts:
            blocks.append(Para(f"**{model_label(v.model)}: {v.verdict}**: {v.reason}."))
            if v.evidence:
                blocks.append(Items(v.evidence))
            note = C.disagreement_note(v.model)
            if v.disagrees:
                blocks.append(Para(f"Disagrees with the paper here. {note}".rstrip()))
    return blocks


def _explorer_links(df: pd.DataFrame, results_dir: Path, out: Path) -> list[str]:
    items = []
    for task in sorted(t for t in df["task"].unique() if t):
        page = results_dir / "explore" / f"{task}.html"
        if page.is_file():
            rel = Path(os.path.relpath(page, out)).as_posix()
            items.append(f"[{task}]({rel})")
    return items


def _recorded_compute(info: dict) -> str:
    """The compute the run's jobs recorded, from ``run.json``'s ``seconds_by_kind`` (the runner sums every
    job of the plan there, whichever invocation ran it), so a grid that was interrupted and resumed still
    shows its whole cost. "" when the run recorded none."""
    by_kind = info.get("seconds_by_kind")
    if not isinstance(by_kind, dict):
        return ""
    try:
        wall = {str(k): float(v["seconds"]) for k, v in by_kind.items()}
        cpu = sum(float(v.get("cpu_seconds", 0.0)) for v in by_kind.values())
        n = sum(int(v.get("jobs", 0)) for v in by_kind.values())
    except (KeyError, TypeError, ValueError, AttributeError):
        return ""
    if not n:
        return ""
    per_kind = ", ".join(f"{k} {v:,.0f} s" for k, v in sorted(wall.items(), key=lambda kv: -kv[1]))
    return (
        f"Compute recorded by the jobs (all invocations): {n} jobs, {sum(wall.values()):,.0f} s wall "
        f"({sum(wall.values()) / 3600:.2f} h), {cpu:,.0f} s CPU; by kind: {per_kind}"
    )


def _run_configuration(results_dir: Path) -> list[Block]:
    """The run's configuration (every deviation from the paper's schedule is documented there): the config
    TOML and environment recorded in ``run.json`` by the runner, else any ``*.toml`` beside the table."""
    blocks: list[Block] = []
    info: dict = {}
    if (results_dir / "run.json").is_file():
        try:
            info = json.loads((results_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
    cfg = info.get("config") if isinstance(info.get("config"), dict) else {}
    facts = []
    if cfg.get("source"):
        facts.append(f"Config: `{cfg['source']}`")
    if isinstance(info.get("versions"), dict):
        facts.append("Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    if info.get("device"):
        facts.append(f"Device: {info['device']}")
    inv = info.get("invocation") if isinstance(info.get("invocation"), dict) else {}
    if inv.get("started"):
        facts.append(
            f"Last invocation: {inv.get('started')} to {inv.get('finished', '?')} "
            f"({inv.get('executed', '?')} jobs run, {inv.get('skipped', '?')} reused)"
        )
    compute = _recorded_compute(info)
    if compute:
        facts.append(compute)
    texts = [("config", cfg["toml"])] if isinstance(cfg.get("toml"), str) else []
    if not texts:
        texts = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(results_dir.glob("*.toml"))]
    if facts or texts:
        blocks.append(Heading(2, "Run configuration", "config"))
        if facts:
            blocks.append(Items(facts))
        for name, text in texts:
            blocks.append(Para(f"`{name}`:"))
            blocks.append(Code(text))
    return blocks


def build_report(
    results_dir: str | Path, out: str | Path | None = None, *, log: Callable[[str], None] | None = None
) -> Report:
    """Read ``results_dir``'s results table and write the report to ``out`` (default
    ``results_dir/report``)."""
    say = log or (lambda _msg: None)
    results_dir = Path(results_dir)
    df, source = load_results(results_dir)
    say(f"report: {source} ({len(df)} rows)")
    out_dir = Path(out) if out is not None else results_dir / "report"
    fig_dir, tab_dir = out_dir / "figures", out_dir / "tables"
    tab_dir.mkdir(parents=True, exist_ok=True)
    layers = last_layers(df)

    tables = make_tables(df, layers)
    from tuneprobe.store.arrays import atomic_write_text

    for t in tables:
        say(
            f"report: {t.title.split('.')[0]}: " + ("not in this run" if t.missing else f"{len(t.data)} rows")
        )
        if t.data is not None:
            t.csv_path = tab_dir / f"{t.id}.csv"
            atomic_write_text(
                t.csv_path, t.data.to_csv(index=False, float_format="%.10g", lineterminator="\n")
            )
    figures = make_figures(df, layers, fig_dir, say)
    claims = make_claims(df, layers, tables)
    written = {t.csv_path for t in tables} | {p for f in figures for p in (f.png, f.svg)}
    for folder, patterns in ((tab_dir, ("*.csv",)), (fig_dir, ("*.png", "*.svg"))):
        for pattern in patterns:  # a table or figure of an earlier report that this run no longer has
            for stale in folder.glob(pattern):
                if stale not in written:
                    stale.unlink()

    present = set(df["analysis"].unique())
    models = [m for m in _models(df) if m != "(no model)"]
    tasks = sorted(t for t in df["task"].unique() if t)
    blocks: list[Block] = [
        Heading(1, "tuneprobe report"),
        Para(f"Results table: `{source}` ({len(df)} rows). Every number below is drawn from its rows."),
        Items(
            [
                f"Models: {', '.join(model_label(m) for m in models) or 'none'}",
                f"Tasks: {', '.join(tasks) or 'none'}",
                "Last layer per model: "
                + (", ".join(f"{m} {la}" for m, la in sorted(layers.items())) or "none"),
                f"Analyses present: {', '.join(a for a in ANALYSES if a in present) or 'none'}",
            ]
        ),
    ]
    if any(m not in PAPER_MODELS for m in models):
        blocks.append(
            Para(
                "Models outside the paper's BERT family are labelled as such; the offline default is the "
                f"{C.MINILM_LABEL} (PAPER.md section 3 caveat), so expect smaller or different changes than "
                "the paper reports."
            )
        )
    blocks.append(
        Para(
            "Contents: [Claims](#claims) · [Tables](#tables) · [Figures](#figures) · "
            "[Not in this run](#not-in-this-run) · [Explorer](#explorer)"
        )
    )
    absent = [f"`{a}`: {doc}" for a, doc in ANALYSES.items() if a not in present]
    blocks += _claim_blocks(claims)
    blocks.append(Heading(2, "Tables", "tables"))
    blocks += tables
    blocks.append(Heading(2, "Figures", "figures"))
    blocks += [f for f in figures if f.missing is None]
    blocks.append(Heading(2, "Not in this run", "not-in-this-run"))
    not_here = [f"{x.title} Needs: {x.missing}" for x in [*tables, *figures] if x.missing is not None]
    blocks.append(Items(not_here) if not_here else Para("Every table and figure was drawn."))
    if absent:
        blocks.append(Para("Analyses with no rows in this run:"))
        blocks.append(Items(absent))
    blocks.append(Heading(2, "Explorer", "explorer"))
    links = _explorer_links(df, results_dir, out_dir)
    blocks.append(
        Items(links)
        if links
        else Para(
            "No per-task explorer pages yet (`tuneprobe explore` writes them to "
            "`RESULTS_DIR/explore/<task>.html`)."
        )
    )
    blocks += _run_configuration(results_dir)

    md = out_dir / "report.md"
    html_path = out_dir / "report.html"
    atomic_write_text(md, to_markdown(blocks, out_dir))
    atomic_write_text(html_path, to_html(blocks, f"tuneprobe report: {results_dir.name}", out_dir))
    say(f"report: wrote {md} and {html_path}")
    return Report(out_dir, md, html_path, tables, figures, claims)
