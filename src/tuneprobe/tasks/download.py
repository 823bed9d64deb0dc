"""``tuneprobe data download``: fetch the corpora from their official public sources and verify them.

Every file comes from a pinned commit of a public GitHub repository (see each ``SOURCE.md`` of the shared
data), and is checked before it is written: by the sha256 of its content and, where one is known, by its git
blob id (``sha1("blob <size>\\0" + content)``, the id GitHub's tree lists). The UD and STREUSLE files are
stored gzip-compressed, as the readers expect; the TREC files are two members of NLTK's ``qc.zip``.

========================================  ==============================================================
stored as (under the data dir)            official source
========================================  ==============================================================
ud_english_pud/en_pud-ud-test.r2.7...gz   UniversalDependencies/UD_English-PUD @ r2.7 (7053a1a6)
ud_english_pud/en_pud-ud-test.r2.16...gz  UniversalDependencies/UD_English-PUD @ r2.16 (37788eaa)
ud_english_ewt/en_ewt-ud-*.conllu.gz      UniversalDependencies/UD_English-EWT @ r2.16 (4c89b583)
streusle/streusle.ud_*.conllulex.gz       nert-nlp/streusle @ v4.7.1 (9eb4fa91)
trec/train_5500.label, TREC_10.label      nltk/nltk_data gh-pages (5db857e6), packages/corpora/qc.zip
========================================  ==============================================================

STREUSLE train: the download gets the *official* ``train/streusle.ud_train.conllulex`` (verified by its git
blob id ``f6a22c7a...``; its sha256 is not recorded anywhere we could check). The copy in the project's shared
data was instead *reconstructed* from the official ``.vis`` file and EWT 2.16 (see its SOURCE.md): it has the
same UD columns and reproduces the official label statistics and ``.vis`` rendering (so the ``ps-role`` and
``ps-fxn`` examples should be identical; this could not be checked offline), but may differ in ``# mwe``
comments and the weak-MWE columns 16-18. An existing file with the reconstruction's sha256
is accepted as present and left alone; ``--force`` replaces it with the official file.

Offline behaviour: the first network failure stops the command at once (10 s socket timeout, no retries) with
an :class:`~tuneprobe.errors.OfflineError` that says how to point tuneprobe at local copies (``--data-dir
DIR`` or ``TUNEPROBE_DATA=DIR``). Every file is written to a temporary file in the target directory and
renamed into place only after it was verified, so an interrupted download never leaves a partial file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tuneprobe.errors import DataFormatError, OfflineError, TuneprobeError, UnknownNameError
from tuneprobe.tasks.data import ENV_VAR, resolve_data_dir

TIMEOUT_S = 10.0
"""Socket timeout (connect and each read) of one request."""
_CHUNK = 1 << 20
_RAW = "https://raw.githubusercontent.com"


class DownloadError(TuneprobeError):
    """A server answered, but not with the expected file (HTTP error, bad checksum, bad archive)."""


@dataclass(frozen=True)
class Source:
    """One file to download.

    corpus: the group name (``pud``, ``pud216``, ``ewt``, ``streusle``, ``trec``).
    dest: path under the data directory.
    url: the pinned official URL.
    sha256: sha256 of the file's content (uncompressed; of the zip member for ``member``), or None if unknown.
    git_blob: git blob id (sha1) of the downloaded bytes (of the whole zip for ``member``), or None.
    compress: store gzip-compressed.
    member: extract this member of the downloaded zip.
    also_accept: sha256 values of other contents accepted for an *existing* file (see the module docstring).
    """

    corpus: str
    dest: str
    url: str
    sha256: str | None
    git_blob: str | None = None
    compress: bool = False
    member: str | None = None
    also_accept: tuple[str, ...] = ()


_PUD = f"{_RAW}/UniversalDependencies/UD_English-PUD"
_EWT = f"{_RAW}/UniversalDependencies/UD_English-EWT/4c89b5833a70aa5ed3a00bad2f23f57992cc7df8"
_STREUSLE = f"{_RAW}/nert-nlp/streusle/9eb4fa91fce7edc28dcfb3761a81dbbd473de9a9"
_QC_ZIP = f"{_RAW}/nltk/nltk_data/5db857e6f7df11eabb5e5665836db9ec8df07e28/packages/corpora/qc.zip"
_QC_BLOB = "bfc192fd8991f3a82989c9b300ea33d6c0283907"

SOURCES: tuple[Source, ...] = (
    Source(
        "pud",
        "ud_english_pud/en_pud-ud-test.r2.7.conllu.gz",
        f"{_PUD}/7053a1a6db2bd025a0d802abe22576df189cd465/en_pud-ud-test.conllu",
        "e312f9f0273b51634e1b32b7f8c3122341c168a22713a5eefe2d2fbe15ca6545",
        compress=True,
    ),
    Source(
        "pud216",
        "ud_english_pud/en_pud-ud-test.r2.16.conllu.gz",
        f"{_PUD}/37788eaa1f29dbe48d7d235d59d9c1bbbbe3f165/en_pud-ud-test.conllu",
        "8c23ea47522ca67cca7d1783e536aaa11e01a4b28465b9c40b7d222bf64863d2",
        compress=True,
    ),
    Source(
        "ewt",
        "ud_english_ewt/en_ewt-ud-train.conllu.gz",
        f"{_EWT}/en_ewt-ud-train.conllu",
        "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
        git_blob="34731d23bafeeff233fdcee18ffc0254b1aa0e28",
        compress=True,
    ),
    Source(
        "ewt",
        "ud_english_ewt/en_ewt-ud-dev.conllu.gz",
        f"{_EWT}/en_ewt-ud-dev.conllu",
        "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
        git_blob="a994b6990643429070ecc6e236d26ad6a04bfefb",
        compress=True,
    ),
    Source(
        "ewt",
        "ud_english_ewt/en_ewt-ud-test.conllu.gz",
        f"{_EWT}/en_ewt-ud-test.conllu",
        "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
        git_blob="c59667960ae967636606f47bc35f132a5557ad39",
        compress=True,
    ),
    Source(
        "streusle",
        "streusle/streusle.ud_train.conllulex.gz",
        f"{_STREUSLE}/train/streusle.ud_train.conllulex",
        None,  # official sha256 unknown; verified by the official git blob id
        git_blob="f6a22c7a1a01013ce5662d591e3023c16bbace71",
        compress=True,
        # the reconstructed train file of the shared data (same PS examples; see the module docstring)
        also_accept=("a45e995721e8dc99dbd006bc213ded8c3fba9faa4bf47348da6d1146aba4eab7",),
    ),
    Source(
        "streusle",
        "streusle/streusle.ud_dev.conllulex.gz",
        f"{_STREUSLE}/dev/streusle.ud_dev.conllulex",
        "ef5e72648b9c3673abeb15c4641a68f849e1d652bad3a6b15cca73124b1e5d46",
        git_blob="0405b14ab35c0677353958ec4d934c0029e0d3c7",
        compress=True,
    ),
    Source(
        "streusle",
        "streusle/streusle.ud_test.conllulex.gz",
        f"{_STREUSLE}/test/streusle.ud_test.conllulex",
        "7d159c49a015214944eab3acbfe7b0aefaa112e0928500a3dada7a4cc1048a18",
        git_blob="2b161dcc2ab261e9cc56d53d35f82f600343da91",
        compress=True,
    ),
    Source(
        "trec",
        "trec/train_5500.label",
        _QC_ZIP,
        "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3",
        git_blob=_QC_BLOB,
        member="qc/train.txt",
    ),
    Source(
        "trec",
        "trec/TREC_10.label",
        _QC_ZIP,
        "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e",
        git_blob=_QC_BLOB,
        member="qc/test.txt",
    ),
)

CORPUS_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.corpus for s in SOURCES))
_DIRS: tuple[str, ...] = tuple(dict.fromkeys(s.dest.split("/")[0] for s in SOURCES))

# the opener; tests replace it to simulate being offline
_urlopen: Callable[..., object] = urllib.request.urlopen


def git_blob_id(data: bytes) -> str:
    """The git blob id (sha1 hex) of ``data``, as listed in a GitHub tree."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def _offline_message(url: str, reason: object) -> str:
    return (
        f"cannot download {url} ({reason}). `tuneprobe data download` needs internet access. "
        f"Offline, copy the corpora (DIR/{{{','.join(_DIRS)}}}/..., layout in `python -m pydoc "
        f"tuneprobe.tasks.data`) from a machine that has them and point tuneprobe at them with "
        f"--data-dir DIR or {ENV_VAR}=DIR."
    )


def fetch(url: str, timeout: float = TIMEOUT_S) -> bytes:
    """The body of ``url``. OfflineError if the network fails (at once), DownloadError for an HTTP error."""
    request = urllib.request.Request(url, headers={"User-Agent": "tuneprobe (data download)"})
    try:
        with _urlopen(request, timeout=timeout) as response:  # type: ignore[attr-defined]
            buf = io.BytesIO()
            while chunk := response.read(_CHUNK):
                buf.write(chunk)
            return buf.getvalue()
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise OfflineError(_offline_message(url, exc.reason)) from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, truncated bodies
        raise OfflineError(_offline_message(url, exc)) from exc


def _verify(src: Source, content: bytes, zip_bytes: bytes | None) -> None:
    blob_of = zip_bytes if src.member else content
    if src.git_blob is not None and blob_of is not None and git_blob_id(blob_of) != src.git_blob:
        raise DownloadError(
            f"{src.url}: git blob id {git_blob_id(blob_of)} differs from the official {src.git_blob}; "
            "nothing written"
        )
    if src.sha256 is not None and hashlib.sha256(content).hexdigest() != src.sha256:
        what = f"{src.url} member {src.member}" if src.member else src.url
        raise DownloadError(
            f"{what}: sha256 {hashlib.sha256(content).hexdigest()} differs from the expected {src.sha256}; "
            "nothing written"
        )


def _existing_ok(src: Source, path: Path) -> bool:
    """Whether ``path`` already holds an accepted content for ``src``."""
    if not path.is_file():
        return False
    try:
        data = gzip.decompress(path.read_bytes()) if src.compress else path.read_bytes()
    except (OSError, EOFError):
        return False
    digest = hashlib.sha256(data).hexdigest()
    if digest in src.also_accept or (src.sha256 is not None and digest == src.sha256):
        return True
    return src.sha256 is None and src.git_blob is not None and git_blob_id(data) == src.git_blob


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download(
    data_dir: str | Path | None = None,
    corpora: Iterable[str] | None = None,
    force: bool = False,
    report: Callable[[str], None] | None = None,
) -> list[tuple[Path, str]]:
    """Download and verify the corpora into the data directory; returns ``(path, status)`` per file.

    data_dir: see :func:`tuneprobe.tasks.resolve_data_dir` (default ``$TUNEPROBE_DATA``, else the user dir).
    corpora: a subset of :data:`CORPUS_NAMES` (default: all).
    force: download even files that are already present and verified.
    report: called with one line of progress per file.
    Status is ``"present"`` (kept) or ``"downloaded"``. Raises OfflineError at the first network failure and
    DownloadError for a bad answer; files finished before stay (they are complete and verified).
    """
    wanted = list(CORPUS_NAMES) if corpora is None else list(dict.fromkeys(corpora))
    unknown = [c for c in wanted if c not in CORPUS_NAMES]
    if unknown:
        raise UnknownNameError(
            f"unknown corpus {', '.join(unknown)}; valid corpora: {', '.join(CORPUS_NAMES)}"
        )
    root = resolve_data_dir(data_dir)
    say = report or (lambda _msg: None)
    fetched: dict[str, bytes] = {}
    results: list[tuple[Path, str]] = []
    for src in SOURCES:
        if src.corpus not in wanted:
            continue
        path = root / src.dest
        if not force and _existing_ok(src, path):
            say(f"present     {path}")
            results.append((path, "present"))
            continue
        if src.url not in fetched:
            say(f"fetching    {src.url}")
            fetched[src.url] = fetch(src.url)
        body = fetched[src.url]
        if src.member:
            try:
                with zipfile.ZipFile(io.BytesIO(body)) as zf:
                    content = zf.read(src.member)
            except (zipfile.BadZipFile, KeyError) as exc:
                raise DownloadError(f"{src.url}: cannot read member {src.member}: {exc}") from exc
        else:
            content = body
        _verify(src, content, body if src.member else None)
        write_atomic(path, gzip.compress(content, compresslevel=9, mtime=0) if src.compress else content)
        say(f"downloaded  {path} ({len(content):,} bytes, verified)")
        results.append((path, "downloaded"))
    return results


def verify_file(path: str | Path, dest: str) -> None:
    """Check one stored file against its source's checksums; DataFormatError if it does not match.

    dest: the file's path relative to the data directory (e.g. ``"trec/TREC_10.label"``).
    """
    matches = [s for s in SOURCES if s.dest == dest]
    if not matches:
        raise UnknownNameError(f"no known source for {dest!r}")
    if not _existing_ok(matches[0], Path(path)):
        raise DataFormatError(path, None, f"content does not match the official {dest} (checksum differs)")
