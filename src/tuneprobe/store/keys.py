"""Cache keys: content hashes of everything that determines a representation matrix.

A cache *entry* is identified by ``entry_key(spec)``: the sha256 of the canonical JSON of a spec dict holding
the model's weights hash, its tokenizer/config hash, the task, corpus, split name, split fingerprint
(``Split.fingerprint()``), unit kind and pooling options. One matrix of an entry is one hidden-state layer;
its key is ``layer_key(entry, layer)``. A changed checkpoint (new weight bytes) gives a new weights hash,
hence new keys: stale vectors are never reused.

Weight hashes of files are cached per (real path, size, mtime_ns) in memory and in
``<cache>/weights-sha256.json`` so that a cached extraction does not re-read a 440 MB checkpoint.

This module imports no torch; ``tensor_sha256`` imports it lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: bump when the meaning of a cached matrix changes (pooling, windowing, layout)
FORMAT_VERSION = 1

#: weight files, in the order they are looked for inside a model directory
WEIGHT_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "pytorch_model*.bin",
    "tf_model.h5",
    "flax_model.msgpack",
)

#: files besides the weights that change the vectors (tokenisation, architecture hyper-parameters)
AUX_FILES: tuple[str, ...] = (
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)

_HASH_CHUNK = 1 << 22
_memo: dict[tuple[str, int, int], str] = {}
_memo_lock = threading.Lock()


def default_cache_dir() -> Path:
    """``$TUNEPROBE_CACHE`` if set, else ``platformdirs.user_cache_dir("tuneprobe")``."""
    raw = os.environ.get("TUNEPROBE_CACHE")
    if raw:
        return Path(raw).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("tuneprobe"))


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for every hash in the store."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sha256_text(text: str) -> str:
    """sha256 hex digest of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_key(spec: Mapping[str, Any]) -> str:
    """Key of a cache entry: sha256 over the canonical JSON of ``spec`` (which must not hold the layer)."""
    if "layer" in spec:
        raise ValueError("the entry spec must not contain 'layer'; use layer_key()")
    return sha256_text(canonical_json({"format": FORMAT_VERSION, **spec}))


def layer_key(entry: str, layer: int) -> str:
    """Key of one matrix (one hidden-state layer) of an entry."""
    return sha256_text(f"{entry}:layer={int(layer)}")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of one file's bytes, streamed in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _disk_memo_path(cache_dir: Path | None) -> Path | None:
    return None if cache_dir is None else Path(cache_dir) / "weights-sha256.json"


def _read_disk_memo(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_file_sha256(path: str | os.PathLike[str], cache_dir: Path | None = None) -> str:
    """``file_sha256`` memoised per (real path, size, mtime_ns), in memory and (if given) in ``cache_dir``.

    A rewritten file changes its mtime or size, so it is hashed again.
    """
    from tuneprobe.store.arrays import atomic_write_text  # local: arrays imports keys

    p = Path(path)
    skey = _stat_key(p)
    with _memo_lock:
        if skey in _memo:
            return _memo[skey]
    memo_path = _disk_memo_path(cache_dir)
    disk = _read_disk_memo(memo_path)
    rec = disk.get(skey[0])
    if isinstance(rec, dict) and rec.get("size") == skey[1] and rec.get("mtime_ns") == skey[2]:
        digest = str(rec["sha256"])
    else:
        digest = file_sha256(p)
        if memo_path is not None:
            try:
                memo_path.parent.mkdir(parents=True, exist_ok=True)
                disk = _read_disk_memo(memo_path)  # re-read: another process may have added entries
                disk[skey[0]] = {"size": skey[1], "mtime_ns": skey[2], "sha256": digest}
                atomic_write_text(memo_path, json.dumps(disk, indent=1, sort_keys=True))
            except OSError:
                pass  # the memo is an optimisation only
    with _memo_lock:
        _memo[skey] = digest
    return digest


def weight_files(model_dir: str | os.PathLike[str]) -> list[Path]:
    """The weight files of a model directory (first matching pattern of ``WEIGHT_PATTERNS``), sorted by
    name."""
    d = Path(model_dir)
    for pattern in WEIGHT_PATTERNS:
        files = sorted(p for p in d.glob(pattern) if p.is_file())
        if files:
            return files
    return []


def combine_file_hashes(named: Iterable[tuple[str, str]]) -> str:
    """One hash over several (file name, sha256) pairs; a single file gives its own sha256 unchanged."""
    items = sorted(named)
    if len(items) == 1:
        return items[0][1]
    return sha256_text(canonical_json(items))


def dir_weights_sha256(model_dir: str | os.PathLike[str], cache_dir: Path | None = None) -> str:
    """Weights hash of a model directory: sha256 of its weight file (or a hash over all of them, if sharded).

    Raises FileNotFoundError when the directory holds no weight file.
    """
    files = weight_files(model_dir)
    if not files:
        raise FileNotFoundError(f"{model_dir}: no weight file ({', '.join(WEIGHT_PATTERNS)})")
    return combine_file_hashes((f.name, cached_file_sha256(f, cache_dir)) for f in files)


def dir_aux_sha256(model_dir: str | os.PathLike[str]) -> str:
    """Hash over the config and tokenizer files of a model directory (small files, hashed every time)."""
    d = Path(model_dir)
    named = [(name, file_sha256(d / name)) for name in AUX_FILES if (d / name).is_file()]
    return sha256_text(canonical_json(sorted(named)))


def tensor_sha256(named_tensors: Iterable[tuple[str, Any]]) -> str:
    """Weights hash of an in-memory model: sha256 over (name, dtype, shape, bytes) of every tensor, by name.

    ``named_tensors``: e.g. ``model.state_dict().items()``. Tensors are copied to CPU one at a time.
    """
    import torch

    h = hashlib.sha256()
    for name, t in sorted(named_tensors, key=lambda kv: kv[0]):
        cpu = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{cpu.dtype}|{tuple(cpu.shape)}\x1e".encode())
        # view as bytes: works for every dtype, including bfloat16 which numpy lacks
        h.update(cpu.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()
