"""Counts on the real corpora (``TUNEPROBE_DATA``), as in PAPER.md section 2 and the SOURCE.md files."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import conllu
import pytest
from typer.testing import CliRunner

from tuneprobe.cli import app
from tuneprobe.tasks import get_task

pytestmark = pytest.mark.data

# (task, corpus) -> (labels in train, train, dev, test)
EXPECTED = {
    ("pos", "pud"): (17, 16_895, None, 4_281),
    ("dep", "pud"): (45, 16_095, None, 4_081),
    ("pos", "ewt"): (17, 204_577, 25_147, 25_094),
    ("dep", "ewt"): (50, 192_033, 23_146, 23_017),
    ("ps-role", "streusle"): (46, 4_285, 433, 457),
    ("ps-fxn", "streusle"): (38, 4_285, 433, 457),
    ("trec50", "trec"): (50, 5_452, None, 500),
    ("trec6", "trec"): (6, 5_452, None, 500),
}


def test_cli_tasks_json_counts(data_dir: Path, ewt_splits: dict) -> None:
    """End to end: ``tuneprobe tasks --data-dir DIR --json`` prints exactly the expected rows (the EWT splits
    were loaded by the fixture, so their counts are remembered, not read again)."""
    result = CliRunner().invoke(app, ["tasks", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["task"], r["corpus"]) for r in rows] == list(EXPECTED)
    for r in rows:
        assert set(r) == {"task", "corpus", "labels", "train", "dev", "test"}
        assert (r["labels"], r["train"], r["dev"], r["test"]) == EXPECTED[(r["task"], r["corpus"])], r


def test_cli_tasks_table(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["tasks", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "204,577" in result.output and "ps-fxn" in result.output and "trec6" in result.output


def test_pud_split_rule_and_labels(data_dir: Path) -> None:
    pos = get_task("pos", data_dir=data_dir)  # pud is the default corpus
    assert pos.corpus == "pud"
    train, test = pos.load("train"), pos.load("test")
    assert (len(train.sentences), len(test.sentences)) == (800, 200)
    # the test side is every 5th sentence: 100 news (n...) and 100 wiki (w...) sentences
    assert Counter(s[0] for s in test.sentence_ids) == {"n": 100, "w": 100}
    assert len(test.labels) == 16 and "INTJ" not in test.labels
    assert Counter(e.label for e in train.examples)["INTJ"] == 1
    assert not set(train.sentence_ids) & set(test.sentence_ids)
    dep = get_task("dep", data_dir=data_dir)
    dtrain, dtest = dep.load("train"), dep.load("test")
    assert len(dtest.labels) == 42
    assert "dep" in dtest.labels and "dep" not in dtrain.labels
    base = get_task("dep", data_dir=data_dir, base_relation=True)
    btrain, btest = base.load("train"), base.load("test")
    assert (len(btrain.labels), len(btest.labels)) == (33, 30)
    assert btrain.options == {"base_relation": True} and dtrain.options == {"base_relation": False}
    assert btrain.fingerprint() != dtrain.fingerprint()
    assert "nmod:poss" in dtrain.labels and all(":" not in lab for lab in btrain.labels)


def test_pud216_counts(data_dir: Path) -> None:
    pos = get_task("pos", data_dir=data_dir, corpus="pud216")
    assert len(pos.load("train")) + len(pos.load("test")) == 21_180


def test_reader_agrees_with_conllu_package(data_dir: Path) -> None:
    """Our strict reader and ``conllu.parse`` give the same words, UPOS, heads and relations (PUD r2.16 has
    7 empty nodes and 129 multiword tokens)."""
    release = "r2.16"
    path = data_dir / "ud_english_pud" / f"en_pud-ud-test.{release}.conllu.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        ref = conllu.parse(fh.read())
    corpus = "pud216"
    pos, dep = get_task("pos", data_dir, corpus), get_task("dep", data_dir, corpus)
    ours_pos = {}
    ours_dep = {}
    for split in ("train", "test"):
        sp = pos.load(split)
        for e in sp.examples:
            ours_pos[(sp.sentence_ids[e.sentence], e.unit[0])] = (
                sp.sentences[e.sentence][e.unit[0]],
                e.label,
            )
        sd = dep.load(split)
        for e in sd.examples:
            ours_dep[(sd.sentence_ids[e.sentence], e.unit[0])] = (e.unit[1], e.label)
    ref_pos, ref_dep = {}, {}
    for sent in ref:
        words = [t for t in sent if isinstance(t["id"], int)]
        position = {t["id"]: k for k, t in enumerate(words)}
        for k, t in enumerate(words):
            ref_pos[(sent.metadata["sent_id"], k)] = (t["form"], t["upos"])
            if t["head"] != 0:
                ref_dep[(sent.metadata["sent_id"], k)] = (position[t["head"]], t["deprel"])
    assert ours_pos == ref_pos
    assert ours_dep == ref_dep


def test_ewt_splits(ewt_splits: dict) -> None:
    pos, dep = ewt_splits["pos"], ewt_splits["dep"]
    assert [len(pos[s].sentences) for s in ("train", "dev", "test")] == [12_544, 2_001, 2_077]
    for name in ("pos", "dep"):
        train_labels = set(ewt_splits[name]["train"].labels)
        for s in ("dev", "test"):
            assert set(ewt_splits[name][s].labels) <= train_labels
    assert len({lab.split(":")[0] for lab in dep["train"].labels}) == 35
    assert max(len(s) for s in pos["train"].sentences) == 159
    e = dep["train"].examples[0]
    words = dep["train"].sentences[e.sentence]
    assert 0 <= e.unit[0] < len(words) and 0 <= e.unit[1] < len(words) and e.unit[0] != e.unit[1]


def test_streusle_details(data_dir: Path) -> None:
    role = get_task("ps-role", data_dir=data_dir)
    fxn = get_task("ps-fxn", data_dir=data_dir)
    rtrain, ftrain = role.load("train"), fxn.load("train")
    assert len(rtrain.sentences) == 1_859
    assert [e.unit for e in rtrain.examples] == [e.unit for e in ftrain.examples]
    assert sum(a.label != b.label for a, b in zip(rtrain.examples, ftrain.examples, strict=True)) == 1_434
    assert Counter(e.label for e in rtrain.examples).most_common(1) == [("p.Locus", 460)]
    assert Counter(e.label for e in ftrain.examples).most_common(1) == [("p.Gestalt", 701)]
    for task in (role, fxn):
        train_labels = set(task.load("train").labels)
        assert len(task.load("dev").labels) == (39 if task is role else 35)
        assert len(task.load("test").labels) == (39 if task is role else 33)
        assert set(task.load("dev").labels) | set(task.load("test").labels) <= train_labels


def test_trec_details(data_dir: Path) -> None:
    t50 = get_task("trec50", data_dir=data_dir)
    train, test = t50.load("train"), t50.load("test")
    assert train.unit_kind == "sentence" and all(e.unit == () for e in train.examples)
    assert len(test.labels) == 42 and set(test.labels) <= set(train.labels)
    assert max(len(s) for s in train.sentences) == 37
    assert any("\xf0" in w for s in train.sentences for w in s)  # the one latin-1 byte, decoded
    coarse = Counter(e.label for e in get_task("trec6", data_dir=data_dir).load("train").examples)
    assert coarse == {"ABBR": 86, "DESC": 1162, "ENTY": 1250, "HUM": 1223, "LOC": 835, "NUM": 896}
