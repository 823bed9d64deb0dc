"""``tuneprobe directprobe`` end to end on small synthetic files (CliRunner on ``tuneprobe.cli.app``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tuneprobe.cli import app
from tuneprobe.directprobe import commands
from tuneprobe.directprobe.clustering import Clustering

runner = CliRunner()


def one_cluster_per_label(X: np.ndarray, y: np.ndarray, names: list[str], **_: object) -> Clustering:
    """Stand-in for DirectProbe on separable data: one cluster per label, numbered by first member."""
    first: dict[int, int] = {}
    for v in y.tolist():
        first.setdefault(v, len(first))
    assign = np.array([first[v] for v in y.tolist()], dtype=np.int64)
    labels = np.empty(len(first), dtype=np.int64)
    for v, c in first.items():
        labels[c] = v
    return Clustering(assign, labels, len(names), list(names), {"stand_in": True})


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "_fit_clustering", one_cluster_per_label)


def write_split(tmp: Path, name: str, n_per: int, seed: int, labels: list[str]) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(len(labels), 5)) * 8
    X = np.concatenate([c + rng.normal(size=(n_per, 5)) for c in centres]).astype(np.float32)
    lab = [labels[i] for i in range(len(labels)) for _ in range(n_per)]
    perm = rng.permutation(len(lab))
    X, lab = X[perm], [lab[i] for i in perm]
    xp, lp = tmp / f"{name}.npy", tmp / f"{name}.labels.txt"
    np.save(xp, X)
    lp.write_text("".join(f"{v}\n" for v in lab), encoding="utf-8")
    return xp, lp


def read_csv(p: Path) -> list[dict[str, str]]:
    with open(p, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_end_to_end_files_and_rerun(tmp_path: Path, stand_in: None) -> None:
    names = ["PP", "NN", "VB"]
    xp, lp = write_split(tmp_path, "train", 12, 0, names)
    tp, tl = write_split(tmp_path, "test", 4, 1, names)
    tl.write_text(tl.read_text().replace("VB\n", "XX\n", 1))  # one unseen label: an error
    out = tmp_path / "out"
    args = [
        "directprobe",
        "--reps",
        str(xp),
        "--labels",
        str(lp),
        "--out",
        str(out),
        "--predict-reps",
        str(tp),
        "--predict-labels",
        str(tl),
        "--no-progress",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 labels" in res.output

    clusters = (out / "clusters.txt").read_text().splitlines()
    labels_in = lp.read_text().splitlines()
    assert len(clusters) == 36
    # every row's cluster id is an int and clusters are label-pure
    by_cluster: dict[str, set[str]] = {}
    for c, lab in zip(clusters, labels_in, strict=True):
        by_cluster.setdefault(c, set()).add(lab)
    assert all(len(v) == 1 for v in by_cluster.values()) and len(by_cluster) == 3

    dist = read_csv(out / "distances.csv")
    assert list(dist[0]) == ["label_a", "label_b", "distance", "min_distance", "n_cluster_pairs"]
    assert [(r["label_a"], r["label_b"]) for r in dist] == [("NN", "PP"), ("NN", "VB"), ("PP", "VB")]
    assert all(float(r["distance"]) > 0 for r in dist)

    labs = read_csv(out / "labels.csv")
    assert list(labs[0]) == ["label", "n_points", "n_clusters", "min_distance", "inside_mean", "inside_max"]
    assert [r["label"] for r in labs] == ["NN", "PP", "VB"]
    assert all(r["n_points"] == "12" and r["n_clusters"] == "1" for r in labs)
    for r in labs:
        others = [float(d["distance"]) for d in dist if r["label"] in (d["label_a"], d["label_b"])]
        assert float(r["min_distance"]) == pytest.approx(min(others))
        assert 0 < float(r["inside_mean"]) <= float(r["inside_max"])

    cd = read_csv(out / "cluster_distances.csv")
    assert len(cd) == 3 and all(r["converged"] == "true" for r in cd)

    s = json.loads((out / "summary.json").read_text())
    for key in (
        "n_points",
        "n_labels",
        "n_clusters",
        "is_linear",
        "seconds_cluster",
        "seconds_distances",
        "seconds_predict",
        "intra_accuracy",
    ):
        assert key in s
    assert s["n_points"] == 36 and s["n_labels"] == 3 and s["n_clusters"] == 3 and s["is_linear"] is True
    assert s["n_predict"] == 12 and s["n_predict_unseen"] == 1 and s["predict_unseen_labels"] == ["XX"]
    assert s["intra_accuracy"] == pytest.approx(11 / 12)
    preds = (out / "predictions.txt").read_text().splitlines()
    assert len(preds) == 12 and set(preds) <= set(names)

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert before.keys() == after.keys()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind
    for name in before:
        if name != "summary.json":
            assert before[name] == after[name], name

    def strip(b: bytes) -> dict[str, object]:
        return {k: v for k, v in json.loads(b).items() if not k.startswith("seconds")}

    assert strip(before["summary.json"]) == strip(after["summary.json"])


def test_reference_profile(tmp_path: Path, stand_in: None) -> None:
    xp, lp = write_split(tmp_path, "train", 5, 0, ["a", "b", "c"])
    out = tmp_path / "ref"
    res = runner.invoke(
        app, ["directprobe", "--reps", str(xp), "--out", str(out), "--profile", "reference", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    assert s["min_cluster_size"] == 6 and s["undefined"] == "zero"
    assert s["affected_labels"] == ["a", "b", "c"]
    assert all(float(r["distance"]) == 0.0 for r in read_csv(out / "distances.csv"))
    assert not (out / "predictions.txt").exists()


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda xp, lp: lp.unlink(), "no such file"),
        (lambda xp, lp: lp.write_text("a\nb\n"), "2 labels but"),
        (lambda xp, lp: lp.write_text(lp.read_text().replace("b\n", "\n", 1)), "empty line"),
        (
            lambda xp, lp: np.save(xp, np.where(np.arange(15)[:, None] == 3, np.nan, np.load(xp))),
            "NaN or Inf",
        ),
        (lambda xp, lp: np.save(xp, np.zeros((15,))), "expected a float [n, dim] matrix"),
    ],
)
def test_input_errors(tmp_path: Path, stand_in: None, mutate: object, message: str) -> None:
    xp, lp = write_split(tmp_path, "train", 5, 0, ["a", "b", "c"])
    mutate(xp, lp)  # type: ignore[operator]
    res = runner.invoke(
        app,
        [
            "directprobe",
            "--reps",
            str(xp),
            "--labels",
            str(lp),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ],
    )
    assert res.exit_code != 0
    assert message in str(res.exception)


def test_missing_reps_and_task_conflict(tmp_path: Path, stand_in: None) -> None:
    res = runner.invoke(app, ["directprobe", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "either a TASK" in str(res.exception)
    res = runner.invoke(
        app, ["directprobe", "--reps", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code != 0 and "no such file" in str(res.exception)


def test_task_path_uses_extract(tmp_path: Path, stand_in: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import tuneprobe
    from tuneprobe.store.representations import Representations

    calls: list[tuple[str, str]] = []

    def fake_extract(
        task: str, model: str = "default", split: str = "train", layers: object = None, **kw: object
    ) -> Representations:
        calls.append((task, split))
        rng = np.random.default_rng(0 if split == "train" else 1)
        y = np.repeat(np.arange(3), 6 if split == "train" else 2)
        X = (np.eye(3, 4)[y] * 10 + rng.normal(size=(y.size, 4)))[None].astype(np.float32)
        return Representations(X, y, ["a", "b", "c"], [f"e{i}" for i in range(y.size)], [6], {"corpus": "x"})

    monkeypatch.setattr(tuneprobe, "extract", fake_extract)
    out = tmp_path / "t"
    res = runner.invoke(
        app,
        [
            "directprobe",
            "ps-role",
            "--layer",
            "6",
            "--split",
            "train",
            "--predict-split",
            "test",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert calls == [("ps-role", "train"), ("ps-role", "test")]
    s = json.loads((out / "summary.json").read_text())
    assert s["n_points"] == 18 and s["intra_accuracy"] == 1.0 and s["input"]["task"] == "ps-role"
    assert len((out / "predictions.txt").read_text().splitlines()) == 6


def test_with_real_directprobe(tmp_path: Path) -> None:
    pytest.importorskip("tuneprobe.directprobe.cluster")
    xp, lp = write_split(tmp_path, "train", 8, 0, ["a", "b", "c"])
    out = tmp_path / "real"
    res = runner.invoke(app, ["directprobe", "--reps", str(xp), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    assert s["n_clusters"] == 3 and s["is_linear"] is True


def test_max_seconds_marks_an_unfinished_clustering(tmp_path: Path) -> None:
    """Overlapping labels with a budget that is over at once: the run still writes every file, from the clean
    partition it had (singletons), says so on stderr, and summary.json says finished=false and where it
    stopped."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    xp = tmp_path / "x.npy"
    np.save(xp, X)
    (tmp_path / "x.labels.txt").write_text("".join(f"{'ab'[i % 2]}\n" for i in range(40)), encoding="utf-8")
    out = tmp_path / "o"
    args = ["directprobe", "--reps", str(xp), "--out", str(out), "--no-progress", "--max-seconds"]
    res = runner.invoke(app, [*args, "1e-9"])
    assert res.exit_code == 0, res.output
    assert "ran out of its 1e-09 s budget in phase 'end_check'" in res.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["finished"] is False and s["is_linear"] is False and s["stopped_in"] == "end_check"
    assert s["n_clusters"] == 40 and s["max_seconds"] == 1e-9
    assert len((out / "clusters.txt").read_text().split()) == 40
    res = runner.invoke(app, [*args, "3600"])
    assert res.exit_code == 0 and "budget" not in res.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["finished"] is True and "stopped_in" not in s and s["n_clusters"] < 40
    res = runner.invoke(app, [*args, "0"])
    assert res.exit_code != 0 and "must be positive" in res.output
