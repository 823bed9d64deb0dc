"""The on-disk representation store: float32 ``.npy`` matrices, a JSON manifest per entry, atomic commits.

Layout (``root`` = ``$TUNEPROBE_CACHE`` or ``platformdirs.user_cache_dir("tuneprobe")``)::

    root/
      weights-sha256.json                  memo: model file -> sha256 (keyed by path, size, mtime_ns)
      representations/v1/<key[:2]>/<key>/  one entry = model weights x split x unit/pooling options
        manifest.json                      spec, n_examples, dim, and per file: layers, shape, per-layer
                                           sha256 and per-layer key
        L0_1_2_3_4_5_6.npy                 float32 [n_layers, n_examples, dim]: layers extracted together
        partial-<plan>/data.npy            an extraction in progress (resumable; never read as a result)
        partial-<plan>/progress.json       batches completed (and flushed) so far
        .lock                              flock held while writing

Every layer of every file has its own sha256 (over that layer's ``[n_examples, dim]`` C-order float32 bytes)
and its own key (``keys.layer_key``), so each matrix is checked on its own. The layers of one extraction share
one file so that ``Representations.X`` can be a single read-only memmap (no copy in RAM).

Writes are atomic: data is filled into ``partial-<plan>/data.npy`` (a memmap), flushed and fsynced,
checksummed, then ``os.replace``d to its final name; only then does the manifest (itself written to a temp
file, fsynced and replaced) name it. A killed extraction therefore leaves no file that the manifest names; its
``partial-*`` directory holds the batches done up to the last checkpoint and a rerun with the same plan
resumes from there. A file whose checksum does not match (or that cannot be read) is reported, dropped and
recomputed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuneprobe.errors import TuneprobeError
from tuneprobe.store.keys import FORMAT_VERSION, default_cache_dir, layer_key

log = logging.getLogger("tuneprobe.store")

_UMASK = os.umask(0o022)
os.umask(_UMASK)
_registry_lock = threading.Lock()
_thread_locks: dict[str, threading.RLock] = {}  # entry dir -> lock making ``locked`` re-entrant per thread
_depth: dict[str, int] = {}

MANIFEST = "manifest.json"
PROGRESS = "progress.json"

try:  # POSIX advisory locks; elsewhere concurrent writers are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_prefix(path: str | os.PathLike[str]) -> str:
    """Name prefix of a temporary file that will replace ``path``: ``.<name>.<host>-<pid>.``, so that a later
    writer of the same path can tell the leftovers of killed writers (:func:`sweep_stale_temps`)."""
    return f".{Path(path).name}.{socket.gethostname()}-{os.getpid()}."


def sweep_stale_temps(path: str | os.PathLike[str]) -> None:
    """Remove temporary files of ``path`` (named by :func:`temp_prefix`) left by writers on this host whose
    process is gone (a SIGKILL between the temporary write and the rename). Live writers' files are kept."""
    p = Path(path)
    head = f".{p.name}.{socket.gethostname()}-"
    with contextlib.suppress(OSError):
        for q in p.parent.iterdir():
            pid = q.name[len(head) :].split(".", 1)[0] if q.name.startswith(head) else ""
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    q.unlink()
            except OSError:  # alive, another user's process
                pass


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same directory, fsync, ``os.replace``, fsync
    dir. Temporary files of earlier, killed writers of ``path`` are removed first."""
    p = Path(path)
    sweep_stale_temps(p)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(p), suffix=".tmp", dir=p.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(p.parent)


def array_sha256(a: np.ndarray) -> str:
    """sha256 of an array's C-order bytes (no copy when ``a`` is C-contiguous)."""
    return hashlib.sha256(np.ascontiguousarray(a)).hexdigest()


def layers_sha256(X: np.ndarray, threads: int | None = None) -> list[str]:
    """sha256 of each ``X[k]`` for X ``[n_layers, n, dim]``; layers are hashed in parallel threads (GIL
    released)."""
    n = X.shape[0]
    if n <= 1 or threads == 1:
        return [array_sha256(X[k]) for k in range(n)]
    with ThreadPoolExecutor(max_workers=threads or min(n, os.cpu_count() or 1)) as ex:
        return list(ex.map(lambda k: array_sha256(X[k]), range(n)))


def file_name(layers: Sequence[int]) -> str:
    """Name of the file holding ``layers``, e.g. ``L0_1_2.npy``."""
    return "L" + "_".join(str(int(x)) for x in layers) + ".npy"


@dataclass
class CacheHit:
    """A verified cached matrix stack.

    X: float32 ``[len(layers), n_examples, dim]``, a read-only memmap (a copy only when the requested layers
    are not contiguous in their file).
    """

    X: np.ndarray
    path: Path
    layers: list[int]
    manifest: dict[str, Any]


class RepresentationStore:
    """Content-addressed store of representation matrices under ``root`` (see the module docstring).

    verify: check the sha256 of every layer that is loaded (about 0.7 GB/s per core; layers in parallel). Turn
    it off with ``verify=False`` or ``TUNEPROBE_VERIFY=0`` for very large cached splits.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, verify: bool | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        if verify is None:
            verify = os.environ.get("TUNEPROBE_VERIFY", "1").strip().lower() not in (
                "0",
                "false",
                "no",
                "off",
            )
        self.verify = verify

    # -- paths -----------------------------------------------------------------------------------------------
    @property
    def base(self) -> Path:
        return self.root / "representations" / f"v{FORMAT_VERSION}"

    def entry_dir(self, key: str) -> Path:
        return self.base / key[:2] / key

    def read_manifest(self, key: str) -> dict[str, Any] | None:
        """The entry's manifest, or None if absent or unreadable."""
        p = self.entry_dir(key) / MANIFEST
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable manifest %s (%s); treating the entry as empty", p, exc)
            return None
        return data if isinstance(data, dict) else None

    # -- reading ---------------------------------------------------------------------------------------------
    def lookup(self, key: str, layers: Sequence[int], n_examples: int | None = None) -> CacheHit | None:
        """Return the requested layers if one committed file holds them all and (if ``verify``) its checksums
        match.

        A file that fails its checksum or cannot be read is logged, removed from the manifest and deleted; the
        caller then recomputes.
        """
        manifest = self.read_manifest(key)
        if manifest is None:
            return None
        want = [int(x) for x in layers]
        candidates = []
        for name, rec in manifest.get("files", {}).items():
            have = [int(x) for x in rec.get("layers", [])]
            if not set(want) <= set(have):
                continue
            idx = [have.index(x) for x in want]
            contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
            candidates.append((not contiguous, len(have), name, rec, idx))
        for _, _, name, rec, idx in sorted(candidates):
            path = self.entry_dir(key) / name
            X = self._open_verified(key, path, rec, idx, n_examples)
            if X is not None:
                return CacheHit(X=X, path=path, layers=want, manifest=manifest)
        return None

    def _open_verified(
        self, key: str, path: Path, rec: dict[str, Any], idx: list[int], n_examples: int | None
    ) -> np.ndarray | None:
        try:
            mm = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._drop_corrupt(key, path, f"cannot be read ({exc})")
            return None
        if list(mm.shape) != list(rec.get("shape", [])) or mm.dtype != np.float32:
            self._drop_corrupt(
                key, path, f"has shape {mm.shape} {mm.dtype}, manifest says {rec.get('shape')}"
            )
            return None
        if n_examples is not None and mm.shape[1] != n_examples:
            self._drop_corrupt(key, path, f"has {mm.shape[1]} rows, the split has {n_examples}")
            return None
        X = mm[idx[0] : idx[-1] + 1] if idx == list(range(idx[0], idx[0] + len(idx))) else np.asarray(mm[idx])
        if self.verify:
            have = [int(x) for x in rec["layers"]]
            expected = [rec["sha256"][str(have[i])] for i in idx]
            got = layers_sha256(X)
            bad = [have[i] for i, e, g in zip(idx, expected, got, strict=True) if e != g]
            if bad:
                del mm, X
                self._drop_corrupt(key, path, f"checksum mismatch in layer(s) {bad}")
                return None
        return X

    def _drop_corrupt(self, key: str, path: Path, why: str) -> None:
        log.warning("cached representation file %s %s; it will be recomputed", path, why)
        with self.locked(key):
            manifest = self.read_manifest(key) or {}
            manifest.get("files", {}).pop(path.name, None)
            if manifest:
                atomic_write_text(
                    self.entry_dir(key) / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True)
                )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- writing ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Hold the entry's exclusive lock (``flock`` across processes; re-entrant within a thread)."""
        d = self.entry_dir(key)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TuneprobeError(
                f"cannot write to the cache directory {self.root} ({exc.strerror}); point TUNEPROBE_CACHE or "
                "--cache-dir at a writable directory"
            ) from None
        k = str(d)
        with _registry_lock:
            rlock = _thread_locks.setdefault(k, threading.RLock())
        with rlock:
            depth = _depth.get(k, 0)
            fh = None
            if depth == 0 and fcntl is not None:
                fh = open(d / ".lock", "a+")  # noqa: SIM115 (closed below)
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("waiting for another process writing %s", d)
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            _depth[k] = depth + 1
            try:
                yield
            finally:
                _depth[k] -= 1
                if fh is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                    fh.close()

    @contextlib.contextmanager
    def writer(
        self, key: str, spec: dict[str, Any], layers: Sequence[int], n_examples: int, dim: int, plan: str
    ) -> Iterator[EntryWriter]:
        """Open (or resume) an extraction into this entry, holding the entry's lock.

        plan: identifies the batch plan; a partial extraction is resumed only under the same plan (other
        partial directories of the entry are stale and removed). Call ``EntryWriter.commit()`` to publish;
        leaving the block without it keeps the partial state for a later resume.
        """
        with self.locked(key):
            w = EntryWriter(self, key, spec, [int(x) for x in layers], n_examples, dim, plan)
            try:
                yield w
            finally:
                w.close()

    def remove(self, key: str) -> None:
        """Delete an entry (manifest, files and partial state)."""
        shutil.rmtree(self.entry_dir(key), ignore_errors=True)


class EntryWriter:
    """Fills ``array`` (float32 ``[n_layers, n_examples, dim]`` memmap) batch by batch; see
    ``RepresentationStore.writer``.

    batches_done: batches already in ``array`` from a previous, interrupted run with the same plan (0 if
    fresh).
    """

    def __init__(
        self,
        store: RepresentationStore,
        key: str,
        spec: dict[str, Any],
        layers: list[int],
        n_examples: int,
        dim: int,
        plan: str,
    ) -> None:
        self.store, self.key, self.spec, self.layers = store, key, spec, layers
        self.n_examples, self.dim, self.plan = n_examples, dim, plan
        self.dir = store.entry_dir(key)
        self.committed: Path | None = None
        self.partial = self.dir / f"partial-{plan[:16]}"
        for stale in self.dir.glob("partial-*"):
            if stale != self.partial:
                shutil.rmtree(stale, ignore_errors=True)
        shape = (len(layers), n_examples, dim)
        self.batches_done = 0
        data = self.partial / "data.npy"
        progress = self._read_progress()
        if progress is not None and data.is_file():
            try:
                self.array = np.lib.format.open_memmap(data, mode="r+")
                if self.array.shape == shape and self.array.dtype == np.float32:
                    self.batches_done = int(progress["batches_done"])
                    log.info("resuming %s after %d batches", self.dir, self.batches_done)
                    return
                del self.array
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        self.array = np.lib.format.open_memmap(data, mode="w+", dtype=np.float32, shape=shape)

    def _read_progress(self) -> dict[str, Any] | None:
        try:
            p = json.loads((self.partial / PROGRESS).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(p, dict) or p.get("plan") != self.plan:
            return None
        return p

    def _flush(self) -> None:
        self.array.flush()
        with open(self.partial / "data.npy", "rb+") as fh:
            os.fsync(fh.fileno())

    def checkpoint(self, batches_done: int) -> None:
        """Record that the first ``batches_done`` batches are complete (flushes and fsyncs the data first)."""
        self._flush()
        atomic_write_text(
            self.partial / PROGRESS, json.dumps({"plan": self.plan, "batches_done": int(batches_done)})
        )
        self.batches_done = batches_done

    def commit(self, meta: dict[str, Any] | None = None) -> Path:
        """Checksum, publish the file atomically, record it in the manifest and drop files it supersedes."""
        self._flush()
        sums = layers_sha256(self.array)
        del self.array
        final = self.dir / file_name(self.layers)
        os.replace(self.partial / "data.npy", final)
        _fsync_dir(self.dir)
        manifest = self.store.read_manifest(self.key) or {}
        manifest.update(
            {
                "format": FORMAT_VERSION,
                "key": self.key,
                "spec": self.spec,
                "n_examples": self.n_examples,
                "dim": self.dim,
            }
        )
        files: dict[str, Any] = manifest.setdefault("files", {})
        for name, rec in list(files.items()):  # files whose layers the new one covers are redundant
            if name != final.name and set(rec.get("layers", [])) <= set(self.layers):
                files.pop(name)
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / name).unlink()
        files[final.name] = {
            "layers": self.layers,
            "shape": [len(self.layers), self.n_examples, self.dim],
            "dtype": "float32",
            "sha256": {str(layer): s for layer, s in zip(self.layers, sums, strict=True)},
            "layer_keys": {str(layer): layer_key(self.key, layer) for layer in self.layers},
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "meta": meta or {},
        }
        atomic_write_text(self.dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        shutil.rmtree(self.partial, ignore_errors=True)
        self.committed = final
        return final

    def close(self) -> None:
        """Release the memmap (the partial state stays on disk unless committed)."""
        if hasattr(self, "array"):
            with contextlib.suppress(Exception):
                self.array.flush()
            del self.array
