"""``tuneprobe.extract``: per-layer vectors of a split's examples, computed once and cached.

Flow: resolve the split and the model (without loading it) -> key from the weights hash, tokenizer/config
hash, split fingerprint and options -> verified cache hit (read-only memmap) or: align subwords, plan batches,
one forward pass per batch with all hidden states, sparse pooling straight into the store's memmap, atomic
commit.

Only the sentences that hold at least one example are encoded. Batches: sentences sorted by their longest
window (longest first, ties by sentence index), then filled to ``batch_size`` sequences; all windows of a
sentence share a batch, so every example is finished within one batch. The plan is deterministic, hence so are
the bytes.

torch and transformers are imported only on a cache miss.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuneprobe.errors import TuneprobeError, UnknownNameError
from tuneprobe.store.arrays import CacheHit, RepresentationStore
from tuneprobe.store.keys import (
    canonical_json,
    default_cache_dir,
    dir_aux_sha256,
    dir_weights_sha256,
    entry_key,
    sha256_text,
)
from tuneprobe.store.representations import Representations
from tuneprobe.tasks.base import Split, Task

if TYPE_CHECKING:
    from tuneprobe.encoders.align import Alignment
    from tuneprobe.encoders.load import Encoder
    from tuneprobe.encoders.pool import PoolPlan

log = logging.getLogger("tuneprobe.encoders")

DEFAULT_BATCH_SIZE = 64
CHECKPOINT_SECONDS = 30.0
#: padded-token budget per sequence slot: a batch holds at most batch_size * this many tokens
TOKENS_PER_SEQUENCE = 128


# ------------------------------------------------------------------------------------------------------------
# inputs
def resolve_split(
    task: str | Task | Split,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    **task_options: Any,
) -> Split:
    """A ``Split`` from a task name (via ``tuneprobe.tasks.get_task``), a ``Task``, or a ``Split`` (returned
    as is)."""
    if isinstance(task, Split):
        return task
    if isinstance(task, Task):
        return task.load(split)
    if not isinstance(task, str):
        raise TypeError(f"task must be a name, a Task or a Split, not {type(task).__name__}")
    try:
        from tuneprobe.tasks import get_task  # type: ignore[attr-defined]
    except ImportError:
        raise TuneprobeError(
            "task readers (tuneprobe.tasks.get_task) are not available in this install"
        ) from None
    return get_task(task, data_dir=data_dir, **task_options).load(split)


def _model_dims_from_dir(path: Path) -> tuple[int, int]:
    """(L, H) from ``config.json`` without importing transformers (plain keys first, e.g. DistilBERT's
    ``n_layers``/``dim``); falls back to ``AutoConfig`` for anything else."""
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise TuneprobeError(f"{path / 'config.json'}: unreadable ({exc})") from None
    layers = next(
        (cfg[k] for k in ("num_hidden_layers", "n_layers", "num_layers", "n_layer") if k in cfg), None
    )
    hidden = next((cfg[k] for k in ("hidden_size", "dim", "d_model", "n_embd") if k in cfg), None)
    if isinstance(layers, int) and isinstance(hidden, int):
        return layers, hidden
    try:
        from transformers import AutoConfig

        auto = AutoConfig.from_pretrained(path, local_files_only=True)
        return int(auto.num_hidden_layers), int(auto.hidden_size)
    except (OSError, ValueError, AttributeError) as exc:
        raise TuneprobeError(
            f"{path / 'config.json'}: cannot tell the number of layers and the hidden size ({exc})"
        ) from None


def resolve_layers(layers: int | Sequence[int] | None, n_layers: int) -> list[int]:
    """Sorted distinct hidden-state indices in 0..L (None = all; negative counts from the end: -1 = L)."""
    if layers is None:
        return list(range(n_layers + 1))
    if isinstance(layers, int | np.integer):
        layers = [int(layers)]
    out = set()
    for x in layers:
        k = int(x) + (n_layers + 1 if int(x) < 0 else 0)
        if not 0 <= k <= n_layers:
            raise UnknownNameError(f"layer {x}: the model has hidden states 0..{n_layers}")
        out.add(k)
    if not out:
        raise UnknownNameError("no layers requested")
    return sorted(out)


# ------------------------------------------------------------------------------------------------------------
# planning
def plan_batches(al: Alignment, batch_size: int) -> list[np.ndarray]:
    """Batches of local sentence indices: longest first, each up to ``batch_size`` sequences (windows) and
    up to ``batch_size * TOKENS_PER_SEQUENCE`` padded tokens (so batches of long sequences stay small)."""
    if batch_size < 1:
        raise UnknownNameError(f"batch size must be >= 1, got {batch_size}")
    seg_len = al.segment_lengths
    n_seg = np.diff(al.segment_offset)
    longest = np.maximum.reduceat(seg_len, al.segment_offset[:-1]) if len(seg_len) else np.zeros(0, np.int64)
    order = np.lexsort((np.arange(al.n_sentences), -longest))
    batches: list[np.ndarray] = []
    cur: list[int] = []
    size = 0
    budget = batch_size * TOKENS_PER_SEQUENCE
    width = 0  # padded length of the current batch (its first, longest sentence)
    for s in order:
        if cur and (size + n_seg[s] > batch_size or (size + n_seg[s]) * width > budget):
            batches.append(np.asarray(cur, dtype=np.int64))
            cur, size = [], 0
        if not cur:
            width = int(longest[s])
        cur.append(int(s))
        size += int(n_seg[s])
    if cur:
        batches.append(np.asarray(cur, dtype=np.int64))
    return batches


def encode(
    enc: Encoder,
    al: Alignment,
    plan: PoolPlan,
    batches: Sequence[np.ndarray],
    layers: Sequence[int],
    out: np.ndarray,
    start_batch: int = 0,
    on_checkpoint: Callable[[int], None] | None = None,
    progress: bool = True,
) -> None:
    """Run the model over ``batches`` and write pooled vectors into ``out``.

    out: float32 ``[len(layers), n_examples, n_parts * H]`` (e.g. the store's memmap); rows of batches before
    ``start_batch`` are assumed done. on_checkpoint(k): called about every ``CHECKPOINT_SECONDS`` with the
    number of completed batches.
    """
    import torch
    from tqdm.auto import tqdm

    import tuneprobe.encoders.pool as pool_mod

    H = enc.hidden_size
    out_flat = out.reshape(out.shape[0], -1, H)  # [n_layers, n_examples * n_parts, H], a view
    seg_len = al.segment_lengths
    n_seg = len(al.segments)
    seg_batch = np.empty(n_seg, dtype=np.int64)
    seg_local = np.empty(n_seg, dtype=np.int64)
    batch_segs: list[np.ndarray] = []
    for b, sents in enumerate(batches):
        segs = np.concatenate([np.arange(al.segment_offset[s], al.segment_offset[s + 1]) for s in sents])
        seg_batch[segs] = b
        seg_local[segs] = np.arange(len(segs))
        batch_segs.append(segs)
    trip_batch = seg_batch[plan.segment]
    order = np.argsort(trip_batch, kind="stable")
    bounds = np.searchsorted(trip_batch[order], np.arange(len(batches) + 1))
    pad = enc.tokenizer.pad_token_id if enc.tokenizer.pad_token_id is not None else 0
    dev = enc.device
    todo = range(start_batch, len(batches))
    total = int(sum(len(batch_segs[b]) for b in todo))
    last = time.monotonic()
    with (
        torch.inference_mode(),
        tqdm(total=total, unit="seq", desc="extract", disable=not progress, leave=False) as bar,
    ):
        for b in todo:
            segs = batch_segs[b]
            lens = seg_len[segs]
            T = int(lens.max())
            ids = np.full((len(segs), T), pad, dtype=np.int64)
            mask = np.arange(T)[None, :] < lens[:, None]
            ids[mask] = np.concatenate([al.segments[s] for s in segs])
            hidden = enc.model(
                input_ids=torch.from_numpy(ids).to(dev),
                attention_mask=torch.from_numpy(mask.astype(np.int64)).to(dev),
                output_hidden_states=True,
                return_dict=True,
            ).hidden_states
            sel = order[bounds[b] : bounds[b + 1]]
            uniq, inv = np.unique(plan.target[sel], return_inverse=True)
            src = seg_local[plan.segment[sel]] * T + plan.pos[sel]
            pooler = pool_mod.batch_pooler(
                src, inv.reshape(-1), plan.weight[sel], len(uniq), len(segs) * T, dev
            )
            for k, layer in enumerate(layers):
                out_flat[k, uniq] = pool_mod.pool_batch(hidden[layer], pooler)
            bar.update(len(segs))
            if (
                on_checkpoint is not None
                and time.monotonic() - last > CHECKPOINT_SECONDS
                and b + 1 < len(batches)
            ):
                on_checkpoint(b + 1)
                last = time.monotonic()


# ------------------------------------------------------------------------------------------------------------
# the API
def extract(
    task: str | Task | Split,
    model: str | Encoder = "default",
    split: str = "train",
    layers: int | Sequence[int] | None = None,
    pooling: str = "mean",
    sentence_pooling: str = "cls",
    device: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    cache: bool = True,
    verify: bool | None = None,
    max_length: int | None = None,
    progress: bool = True,
    trust_remote_code: bool = False,
    **task_options: Any,
) -> Representations:
    """Per-layer vectors of one split's examples, from the cache when possible.

    task: a task name (read with ``tuneprobe.tasks.get_task(task, data_dir=data_dir, **task_options)``, e.g.
    ``corpus="ewt"``), a ``Task``, or a ready ``Split`` (then ``split`` is ignored).
    model: ``"default"`` (packaged offline MiniLM), a local directory, a hub repo id, or an ``Encoder``.
    layers: hidden-state indices (0 = embeddings, 1..L; negative from the end); None = all of 0..L. Returned
    sorted and distinct.
    pooling: subword -> word, ``mean`` (paper) | ``first`` | ``last``. sentence_pooling: ``cls`` (paper) |
    ``mean`` (subwords, specials excluded); used by sentence units only.
    cache: False computes in memory and writes nothing. verify: check checksums on a cache hit (default: on,
    or ``TUNEPROBE_VERIFY``). max_length: encode windows of at most this many tokens (default: the model's
    limit).

    Returns ``Representations`` with X float32 ``[n_layers, n_examples, dim]`` (dim = H, or 2H for pairs; a
    read-only memmap when cached), y int64 ``[n_examples]`` into ``labels`` (= ``Split.labels``), and ``meta``
    (model, weights hash, task, corpus, split, unit kind, pooling, cache key/file, ``from_cache``,
    ``seconds``).
    """
    t0 = time.perf_counter()
    sp = resolve_split(task, split, data_dir=data_dir, **task_options)
    if len(sp) == 0:
        raise TuneprobeError(f"task {sp.task} split {sp.name} has no examples")
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    enc: Encoder | None = None
    model_dir: Path | None = None
    if isinstance(model, str):
        from tuneprobe.encoders.load import resolve_model_dir

        model_dir = resolve_model_dir(model)
        n_layers, hidden = _model_dims_from_dir(model_dir)
        weights = dir_weights_sha256(model_dir, cache_root if cache else None)
        aux = dir_aux_sha256(model_dir)
        model_name = model
    else:
        enc = model
        n_layers, hidden = enc.n_layers, enc.hidden_size
        weights = enc.weights_sha256(cache_root if cache else None)
        aux = enc.aux_sha256()
        model_name = enc.name
    layer_list = resolve_layers(layers, n_layers)
    unit = sp.unit_kind
    n_parts = 2 if unit == "pair" else 1
    dim = n_parts * hidden
    spec = {
        "weights_sha256": weights,
        "aux_sha256": aux,
        "task": sp.task,
        "corpus": sp.corpus,
        "split": sp.name,
        "split_fingerprint": sp.fingerprint(),
        "unit_kind": unit,
        "pooling": pooling if unit != "sentence" else None,
        "sentence_pooling": sentence_pooling if unit == "sentence" else None,
        "pair_order": "dependent,head" if unit == "pair" else None,
        "max_length": max_length,
        "windows": "word-boundary, stride W//2, most-central",
    }
    key = entry_key(spec)
    labels = sp.labels
    y = np.asarray(sp.label_ids(labels), dtype=np.int64)
    ids = [e.id for e in sp.examples]
    meta: dict[str, Any] = {
        "model": model_name,
        "model_path": str(model_dir or enc.path) if (model_dir or enc.path) else None,
        "n_model_layers": n_layers,
        "hidden_size": hidden,
        "dim": dim,
        **{k: v for k, v in spec.items() if k != "windows"},
        "cache_key": key,
    }

    store = RepresentationStore(cache_root, verify=verify) if cache else None

    def from_hit(hit: CacheHit) -> Representations:
        file_meta = hit.manifest["files"][hit.path.name].get("meta", {})
        keep = ("n_windowed", "n_unk_words", "n_sentences_encoded")
        meta.update({k: file_meta[k] for k in keep if k in file_meta})
        meta.update(
            cache_file=str(hit.path), from_cache=True, seconds=time.perf_counter() - t0, layers=layer_list
        )
        log.info("cache hit %s", hit.path)
        return Representations(X=hit.X, y=y, labels=labels, example_ids=ids, layers=layer_list, meta=meta)

    if store is not None:
        hit = store.lookup(key, layer_list, n_examples=len(sp))
        if hit is not None:
            return from_hit(hit)

    if enc is None:
        from transformers.utils import logging as hf_logging

        from tuneprobe.encoders.load import load_encoder_dir

        was_enabled = hf_logging.is_progress_bar_enabled()
        if not progress:
            hf_logging.disable_progress_bar()
        try:
            enc = load_encoder_dir(
                model_dir, name=model_name, device=device, trust_remote_code=trust_remote_code
            )
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
    elif device != "auto":
        from tuneprobe.encoders.load import resolve_device

        if resolve_device(device) != enc.device:
            enc.full_model.to(resolve_device(device))
            enc.device = resolve_device(device)
    from tuneprobe.encoders.align import align
    from tuneprobe.encoders.pool import build_pool_plan

    used = np.unique(np.fromiter((e.sentence for e in sp.examples), dtype=np.int64, count=len(sp)))
    local = np.full(len(sp.sentences), -1, dtype=np.int64)
    local[used] = np.arange(len(used))
    limit = min(max_length, enc.max_length) if max_length else enc.max_length
    al = align([sp.sentences[i] for i in used], enc.tokenizer, limit, enc.prefix, enc.suffix)
    plan = build_pool_plan(sp.examples, local, al, unit, pooling, sentence_pooling, n_prefix=len(enc.prefix))
    batches = plan_batches(al, batch_size)
    run_meta = {
        "n_windowed": al.n_windowed,
        "n_unk_words": al.n_unk_words,
        "n_sentences_encoded": len(used),
        "batch_size": batch_size,
        "device": str(enc.device),
    }
    meta.update(run_meta)

    if store is None:
        X = np.zeros((len(layer_list), len(sp), dim), dtype=np.float32)
        encode(enc, al, plan, batches, layer_list, X, progress=progress)
        meta.update(cache_file=None, from_cache=False, seconds=time.perf_counter() - t0, layers=layer_list)
        return Representations(X=X, y=y, labels=labels, example_ids=ids, layers=layer_list, meta=meta)

    plan_id = sha256_text(canonical_json([key, layer_list, batch_size, TOKENS_PER_SEQUENCE, limit]))
    with store.locked(key):
        hit = store.lookup(key, layer_list, n_examples=len(sp))  # another process may have just written it
        if hit is not None:
            return from_hit(hit)
        with store.writer(key, spec, layer_list, len(sp), dim, plan_id) as w:
            encode(
                enc,
                al,
                plan,
                batches,
                layer_list,
                w.array,
                start_batch=w.batches_done,
                on_checkpoint=w.checkpoint,
                progress=progress,
            )
            run_meta["seconds"] = time.perf_counter() - t0
            path = w.commit(run_meta)
    X = np.load(path, mmap_mode="r")
    meta.update(cache_file=str(path), from_cache=False, seconds=time.perf_counter() - t0, layers=layer_list)
    log.info("extracted %s in %.1fs -> %s", X.shape, meta["seconds"], path)
    return Representations(X=X, y=y, labels=labels, example_ids=ids, layers=layer_list, meta=meta)
