"""STREUSLE and TREC readers on small made-up files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tuneprobe.errors import DataFormatError
from tuneprobe.tasks import get_task


def _streusle_dir(tmp_path: Path, syn: SimpleNamespace, train: str) -> Path:
    root = tmp_path / "data"
    other = syn.sentence("o-1", [syn.conllulex_line("1", "of", lexcat="P", ss="p.Topic", ss2="p.Topic")])
    for split, text in (("train", train), ("dev", other), ("test", other)):
        syn.write_gz(root / f"streusle/streusle.ud_{split}.conllulex.gz", text)
    return root


def test_streusle_targets(tmp_path: Path, syn: SimpleNamespace) -> None:
    lx = syn.conllulex_line
    empty = "\t".join(["2.1", "went", "go", "VERB", "_", "_", "_", "_", "2:conj", "_"] + ["_"] * 9)
    mwt = "\t".join(["3-4", "into", "_", "_", "_", "_", "_", "_", "_", "_"] + ["_"] * 9)
    s1 = syn.sentence(
        "r-1",
        [
            lx("1", "We", lexcat="PRON", ss="_"),
            lx("2", "walked", lexcat="V", ss="v.motion"),
            empty,
            mwt,
            lx("3", "in", lexcat="P", ss="p.Goal", ss2="p.Goal"),  # target
            lx("4", "to", lexcat="P", ss="p.Goal", ss2="p.Direction"),  # target, construal
            lx("5", "my", lexcat="PRON.POSS", ss="p.Gestalt", ss2="p.Possessor"),  # target
            lx("6", "house", lexcat="N", ss="n.ARTIFACT"),
            lx("7", "for", lexcat="P", ss="??", ss2="??"),  # non-SNACS: dropped
            lx("8", "in", smwe="1:1", lexcat="P", ss="p.Time", ss2="p.Time"),  # strong MWE part: dropped
            lx("9", "front", smwe="1:2", lexcat="_", ss="_"),
            lx("10", "to", lexcat="INF", ss="_"),  # INF is not a target lexcat
            lx("11", "up", lexcat="PP", ss="p.Goal", ss2="p.Goal"),  # PP is not a target lexcat
        ],
    )
    s2 = syn.sentence("r-2", [lx("1", "Nothing", lexcat="PRON")])  # no target: not kept
    s3 = syn.sentence(
        "r-3",
        [
            lx("1", "cat", lexcat="N", ss="n.ANIMAL"),
            lx("2", "'s", lexcat="POSS", ss="p.Possessor", ss2="_"),  # SS2 "_" -> congruent
            lx("3", "to", lexcat="INF.P", ss="p.Purpose", ss2="p.Purpose"),
        ],
    )
    root = _streusle_dir(tmp_path, syn, s1 + s2 + s3)
    role = get_task("ps-role", data_dir=root).load("train")
    fxn = get_task("ps-fxn", data_dir=root, corpus="streusle").load("train")
    assert role.sentence_ids == ["r-1", "r-3"]
    assert role.sentences[0] == ("We", "walked", "in", "to", "my", "house", "for", "in", "front", "to", "up")
    assert [(e.sentence, e.unit, e.label) for e in role.examples] == [
        (0, (2,), "p.Goal"),
        (0, (3,), "p.Goal"),
        (0, (4,), "p.Gestalt"),
        (1, (1,), "p.Possessor"),
        (1, (2,), "p.Purpose"),
    ]
    assert [e.label for e in fxn.examples] == [
        "p.Goal",
        "p.Direction",
        "p.Possessor",
        "p.Possessor",
        "p.Purpose",
    ]
    assert role.examples[0].id == "streusle:r-1:w2"
    assert role.unit_kind == "token" and role.corpus == "streusle"
    assert get_task("ps-role", data_dir=root).split_names() == ["train", "dev", "test"]


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ("cut", "expected 19 tab-separated columns, found 18"),
        ("id", "ID '1a' is not an integer"),
        ("fxn", r"SS2 \(column 15\) 'n.ARTIFACT' of a p.\* target is not a p.\* label"),
    ],
)
def test_streusle_malformed(tmp_path: Path, syn: SimpleNamespace, bad: str, pattern: str) -> None:
    lx = syn.conllulex_line
    line = lx("2", "of", lexcat="P", ss="p.Topic", ss2="p.Topic")
    if bad == "cut":
        line = line.rsplit("\t", 1)[0]
    elif bad == "id":
        line = "1a" + line[1:]
    else:
        line = lx("2", "of", lexcat="P", ss="p.Topic", ss2="n.ARTIFACT")
    root = _streusle_dir(tmp_path, syn, syn.sentence("m-1", [lx("1", "All"), line]))
    task = get_task("ps-fxn", data_dir=root)
    with pytest.raises(DataFormatError, match=rf"streusle.ud_train.conllulex.gz:4: {pattern}") as info:
        task.load("train")
    assert info.value.line == 4


def _trec_dir(
    tmp_path: Path, train: bytes, test: bytes = b"NUM:count How many legs has a spider ?\n"
) -> Path:
    root = tmp_path / "data"
    (root / "trec").mkdir(parents=True)
    (root / "trec/train_5500.label").write_bytes(train)
    (root / "trec/TREC_10.label").write_bytes(test)
    return root


def test_trec(tmp_path: Path) -> None:
    train = (
        b"HUM:ind Who painted the blue caf\xe9 ?\n"
        b"LOC:city What city has  the tallest tower ?\n"
        b"\n"
        b"DESC:def What is x ?\n"
    )
    root = _trec_dir(tmp_path, train)
    t50 = get_task("trec50", data_dir=root)
    sp = t50.load("train")
    assert t50.split_names() == ["train", "test"]
    assert sp.unit_kind == "sentence"
    assert sp.sentences[0] == ("Who", "painted", "the", "blue", "caf\xe9", "?")
    assert sp.sentences[1] == ("What", "city", "has", "the", "tallest", "tower", "?")
    assert [(e.unit, e.label) for e in sp.examples] == [((), "HUM:ind"), ((), "LOC:city"), ((), "DESC:def")]
    assert sp.sentence_ids == ["trec:train:1", "trec:train:2", "trec:train:4"]
    assert [e.label for e in get_task("trec6", data_dir=root).load("train").examples] == [
        "HUM",
        "LOC",
        "DESC",
    ]
    assert len(t50.load("test")) == 1
    assert t50.counts("train") == (3, 3)
    (root / "trec/train_5500.label").write_bytes(b"HUM:ind Who is it ?\n")  # changed file: counted again
    assert t50.counts("train") == (1, 1)


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (b"HUMind Who is it ?", "expected 'COARSE:fine question ...', got label 'HUMind'"),
        (b"HUM:ind", "label 'HUM:ind' has no question"),
        (b"HUM:ind   ", "label 'HUM:ind' has no question"),
        (b":ind Who ?", "got label ':ind'"),
        (b"\tHUM:ind Who ?", "got label"),
    ],
)
def test_trec_malformed(tmp_path: Path, line: bytes, pattern: str) -> None:
    root = _trec_dir(tmp_path, b"HUM:ind Who is it ?\n" + line + b"\n")
    with pytest.raises(DataFormatError, match=rf"train_5500.label:2: (expected .*)?{pattern}"):
        get_task("trec50", data_dir=root).load("train")
