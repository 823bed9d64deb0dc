"""Malformed and hostile input, met where a user meets it: the ``tuneprobe`` command line.

Each case builds a bad input in a fresh directory, runs one command, and asserts (a) the exit code: 2 with a
one-line ``error: ...`` naming the file (and line, where there is one) and what was expected, or 0 where the
input is legal but degenerate and the command must handle it; (b) nothing half-written: no output file of a
rejected command, no temporary or partial file anywhere under the output and cache directories.

Reader-level variants (every malformed CoNLL-U / CoNLL-U-Lex / TREC / jsonl line shape, gzip errors) are
tested in ``tests/tasks``; store corruption in ``tests/store``; these cases add the command-line path, the
vector files, the experiment configs and the cache-permission faults. README.md in this directory counts
them.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

# ------------------------------------------------------------------------------------------------------------
# task files through `tuneprobe extract` (the first command that reads a task)


def _jsonl_task(root: Path, h: SimpleNamespace) -> Path:
    return h.write_task(root / "task", h.length_label)


def _truncate_last_line(p: Path) -> None:
    text = p.read_text()
    p.write_text(text[: len(text) - 25])  # the last JSON object cut mid-way (a torn copy)


def _bad_utf8(p: Path) -> None:
    p.write_bytes(p.read_bytes().replace(b'"cat"', b'"c\xe9t"', 1))  # latin-1 bytes in a UTF-8 file


def _unit_out_of_range(p: Path) -> None:
    lines = p.read_text().splitlines()
    rec = json.loads(lines[2])
    rec["unit"] = [len(rec["words"]) + 3]
    lines[2] = json.dumps(rec)
    p.write_text("\n".join(lines) + "\n")


def _wrong_label_type(p: Path) -> None:
    lines = p.read_text().splitlines()
    rec = json.loads(lines[4])
    rec["label"] = 7
    lines[4] = json.dumps(rec)
    p.write_text("\n".join(lines) + "\n")


JSONL_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    # kind: (mutation of train.jsonl, expected message: file:line: what)
    "jsonl truncated file": (_truncate_last_line, r"train\.jsonl:\d+: .*(JSON|json)"),
    "jsonl bad encoding": (_bad_utf8, r"train\.jsonl:\d+: .*(UTF-8|utf-8)"),
    "jsonl empty split": (lambda p: p.write_text("\n\n"), r"train\.jsonl: file has no examples"),
    "jsonl unit out of range": (_unit_out_of_range, r"train\.jsonl:3: .*unit"),
    "jsonl label of wrong type": (_wrong_label_type, r"train\.jsonl:5: 'label' must be a non-empty string"),
}


@pytest.mark.parametrize("kind", list(JSONL_CASES))
def test_bad_jsonl_task_via_extract(kind: str, tmp_path: Path, tiny_dir: Path, h: SimpleNamespace) -> None:
    mutate, pattern = JSONL_CASES[kind]
    task = _jsonl_task(tmp_path, h)
    mutate(task / "train.jsonl")
    cache = tmp_path / "cache"
    code, out = h.cli(
        ["extract", f"jsonl:{task}", "--model", tiny_dir, "--cache-dir", cache, "--device", "cpu"]
        + ["--no-progress", "--out", tmp_path / "x.npy"]
    )
    assert code == 2 and re.search(pattern, out), out
    assert str(task / "train.jsonl") in out  # the full path, so the user finds the file
    assert not list(cache.rglob("*.npy")) and h.partial_files(cache) == []
    assert not (tmp_path / "x.npy").exists()


def test_task_directory_that_does_not_exist(tmp_path: Path, tiny_dir: Path, h: SimpleNamespace) -> None:
    code, out = h.cli(["extract", f"jsonl:{tmp_path / 'nope'}", "--model", tiny_dir, "--no-progress"])
    assert code == 2 and str(tmp_path / "nope") in out, out


def _ewt(root: Path, syn: SimpleNamespace, train: str) -> Path:
    default = syn.sentence("x-1", [syn.conllu_line("1", "Hi", "INTJ")])
    for split, text in (("train", train), ("dev", default), ("test", default)):
        syn.write_gz(root / f"ud_english_ewt/en_ewt-ud-{split}.conllu.gz", text)
    return root


@pytest.mark.parametrize("kind", ["conllu wrong column count", "conllu truncated gzip"])
def test_bad_conllu_via_extract(
    kind: str, tmp_path: Path, tiny_dir: Path, syn: SimpleNamespace, h: SimpleNamespace
) -> None:
    ln = syn.conllu_line
    good = syn.sentence("a", [ln("1", "the"), ln("2", "cat", "NOUN", "1", "dep")])
    if kind == "conllu wrong column count":
        root = _ewt(tmp_path / "data", syn, good + "# sent_id = b\n1\tthe\tthe\tDET\t_\t_\t0\troot\t_\n\n")
        pattern = r"en_ewt-ud-train\.conllu\.gz:7: expected 10 tab-separated columns, found 9"
    else:
        root = _ewt(tmp_path / "data", syn, good * 40)
        p = root / "ud_english_ewt/en_ewt-ud-train.conllu.gz"
        p.write_bytes(p.read_bytes()[:-30])  # a download cut short: the gzip stream ends early
        pattern = r"en_ewt-ud-train\.conllu\.gz.*(compressed|end-of-stream|truncated|cannot read)"
    cache = tmp_path / "cache"
    code, out = h.cli(
        ["extract", "pos", "--corpus", "ewt", "--data-dir", root, "--model", tiny_dir]
        + ["--cache-dir", cache, "--device", "cpu", "--no-progress"]
    )
    assert code == 2 and re.search(pattern, out), out
    assert not list(cache.rglob("*.npy")) and h.partial_files(cache) == []


# ------------------------------------------------------------------------------------------------------------
# vector files through `tuneprobe directprobe --reps` and `tuneprobe probe --reps`
# (tests/directprobe/test_commands.py already covers: a missing labels file, a label-count mismatch, an empty
# label line, a NaN row and a 1-D array for `directprobe`)


def _points(tmp: Path, name: str, X: np.ndarray, labels: list[str]) -> Path:
    np.save(tmp / f"{name}.npy", X)
    (tmp / f"{name}.labels.txt").write_text("".join(f"{v}\n" for v in labels), encoding="utf-8")
    return tmp / f"{name}.npy"


def _blobs(seed: int, n_per: int = 6, labels: tuple[str, ...] = ("a", "b", "c")) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    centres = np.eye(len(labels), 4) * 10
    X = np.concatenate([c + rng.normal(size=(n_per, 4)) for c in centres]).astype(np.float32)
    return X, [v for v in labels for _ in range(n_per)]


def _truncated_npy(tmp: Path) -> Path:
    p = _points(tmp, "train", *_blobs(0))
    p.write_bytes(p.read_bytes()[:150])  # header + part of the data
    return p


def _pickled_npy(tmp: Path) -> Path:
    """An object array: loading it would run pickle. It must be refused, not unpickled."""
    marker = tmp / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    p = tmp / "train.npy"
    np.save(p, np.array([[Evil()]], dtype=object), allow_pickle=True)
    (tmp / "train.labels.txt").write_text("a\n")
    return p


VECTOR_ERRORS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "npy truncated": (_truncated_npy, r"train\.npy: not a \.npy array"),
    "npy pickled object array": (_pickled_npy, r"train\.npy: not a \.npy array .*allow_pickle"),
    "npy integer matrix": (
        lambda t: _points(t, "train", np.ones((4, 2), np.int64), ["a", "b"] * 2),
        r"train\.npy: expected a float \[n, dim\] matrix, got int64",
    ),
    "npy with no rows": (
        lambda t: _points(t, "train", np.zeros((0, 4), np.float32), []),
        r"train\.npy: the matrix has no rows",
    ),
    "npy with Inf": (
        lambda t: _points(
            t, "train", np.where(np.arange(18)[:, None] == 5, np.inf, _blobs(0)[0]), _blobs(0)[1]
        ),
        r"train\.npy: 1 row\(s\) contain NaN or Inf \(first: row 5",
    ),
    "labels bad encoding": (
        lambda t: (_points(t, "train", *_blobs(0)), (t / "train.labels.txt").write_bytes(b"a\n\xff\n" * 9))[
            0
        ],
        r"train\.labels\.txt: not UTF-8 text",
    ),
}


@pytest.mark.parametrize("kind", list(VECTOR_ERRORS))
def test_bad_vectors_via_directprobe(kind: str, tmp_path: Path, h: SimpleNamespace) -> None:
    make, pattern = VECTOR_ERRORS[kind]
    xp = make(tmp_path)
    out = tmp_path / "out"
    code, text = h.cli(["directprobe", "--reps", xp, "--out", out, "--no-progress"])
    assert code == 2 and re.search(pattern, text), text
    assert not out.exists() and h.partial_files(tmp_path) == []
    assert not (tmp_path / "pwned").exists()  # the pickle payload never ran


def test_predict_dimension_mismatch(tmp_path: Path, h: SimpleNamespace) -> None:
    xp = _points(tmp_path, "train", *_blobs(0))
    tp = _points(tmp_path, "test", np.ones((3, 5), np.float32), ["a", "b", "c"])
    out = tmp_path / "out"
    code, text = h.cli(
        ["directprobe", "--reps", xp, "--predict-reps", tp, "--predict-labels", tp.with_suffix(".labels.txt")]
        + ["--out", out, "--no-progress"]
    )
    assert code == 2 and "--predict-reps: dimension 5 differs from the training dimension 4" in text, text
    assert not out.exists()


def test_duplicate_vectors_with_different_labels(tmp_path: Path, h: SimpleNamespace) -> None:
    """Refused under ``--duplicate-policy error`` (naming the rows); kept and reported by default."""
    X, labels = _blobs(1)
    X[7] = X[0]  # row 7 (label b) is a copy of row 0 (label a)
    xp = _points(tmp_path, "train", X, labels)
    code, text = h.cli(
        ["directprobe", "--reps", xp, "--out", tmp_path / "e", "--duplicate-policy", "error", "--no-progress"]
    )
    assert code == 2 and "different labels" in text and "'rows': [0, 7]" in text, text
    assert not (tmp_path / "e").exists()
    code, text = h.cli(["directprobe", "--reps", xp, "--out", tmp_path / "k", "--no-progress"])
    assert code == 0, text
    dup = json.loads((tmp_path / "k" / "summary.json").read_text())["clustering_stats"]["duplicates"]
    assert dup["n_conflicting_groups"] == 1 and dup["n_conflicting_points"] == 2


def test_degenerate_but_legal_vectors(tmp_path: Path, h: SimpleNamespace) -> None:
    """Zero-variance input (every row identical, two labels), a constant column, a label with one example and
    test labels never seen in training: every command finishes, and the summary says what it met."""
    zero = _points(tmp_path, "zero", np.ones((6, 3), np.float32), ["a", "b"] * 3)
    code, text = h.cli(["directprobe", "--reps", zero, "--out", tmp_path / "z", "--no-progress"])
    assert code == 0, text
    s = json.loads((tmp_path / "z" / "summary.json").read_text())
    assert s["n_clusters"] == 2 and s["clustering_stats"]["duplicates"]["n_conflicting_points"] == 6

    X, labels = _blobs(2)
    X[:, 3] = 0.0  # a constant column
    labels[-1] = "single"  # one example of this label
    train = _points(tmp_path, "train", X, labels)
    test = _points(tmp_path, "test", _blobs(3, 2)[0], ["a", "b", "zzz", "a", "b", "c"])  # zzz: unseen
    out = tmp_path / "d"
    code, text = h.cli(
        ["directprobe", "--reps", train, "--predict-reps", test]
        + ["--predict-labels", test.with_suffix(".labels.txt"), "--out", out, "--no-progress"]
    )
    assert code == 0, text
    s = json.loads((out / "summary.json").read_text())
    assert s["n_predict_unseen"] == 1 and s["predict_unseen_labels"] == ["zzz"]
    assert "single,1,1," in (out / "labels.csv").read_text()
    assert len((out / "predictions.txt").read_text().splitlines()) == 6
    assert h.partial_files(tmp_path) == []


PROBE = ["--hidden-sizes", "4", "--alphas", "0.01", "--seeds", "0", "--max-iter", "5", "--device", "cpu"]


@pytest.mark.parametrize("kind", ["probe NaN vectors", "probe empty test split", "probe labels bad encoding"])
def test_bad_vectors_via_probe(kind: str, tmp_path: Path, h: SimpleNamespace) -> None:
    X, labels = _blobs(4)
    tX, tl = _blobs(5, 2)
    if kind == "probe NaN vectors":
        X[4, 2] = np.nan
        bad, pattern = "train.npy", r"train\.npy: 1 row\(s\) contain NaN or Inf \(first: row 4"
    elif kind == "probe empty test split":
        tX, tl = np.zeros((0, 4), np.float32), []
        bad, pattern = "test.npy", r"test\.npy: the matrix has no rows"
    else:
        bad, pattern = "train.labels.txt", r"train\.labels\.txt: not UTF-8 text"
    train, test = _points(tmp_path, "train", X, labels), _points(tmp_path, "test", tX, tl)
    if kind == "probe labels bad encoding":
        (tmp_path / bad).write_bytes(b"\xff\xfe\n" * len(labels))
    out = tmp_path / "out"
    code, text = h.cli(["probe", "--reps", train, "--test-reps", test, "--out", out, "--no-progress", *PROBE])
    assert code == 2 and re.search(pattern, text) and str(tmp_path / bad) in text, text
    assert not out.exists()


def test_probe_unseen_test_labels_are_counted(tmp_path: Path, h: SimpleNamespace) -> None:
    train = _points(tmp_path, "train", *_blobs(6))
    test = _points(tmp_path, "test", _blobs(7, 2)[0], ["a", "a", "b", "new", "c", "c"])
    out = tmp_path / "out"
    code, text = h.cli(["probe", "--reps", train, "--test-reps", test, "--out", out, "--no-progress", *PROBE])
    assert code == 0 and "1/6 test examples with unseen labels" in text, text
    assert json.loads((out / "summary.json").read_text())["n_test_unseen"] == 1


# ------------------------------------------------------------------------------------------------------------
# experiment configs through `tuneprobe run`

CONFIG_CASES: dict[str, tuple[Callable[[str], str], str]] = {
    # kind: (edit of a valid config's text, expected message)
    "config wrong type": (
        lambda t: t.replace("max_steps = 4", 'max_steps = "four"'),
        r"tiny\.toml: finetune\.max_steps: expected an integer",
    ),
    "config unknown key": (
        lambda t: t.replace("[extract]\n", "[extract]\nbatchsize = 8\n"),
        r"tiny\.toml: extract\.batchsize: unknown key 'batchsize' in \[extract\]",
    ),
    "config truncated": (lambda t: t[: t.index("[probe]") + 9], r"tiny\.toml: not valid TOML"),
    "config bad encoding": (
        lambda t: t.replace('name = "tiny"', 'name = "t\udce9ny"'),
        r"tiny\.toml: cannot be read",
    ),
    "config unknown task id": (
        lambda t: t.replace('tuned_on = ["lengths"]', 'tuned_on = ["lenghts"]'),
        r"tiny\.toml: cross_task\[0\]\.tuned_on\[0\]: unknown task id 'lenghts'",
    ),
    "config model that does not exist": (
        lambda t: re.sub(r"models = \[.*\]", 'models = ["/nonexistent/model-dir"]', t),
        r"/nonexistent/model-dir",
    ),
    "config jsonl task dir that does not exist": (
        lambda t: re.sub(r'name = "jsonl:[^"]*lengths"', 'name = "jsonl:/nonexistent/task"', t),
        r"/nonexistent/task",
    ),
}


@pytest.mark.parametrize("kind", list(CONFIG_CASES))
def test_bad_config_via_run(
    kind: str, tmp_path: Path, tiny_dir: Path, task_dirs, tiny_toml, h: SimpleNamespace
) -> None:
    edit, pattern = CONFIG_CASES[kind]
    out, cache = tmp_path / "out", tmp_path / "cache"
    text = edit(tiny_toml(tiny_dir, *task_dirs, out, cache))
    cfg = tmp_path / "tiny.toml"
    cfg.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, msg = h.cli(["run", cfg])
    assert code == 2 and re.search(pattern, msg), msg
    assert not out.exists() and not cache.exists()


def test_config_that_does_not_exist(tmp_path: Path, h: SimpleNamespace) -> None:
    code, msg = h.cli(["run", tmp_path / "missing.toml"])
    assert code == 2 and f"{tmp_path / 'missing.toml'}: no such configuration file" in msg, msg


# ------------------------------------------------------------------------------------------------------------
# a cache directory that cannot be written


def _extract_args(task: Path, tiny_dir: Path, cache: Path) -> list:
    return ["extract", f"jsonl:{task}", "--model", tiny_dir, "--cache-dir", cache, "--device", "cpu"] + [
        "--no-progress"
    ]


def test_cache_dir_without_write_permission_simulated(
    tmp_path: Path, tiny_dir: Path, h: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIMULATED: the tests run as root, for whom mode bits do not deny writes. Every ``mkdir`` and every
    file opened for writing under the cache directory fails with EACCES, as it would for a normal user on a
    0555 directory."""
    task = _jsonl_task(tmp_path, h)
    cache = tmp_path / "cache"
    cache.mkdir()
    real_mkdir, real_open = os.mkdir, os.open
    denied: list[str] = []

    def under(path: object) -> bool:
        return str(os.fspath(path)).startswith(str(cache))

    def mkdir(path, *a, **k):  # type: ignore[no-untyped-def]
        if under(path):
            denied.append(str(path))
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *a, **k)

    def open_(path, flags, *a, **k):  # type: ignore[no-untyped-def]
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            denied.append(str(path))
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    code, msg = h.cli(_extract_args(task, tiny_dir, cache))
    monkeypatch.undo()
    assert denied, "the simulation never triggered"
    assert code == 2 and f"cannot write to the cache directory {cache}" in msg and "denied" in msg, msg
    assert h.files_under(cache) == []


def _mount_read_only_tmpfs(path: Path) -> bool:
    path.mkdir()
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def test_cache_dir_on_a_read_only_filesystem(tmp_path: Path, tiny_dir: Path, h: SimpleNamespace) -> None:
    """REAL where the sandbox allows mounting (root with CAP_SYS_ADMIN): a read-only tmpfs as the cache."""
    cache = tmp_path / "ro"
    if not _mount_read_only_tmpfs(cache):
        pytest.skip("cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN); the simulated case still ran")
    try:
        task = _jsonl_task(tmp_path, h)
        code, msg = h.cli(_extract_args(task, tiny_dir, cache / "sub"))
        assert code == 2 and "cannot write to the cache directory" in msg and "Read-only" in msg, msg
        assert h.files_under(cache) == []
    finally:
        subprocess.run(["umount", str(cache)], check=True, timeout=20)
