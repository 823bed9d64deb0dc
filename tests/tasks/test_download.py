"""``tuneprobe data download`` without a network: the opener is replaced, nothing is fetched for real."""

from __future__ import annotations

import gzip
import hashlib
import io
import time
import urllib.error
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuneprobe.cli import app
from tuneprobe.errors import DataFormatError, OfflineError
from tuneprobe.tasks import download as dl


class _Response:
    """A fake HTTP response: yields ``chunks``, then raises ``fail`` (if any) instead of ending."""

    def __init__(self, chunks: list[bytes], fail: BaseException | None = None) -> None:
        self.chunks = list(chunks)
        self.fail = fail

    def read(self, _n: int) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.fail is not None:
            raise self.fail
        return b""

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _offline(*_args: object, **_kwargs: object) -> object:
    raise urllib.error.URLError(OSError(-2, "Name or service not known"))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_offline_fails_at_once_with_a_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(dl, "_urlopen", _offline)
    start = time.monotonic()
    with pytest.raises(OfflineError) as info:
        dl.download(tmp_path / "data")
    assert time.monotonic() - start < 5
    msg = str(info.value)
    assert "cannot download https://raw.githubusercontent.com/" in msg and "Name or service not known" in msg
    assert "needs internet access" in msg and "--data-dir DIR" in msg and "TUNEPROBE_DATA=DIR" in msg
    assert _files(tmp_path) == []


def _fake_sources(tmp_payload: dict[str, bytes]) -> tuple[dl.Source, ...]:
    a, b = tmp_payload["a"], tmp_payload["b"]
    return (
        dl.Source(
            "pud", "ud/a.conllu.gz", "https://example.invalid/a", hashlib.sha256(a).hexdigest(), compress=True
        ),
        dl.Source("trec", "trec/b.label", "https://example.invalid/b", hashlib.sha256(b).hexdigest()),
    )


def test_failure_mid_download_leaves_no_partial_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    payload = {"a": b"# sent_id = a\n1\tA\n" * 100, "b": b"HUM:ind Who ?\n" * 100}
    monkeypatch.setattr(dl, "SOURCES", _fake_sources(payload))

    def opener(request: object, timeout: float) -> _Response:
        assert timeout <= 10
        if request.full_url.endswith("/a"):
            return _Response([payload["a"]])
        return _Response([payload["b"][:50]], fail=TimeoutError("The read operation timed out"))

    monkeypatch.setattr(dl, "_urlopen", opener)
    root = tmp_path / "data"
    with pytest.raises(OfflineError, match="timed out"):
        dl.download(root)
    # the first file is complete and verified; the interrupted one is absent; no temporary files anywhere
    assert _files(root) == [root / "ud/a.conllu.gz"]
    assert gzip.decompress((root / "ud/a.conllu.gz").read_bytes()) == payload["a"]


def test_checksum_mismatch_and_http_error_write_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    payload = {"a": b"x\n", "b": b"y\n"}
    monkeypatch.setattr(dl, "SOURCES", _fake_sources(payload))
    monkeypatch.setattr(dl, "_urlopen", lambda request, timeout: _Response([b"tampered\n"]))
    with pytest.raises(
        dl.DownloadError, match=r"https://example.invalid/a: sha256 .* differs .*nothing written"
    ):
        dl.download(tmp_path / "data")
    assert _files(tmp_path) == []

    def not_found(request: object, timeout: float) -> object:
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)

    monkeypatch.setattr(dl, "_urlopen", not_found)
    with pytest.raises(dl.DownloadError, match="answered HTTP 404 Not Found"):
        dl.download(tmp_path / "data")
    assert _files(tmp_path) == []


def test_zip_member_git_blob_present_and_force(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    member = b"NUM:count How many ?\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("qc/test.txt", member)
    body = buf.getvalue()
    src = dl.Source(
        "trec", "trec/T.label", "https://example.invalid/qc.zip", hashlib.sha256(member).hexdigest(),
        git_blob=dl.git_blob_id(body), member="qc/test.txt",
    )  # fmt: skip
    monkeypatch.setattr(dl, "SOURCES", (src,))
    calls = []
    monkeypatch.setattr(dl, "_urlopen", lambda request, timeout: calls.append(1) or _Response([body]))
    lines: list[str] = []
    root = tmp_path / "data"
    assert dl.download(root, report=lines.append) == [(root / "trec/T.label", "downloaded")]
    assert (root / "trec/T.label").read_bytes() == member and len(calls) == 1
    assert dl.download(root) == [(root / "trec/T.label", "present")] and len(calls) == 1
    assert dl.download(root, force=True)[0][1] == "downloaded" and len(calls) == 2
    assert any(line.startswith("downloaded") for line in lines)
    # a zip whose git blob id differs from the pinned one is rejected
    monkeypatch.setattr(dl, "SOURCES", (dl.Source(**{**src.__dict__, "git_blob": "0" * 40}),))
    with pytest.raises(dl.DownloadError, match="git blob id .* differs from the official 0000"):
        dl.download(tmp_path / "other")


def test_verify_file_rejects_other_content(tmp_path: Path) -> None:
    (tmp_path / "TREC_10.label").write_bytes(b"HUM:ind Who ?\n")
    with pytest.raises(DataFormatError, match=r"TREC_10.label: content does not match the official"):
        dl.verify_file(tmp_path / "TREC_10.label", "trec/TREC_10.label")


def test_git_blob_id() -> None:
    assert dl.git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


def test_unknown_corpus(tmp_path: Path) -> None:
    with pytest.raises(
        dl.UnknownNameError, match="unknown corpus ptb; valid corpora: pud, pud216, ewt, streusle, trec"
    ):
        dl.download(tmp_path, corpora=["ptb"])


def test_cli_download_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(dl, "_urlopen", _offline)
    result = CliRunner().invoke(
        app, ["data", "download", "--data-dir", str(tmp_path / "d"), "--corpus", "trec"]
    )
    assert isinstance(result.exception, OfflineError)
    assert "qc.zip" in str(result.exception)
    assert _files(tmp_path) == []


@pytest.mark.data
def test_pinned_checksums_match_the_shared_data(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Every hard-coded checksum matches the project's copy, so nothing is fetched (the opener would fail)."""
    monkeypatch.setattr(dl, "_urlopen", _offline)
    results = dl.download(data_dir)
    assert [status for _, status in results] == ["present"] * len(dl.SOURCES)
    for src in dl.SOURCES:
        dl.verify_file(data_dir / src.dest, src.dest)
