"""``tuneprobe report`` on a synthetic results table with known values (see conftest.py)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from tuneprobe.errors import DataNotFoundError
from tuneprobe.experiments.results import ANALYSES, write_rows
from tuneprobe.report import claims as C
from tuneprobe.report import tables as T
from tuneprobe.report.build import build_report
from tuneprobe.report.commands import register
from tuneprobe.report.data import frame_from_rows, last_layers

from .synthetic import CROSS_ACC, OUTSIDE_MIN, SIM_ORIG, synthetic_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def report(synthetic_report):
    return synthetic_report


def _table(rep, tid):
    return {t.id: t for t in rep.tables}[tid]


def _row(frame: pd.DataFrame, **eq) -> dict:
    m = frame
    for k, v in eq.items():
        m = m[m[k] == v]
    assert len(m) == 1, (eq, m)
    return m.iloc[0].to_dict()


def _frame(**over):
    df = frame_from_rows(synthetic_rows(**over))
    return df, last_layers(df)


# ------------------------------------------------------------------------------------------------- tables


def test_tables_have_the_known_numbers(report):
    t1 = _table(report, "table1_models")
    assert _row(t1.display, model="default") == {
        "model": "default",
        "paper name": "–",
        "L": "3",
        "H": "8",
        "heads": "2",
        "parameters": "22.7M",
    }
    t6 = _table(report, "table6_tasks").display
    assert _row(t6, task="trec50")["#labels train"] == "50"
    assert _row(t6, task="pos")["#train"] == "100" and _row(t6, task="pos")["#test"] == "40"

    t7 = _table(report, "table7_probing")
    pos = _row(t7.display, task="pos")
    assert pos["MLP acc. original"] == "80.00 ± 1.00" and pos["MLP acc. tuned"] == "90.00 ± 1.00"
    assert pos["(h1, h2) original"] == "(64, 32)" and pos["(h1, h2) tuned"] == "(128, 32)"
    assert pos["similarity original"] == "0.900" and pos["similarity tuned"] == "0.600"
    assert pos["similarity fell"] == "yes" and pos["layer"] == 3
    assert pos["shared labels (orig. / tuned)"] == "3 / 3"
    assert _row(t7.display, task="trec50")["similarity tuned"] == "non-linear"
    assert _row(t7.data, task="ps-fxn")["similarity_tuned"] == pytest.approx(0.44)

    t3 = _table(report, "table3_clusters")
    pos = _row(t3.display, task="pos")
    got = (pos["#labels"], pos["#clusters original"], pos["#clusters tuned"], pos["change"])
    assert got == ("3", "5", "3", "-2")
    # random-label control beside it: seeds 0 and 1 give 40 and 41 clusters
    assert pos["random original"] == "40.5" and pos["random tuned"] == "40.5"
    t4 = _table(report, "table4_clusters_trec50")
    assert list(t4.display["task"]) == ["trec50"]
    assert _row(t4.display, task="trec50")["tuned > #labels"] == "yes"

    t5 = _table(report, "table5_cross_task").data
    assert _row(t5, tuned_on="")["accuracy"] == 70.0
    pos = _row(t5, tuned_on="pos")
    assert (pos["labels_up"], pos["labels_down"], pos["accuracy"]) == (0, 3, CROSS_ACC["pos"])
    assert pos["mean_change"] == pytest.approx(-3.5 / 3)
    role = _row(t5, tuned_on="ps-role")
    assert (role["labels_up"], role["labels_down"]) == (2, 1)
    assert role["mean_change"] == pytest.approx(0.4 / 3)
    assert role["mean_change_random"] == 0.01  # the random-label control beside it
    assert list(t5["tuned_on"]) == ["", "ps-fxn", "pos", "ps-role"]  # original, the target itself, others

    pred = _table(report, "prediction_directprobe").display
    assert _row(pred, stage="original") == {
        "model": "default",
        "task": "pos",
        "stage": "original",
        "predicted split": "test",
        "intra-accuracy": "80.00",
        "1-NN accuracy": "70.00",
        "MLP accuracy": "80.00",
        "intra ≥ 1-NN": "yes",
    }
    assert (
        _row(pred, stage="tuned")["intra ≥ 1-NN"] == "no"
        and _row(pred, stage="tuned")["MLP accuracy"] == "90.00"
    )

    ctrl = _table(report, "control_random_labels").data
    cell = _row(ctrl, task="pos", checkpoint=0)
    assert (cell["n_clusters_real"], cell["n_clusters_random"]) == (5, 40.5)
    assert (cell["mean_distance_real"], cell["mean_distance_random"]) == (2.0, pytest.approx(0.2))
    assert cell["cover_threshold"] == 9 and cell["pairs_below_cover"] == 0 and cell["n_pairs"] == 3


def test_every_table_written_as_csv_and_markdown(report):
    md = report.markdown.read_text()
    for t in report.tables:
        if t.missing:
            continue
        back = pd.read_csv(t.csv_path, keep_default_na=False)
        assert len(back) == len(t.data)
        assert t.title in md
        header = "| " + " | ".join(t.display.columns) + " |"
        assert header in md
    assert "| default | pos | 3 | 80.00 ± 1.00 | 90.00 ± 1.00 |" in md


def test_missing_table_and_figures_are_listed_not_faked(report):
    t2 = _table(report, "table2_probing_small")
    assert t2.missing and "BERT_small" in t2.missing and t2.data is None
    figs = {f.id: f for f in report.figures}
    dep = figs["fig8_centroid_shift_default_dep"]
    assert dep.missing and dep.png is None
    assert not list((report.out / "figures").glob("*dep*"))
    md = report.markdown.read_text()
    section = md.split("## Not in this run")[1]
    assert "Table 2." in section and "Figure 8." in section and "Figure 10." in section
    assert "Figure 7." not in section


# ------------------------------------------------------------------------------------------------ figures


def test_every_figure_file_is_a_valid_png_and_svg(report):
    import xml.etree.ElementTree as ET

    drawn = [f for f in report.figures if f.missing is None]
    assert {re.match(r"fig(\d+)", f.id).group(1) for f in drawn} == {"2", "3", "4", "5", "6", "7", "9"}
    for f in drawn:
        data = f.png.read_bytes()
        assert data[:8] == PNG_MAGIC
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width > 100 and height > 100
        root = ET.parse(f.svg).getroot()
        assert root.tag.endswith("svg") and float(root.get("width").rstrip("pt")) > 0
        assert f"figures/{f.png.name}" in report.markdown.read_text()


@pytest.mark.parametrize("with_change_rows", [True, False])
def test_figure_2_picks_the_labels_by_gain(tmp_path, with_change_rows):
    from tuneprobe.report.figures import outside_min_figure

    many = {"pos": {f"L{i}": (1.0, 1.0, 1.0 + i) for i in range(8)}}  # gain = i
    df, layers = _frame(outside_min=many)
    if not with_change_rows:  # ranked from the directprobe outside_min series instead
        df = df[df["analysis"] != "outside_min_change"]
    fig = outside_min_figure(df, layers, "default", tmp_path, tasks=["pos"], figure="2")
    text = _svg_text(fig.svg.read_text())
    for i in (7, 6, 5, 0, 1, 2):  # the 3 largest and the 3 smallest gains, each with its gain in the legend
        assert f"L{i} (+{i:.2f})" in text
    for i in (3, 4):
        assert f"L{i} (" not in text


def _svg_text(svg: str) -> str:
    """Text drawn in an SVG written with svg.fonttype 'path': matplotlib keeps it in comments."""
    return " ".join(re.findall(r"<!-- (.*?) -->", svg))


# ------------------------------------------------------------------------------------------------- claims


def _verdict(claim: C.Claim, model: str = "default") -> C.Verdict:
    return {v.model: v for v in claim.verdicts}[model]


def test_claim_verdicts_of_the_synthetic_run(report):
    got = {c.id: _verdict(c).verdict for c in report.claims}
    assert got == {
        "F0": C.PARTLY,
        "F1": C.SUPPORTED,
        "F2": C.SUPPORTED,
        "F3": C.SUPPORTED,
        "F4": C.PARTLY,
        "F5": C.SUPPORTED,
    }
    f1 = _verdict({c.id: c for c in report.claims}["F1"])
    assert any("0.900 → 0.600 (fell)" in e for e in f1.evidence)
    assert "ps-fxn" in f1.reason  # the lowest tuned similarity is in the F0 exception cell
    md = report.markdown.read_text()
    assert "Disagrees with the paper here" in md and "sentence-embedding pre-trained MiniLM" in md


def test_f1_fails_when_similarity_rises():
    df, layers = _frame(sim={"pos": (0.5, 0.9), "ps-fxn": (0.6, 0.7), "trec50": (math.nan, math.nan)})
    v = _verdict(C.claim_f1(T.probing_table(df, layers).data))
    assert v.verdict == C.NOT_SUPPORTED and "fell in 0 of 2" in v.reason


def test_f1_partly_and_not_measured():
    df, layers = _frame(sim={"pos": (0.9, 0.6), "ps-fxn": (0.6, 0.7), "trec50": (math.nan, math.nan)})
    v = _verdict(C.claim_f1(T.probing_table(df, layers).data))
    assert v.verdict == C.PARTLY and v.reason.startswith(
        "similarity fell in 1 of 2 linear cells (not in: ps-fxn)"
    )
    nan = (math.nan, math.nan)
    df, layers = _frame(sim={"pos": nan, "ps-fxn": nan, "trec50": nan})
    assert _verdict(C.claim_f1(T.probing_table(df, layers).data)).verdict == C.NOT_MEASURED


def test_f2_fails_when_clusters_grow():
    df, layers = _frame(clusters={"pos": (3, 3, 6, 40), "ps-fxn": (3, 3, 5, 30), "trec50": (50, 50, 70, 300)})
    v = _verdict(C.claim_f2(T.clusters_table(df, layers).data))
    assert v.verdict == C.NOT_SUPPORTED  # trec50 rises (50 -> 70) instead of falling
    assert "fails: trec50" in v.reason
    assert "every task already linearly separable before tuning" in v.reason  # nothing else to simplify
    assert any("original > #labels for most tasks (0 of 3)" in e for e in v.evidence)  # BERT_tiny only
    assert any("not after: pos, ps-fxn, trec50" in e for e in v.evidence)
    assert not any("uninformative" in e for e in v.evidence)
    df, layers = _frame(clusters={"pos": (3, 3, 3, 3), "ps-fxn": (3, 4, 3, 30), "trec50": (50, 80, 60, 300)})
    v = _verdict(C.claim_f2(T.clusters_table(df, layers).data))
    pos = next(e for e in v.evidence if e.startswith("pos:"))
    assert "random labels are linearly separable too" in pos  # 3 random-label clusters for 3 labels


def test_f3_fails_when_labels_move_closer_and_partly_when_some_do():
    down = {t: {lab: (v[0], v[0], v[0] - 0.1) for lab, v in labs.items()} for t, labs in OUTSIDE_MIN.items()}
    df, layers = _frame(outside_min=down)
    assert _verdict(C.claim_f3(df, layers)).verdict == C.NOT_SUPPORTED
    mixed = {**OUTSIDE_MIN, "pos": {"A": (1.0, 1.0, 0.5), "B": (1.0, 1.0, 1.5), "C": (1.0, 1.0, 1.5)}}
    df, layers = _frame(outside_min=mixed)
    v = _verdict(C.claim_f3(df, layers))
    assert v.verdict == C.PARTLY and "pos: every label up" in v.reason.split("fails:")[1]


def test_f4_supported_when_self_tuning_gives_the_best_accuracy():
    acc = {
        "pos": ((80.0, 1.0), (90.0, 1.0)),
        "ps-fxn": ((70.0, 2.0), (75.0, 1.0)),  # tuned on itself: 75, above ps-role's 72
        "trec50": ((60.0, 0.5), (70.0, 0.5)),
    }
    df, layers = _frame(acc=acc)
    assert _verdict(C.claim_f4(T.cross_task_table(df, layers).data)).verdict == C.SUPPORTED


def test_f5_fails_below_half():
    low = {**SIM_ORIG, 3: (1.0, 0.4, 0.3)}
    df, _ = _frame(sim_orig=low)
    v = _verdict(C.claim_f5(df))
    assert v.verdict == C.PARTLY and "lowest 0.300" in v.reason


def test_missing_analyses_are_reported_missing(tmp_path):
    keep = {"models", "tasks", "probe"}
    rows = [r for r in synthetic_rows() if r["analysis"] in keep]
    d = tmp_path / "run"
    write_rows(rows, d / "results.csv")  # the CSV form of the table
    for old in (
        "figures/fig9_old.png",
        "figures/fig9_old.svg",
        "tables/table3_clusters.csv",
        "figures/notes.txt",
    ):
        (d / "report" / old).parent.mkdir(parents=True, exist_ok=True)
        (d / "report" / old).write_text("from an earlier report")
    rep = build_report(d)
    assert [p.name for p in (rep.out / "figures").iterdir()] == ["notes.txt"]  # stale figures removed
    assert not (rep.out / "tables" / "table3_clusters.csv").exists()
    assert (rep.out / "tables" / "table1_models.csv").is_file()
    tabs = {t.id: t for t in rep.tables}
    assert tabs["table1_models"].missing is None and tabs["table7_probing"].missing is None
    for tid in ("table3_clusters", "table4_clusters_trec50", "table5_cross_task", "control_random_labels"):
        assert tabs[tid].missing, tid
    assert all(f.missing for f in rep.figures)
    got = {c.id: (_verdict(c).verdict if c.verdicts else C.NOT_MEASURED) for c in rep.claims}
    assert got["F0"] == C.PARTLY
    assert got["F1"] == got["F2"] == got["F3"] == got["F4"] == got["F5"] == C.NOT_MEASURED
    md = rep.markdown.read_text()
    for name in set(ANALYSES) - keep:
        assert f"`{name}`:" in md.split("Analyses with no rows in this run:")[1]


# ---------------------------------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command, so that typer keeps 'report' as a subcommand
        pass

    return app


def test_cli_writes_the_report_and_links_explorer_pages(tmp_path):
    d = tmp_path / "run"
    rows = [r for r in synthetic_rows() if r["analysis"] in ("models", "tasks", "probe")]  # no figures: fast
    write_rows(rows, d / "results.parquet")
    (d / "explore").mkdir()
    (d / "explore" / "pos.html").write_text("<html></html>")
    (d / "config.toml").write_text("[grid]\ntasks = ['pos']\n")
    out = tmp_path / "elsewhere"
    res = CliRunner().invoke(_app(), ["report", str(d), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "tables" in res.output and "report.html" in res.output
    md = (out / "report.md").read_text()
    assert "[pos](../run/explore/pos.html)" in md  # only the page that exists
    assert "explore/ps-fxn.html" not in md
    assert "tasks = ['pos']" in md
    html = (out / "report.html").read_text()
    assert 'href="../run/explore/pos.html"' in html


def test_cli_clear_error_without_results_table(tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(_app(), ["report", str(tmp_path / "empty")])
    assert res.exit_code != 0
    assert isinstance(res.exception, DataNotFoundError)
    assert "results.parquet or results.csv" in str(res.exception)
    with pytest.raises(DataNotFoundError, match="no such results directory"):
        build_report(tmp_path / "nowhere")


def test_html_is_self_contained(report):
    html = report.html.read_text()
    assert not re.search(r"""(src|href)=["']https?:""", html)
    assert '<link rel="stylesheet"' not in html and "<script" not in html
    n_drawn = sum(f.missing is None for f in report.figures)
    assert html.count('src="data:image/png;base64,') == n_drawn
    assert Path(report.out / "report.md").is_file()


def test_run_configuration_from_run_json(tmp_path):
    import json

    from tuneprobe.report.build import _run_configuration
    from tuneprobe.report.document import Code, Items

    (tmp_path / "run.json").write_text(
        json.dumps({"config": {"source": "cfg.toml", "toml": "[run]\nname = 'tiny'\n"}, "device": "cpu"})
    )
    (tmp_path / "other.toml").write_text("ignored = true\n")
    blocks = _run_configuration(tmp_path)
    codes = [b.text for b in blocks if isinstance(b, Code)]
    assert codes == ["[run]\nname = 'tiny'\n"]
    facts = next(b for b in blocks if isinstance(b, Items)).items
    assert "Config: `cfg.toml`" in facts and "Device: cpu" in facts
    assert _run_configuration(tmp_path / "nothing") == []


def test_several_fine_tuning_seeds_are_averaged():
    rows = synthetic_rows()
    seed1 = [
        dict(r, seed=1, value=r["value"] + 2)
        for r in rows
        if r["analysis"] == "probe" and r["tuned_on"] == "pos"
    ]
    df = frame_from_rows(rows + seed1)
    t = T.probing_table(df, last_layers(df))
    pos = _row(t.display, task="pos")
    assert pos["MLP acc. tuned"] == "91.00 ± 2.00"  # means of (90, 92) and of the refit stds (1, 3)
    assert pos["(h1, h2) tuned"] == "varies by seed" and pos["(h1, h2) original"] == "(64, 32)"
    data = _row(t.data, task="pos")
    assert (data["n_seeds_tuned"], data["accuracy_seed_std_tuned"]) == (2, 1.0)
    assert any("2 fine-tuning seeds" in n for n in t.notes)


def test_f5_ignores_a_task_measured_at_the_last_layer_only():
    """A last-layer-only task (trec50 in the offline-paper grid) has no lowest layer and no layer trend: it
    must not fail "lowest layer ≈ 1" with its last layer, nor turn the centroid-shift trend into NaN."""
    rows = synthetic_rows()
    base = C.claim_f5(frame_from_rows(rows)).verdicts[0]
    extra = []
    for r in rows:
        same_task = r["task"] == "pos" and r["layer"] == 3
        if r["analysis"] == "similarity_to_original" and same_task:
            extra.append({**r, "task": "trec50", "tuned_on": "trec50", "value": 0.6})
        if r["analysis"] == "centroid_shift" and r["metric"] == "norm" and same_task:
            extra.append({**r, "task": "trec50", "tuned_on": "trec50"})
    assert extra
    v = C.claim_f5(frame_from_rows(rows + extra)).verdicts[0]
    assert v.verdict == base.verdict == C.SUPPORTED, v.reason
    assert "min 0.980" in v.reason and "higher layers' centroids move more" in v.reason


def test_run_configuration_sums_the_compute_every_job_recorded(tmp_path):
    """The cost of a run resumed over several invocations: the seconds the runner summed over the plan's jobs
    (``run.json``'s ``seconds_by_kind``), in total and per kind."""
    import json

    d = tmp_path / "run"
    write_rows(synthetic_rows(), d / "results.csv")
    by_kind = {
        "directprobe": {"jobs": 1, "seconds": 10.0, "cpu_seconds": 4.0},
        "finetune": {"jobs": 1, "seconds": 20.0, "cpu_seconds": 18.0},
    }
    (d / "run.json").write_text(json.dumps({"seconds_by_kind": by_kind}))
    md = build_report(d).markdown.read_text()
    line = next(x for x in md.splitlines() if "Compute recorded by the jobs" in x)
    assert "2 jobs, 30 s wall" in line and "22 s CPU" in line, line
    assert "finetune 20 s, directprobe 10 s" in line
