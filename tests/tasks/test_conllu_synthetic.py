"""UD readers on small made-up CoNLL-U files: ranges, empty nodes, head mapping, the PUD split, bad input."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from tuneprobe.errors import DataFormatError
from tuneprobe.tasks import get_task
from tuneprobe.tasks._reader import read_conll

PUD = "ud_english_pud/en_pud-ud-test.r2.7.conllu.gz"


def _ewt_dir(tmp_path: Path, syn: SimpleNamespace, train: str, dev: str = "", test: str = "") -> Path:
    root = tmp_path / "data"
    default = syn.sentence("x-1", [syn.conllu_line("1", "Hi", "INTJ")])
    for split, text in (("train", train), ("dev", dev or default), ("test", test or default)):
        syn.write_gz(root / f"ud_english_ewt/en_ewt-ud-{split}.conllu.gz", text)
    return root


def test_ranges_and_empty_nodes_are_skipped_and_heads_map(tmp_path: Path, syn: SimpleNamespace) -> None:
    ln = syn.conllu_line
    # "They'll go and come back": a multiword token 1-2, an empty node 3.1 between the conjuncts; the head of
    # word 4 ("and") and 5 ("come") is word 5 / 3, which lie after the empty node.
    s1 = syn.sentence(
        "s-1",
        [
            "1-2\tThey'll\t_\t_\t_\t_\t_\t_\t_\t_",
            ln("1", "They", "PRON", "3", "nsubj"),
            ln("2", "'ll", "AUX", "3", "aux"),
            ln("3", "go", "VERB", "0", "root"),
            "3.1\tgo\tgo\tVERB\t_\t_\t_\t_\t3:conj\t_",
            ln("4", "and", "CCONJ", "5", "cc"),
            ln("5", "come", "VERB", "3", "conj"),
            ln("6", "back", "ADV", "5", "advmod"),
        ],
    )
    s2 = syn.sentence(
        "s-2", [ln("1", "Cats", "NOUN", "2", "nsubj:pass"), ln("2", "fed", "VERB", "0", "root")]
    )
    root = _ewt_dir(tmp_path, syn, s1 + s2)
    pos = get_task("pos", data_dir=root, corpus="ewt").load("train")
    assert pos.sentences == [("They", "'ll", "go", "and", "come", "back"), ("Cats", "fed")]
    assert pos.sentence_ids == ["s-1", "s-2"]
    assert [(e.sentence, e.unit, e.label) for e in pos.examples][:3] == [
        (0, (0,), "PRON"),
        (0, (1,), "AUX"),
        (0, (2,), "VERB"),
    ]
    assert pos.examples[0].id == "ewt:s-1:w0" and len(pos) == 8
    dep = get_task("dep", data_dir=root, corpus="ewt").load("train")
    assert dep.unit_kind == "pair"
    assert [(e.sentence, e.unit, e.label) for e in dep.examples] == [
        (0, (0, 2), "nsubj"),
        (0, (1, 2), "aux"),
        (0, (3, 4), "cc"),  # head 5 -> position 4, not shifted by the empty node 3.1
        (0, (4, 2), "conj"),
        (0, (5, 4), "advmod"),
        (1, (0, 1), "nsubj:pass"),
    ]
    base = get_task("dep", data_dir=root, corpus="ewt", base_relation="true").load("train")
    assert base.examples[-1].label == "nsubj" and base.options == {"base_relation": True}


def test_pud_mod5_split(tmp_path: Path, syn: SimpleNamespace) -> None:
    text = "".join(
        syn.sentence(
            f"n{i:02d}",
            [syn.conllu_line("1", f"w{i}", "X", "0", "root"), syn.conllu_line("2", "x", "X", "1", "dep")],
        )
        for i in range(12)
    )
    syn.write_gz(tmp_path / PUD, text)
    task = get_task("pos", data_dir=tmp_path)
    assert task.split_names() == ["train", "test"]
    test = task.load("test")
    train = task.load("train")
    assert test.sentence_ids == ["n04", "n09"]
    assert train.sentence_ids == [f"n{i:02d}" for i in range(12) if i % 5 != 4]
    assert len(get_task("dep", data_dir=tmp_path).load("test")) == 2


def _expect_error(path: Path, line: int, pattern: str, ncols: int = 10) -> None:
    with pytest.raises(DataFormatError) as info:
        read_conll(path, ncols, (1, 3, 6, 7))
    msg = str(info.value)
    assert msg.startswith(f"{path.resolve()}:{line}: "), msg
    assert info.value.line == line
    assert re.search(pattern, msg), msg


@pytest.mark.parametrize(
    ("bad_line", "pattern"),
    [
        ("3\tx\tx\tX\t_\t_\t0\troot\t_", "expected 10 tab-separated columns, found 9"),
        ("3\tx\tx\tX\t_\t_\t0\troot\t_\t_\t_", "found 11"),
        ("three\tx\tx\tX\t_\t_\t0\troot\t_\t_", "ID 'three' is not an integer"),
        ("3.x\tx\tx\tX\t_\t_\t0\troot\t_\t_", "ID '3.x'"),
        ("5\tx\tx\tX\t_\t_\t0\troot\t_\t_", r"word ID 5 out of sequence \(expected 3\)"),
        ("3  x  x  X  _  _  0  root  _  _", "found 1"),  # spaces instead of tabs
    ],
)
def test_malformed_conllu_line(tmp_path: Path, syn: SimpleNamespace, bad_line: str, pattern: str) -> None:
    ln = syn.conllu_line
    good = syn.sentence("a", [ln("1", "One"), ln("2", "two", "NUM", "1", "nummod")])
    # line numbers: the good sentence takes lines 1-5 (2 comments, 2 words, blank); then 2 comments, 2 words
    text = (
        good
        + "# sent_id = b\n# text = made up\n"
        + ln("1", "A")
        + "\n"
        + ln("2", "b", "X", "1", "dep")
        + "\n"
    )
    text += bad_line + "\n\n"
    path = syn.write_gz(tmp_path / "bad.conllu.gz", text)
    _expect_error(path, 10, pattern)


def test_comment_inside_sentence_and_wordless_sentence(tmp_path: Path, syn: SimpleNamespace) -> None:
    ln = syn.conllu_line
    path = syn.write_gz(tmp_path / "c.conllu.gz", f"{ln('1', 'A')}\n# late comment\n{ln('2', 'b')}\n\n")
    _expect_error(path, 2, "comment line inside a sentence")
    path = syn.write_gz(tmp_path / "r.conllu.gz", "# sent_id = r\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n\n")
    _expect_error(path, 1, "no syntactic words")
    # a block of comments only (a file header) is not a sentence
    path = syn.write_gz(
        tmp_path / "h.conllu.gz", f"# global.columns = ID FORM\n\n# sent_id = q\n{ln('1', 'A')}\n"
    )
    sents = read_conll(path, 10, (1,))
    assert [(s.sent_id, s.rows, s.lines, s.first_line) for s in sents] == [("q", (("A",),), (4,), 3)]


def test_bad_head_and_missing_labels(tmp_path: Path, syn: SimpleNamespace) -> None:
    ln = syn.conllu_line
    root = _ewt_dir(
        tmp_path, syn, syn.sentence("h", [ln("1", "A", "X", "0", "root"), ln("2", "b", "X", "3", "dep")])
    )
    with pytest.raises(
        DataFormatError, match=r"en_ewt-ud-train.conllu.gz:4: HEAD '3' of word 2 is not 0 or a word ID 1..2"
    ):
        get_task("dep", data_dir=root, corpus="ewt").load("train")
    root = _ewt_dir(
        tmp_path / "2", syn, syn.sentence("h", [ln("1", "A", "X", "0", "root"), ln("2", "b", "_", "1", "_")])
    )
    with pytest.raises(DataFormatError, match=r"train.conllu.gz:4: word 2 has no UPOS"):
        get_task("pos", data_dir=root, corpus="ewt").load("train")
    with pytest.raises(DataFormatError, match=r"train.conllu.gz:4: word 2 has no DEPREL"):
        get_task("dep", data_dir=root, corpus="ewt").load("train")


def test_encoding_and_gzip_errors(tmp_path: Path, syn: SimpleNamespace) -> None:
    path = tmp_path / "latin.conllu.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"# sent_id = a\n1\tA\ta\tX\t_\t_\t0\troot\t_\t_\n2\tcaf\xe9\tx\tX\t_\t_\t1\tdep\t_\t_\n")
    _expect_error(path, 3, "not valid utf-8")
    notgz = tmp_path / "plain.conllu.gz"
    notgz.write_text("1\tA\n")
    with pytest.raises(DataFormatError, match="cannot read file"):
        read_conll(notgz, 10, (1,))


def test_crlf_and_missing_final_blank_line(tmp_path: Path, syn: SimpleNamespace) -> None:
    ln = syn.conllu_line
    text = f"# sent_id = a\r\n{ln('1', 'A')}\r\n\r\n# sent_id = b\r\n{ln('1', 'B')}"
    path = syn.write_gz(tmp_path / "crlf.conllu.gz", text)
    sents = read_conll(path, 10, (1, 3))
    assert [(s.sent_id, s.rows) for s in sents] == [("a", (("A", "NOUN"),)), ("b", (("B", "NOUN"),))]
