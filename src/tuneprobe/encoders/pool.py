"""Pooling of subword hidden states into example vectors, as one sparse weighted sum per batch.

Every example vector is ``n_parts`` blocks of H (1 for token and sentence units, 2 for pairs: ``[dependent;
head]``). Block ``part`` of example ``row`` ("target" ``row * n_parts + part``) is a weighted sum of
hidden-state rows ``(segment, position)``. A ``PoolPlan`` lists these (target, segment, position, weight)
triplets for the whole split:

- word, ``mean``: every subword of the word, weight 1/n_subwords (the paper's rule); ``first`` / ``last``: one
  subword, weight 1;
- sentence, ``cls``: position 0 ([CLS]) of each of the sentence's windows, weight 1/n_windows (one window,
  i.e. every sentence that fits, gives exactly the [CLS] vector); ``mean``: every subword of the sentence
  (specials excluded), weight 1/n_subwords.

At run time a batch's triplets become a sparse ``[n_targets, B*T]`` pooling matrix (``batch_pooler``) and
one sparse-dense product per layer computes all of the batch's vectors (``pool_batch``): no Python loop over
words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuneprobe.encoders.align import Alignment
from tuneprobe.errors import TuneprobeError, UnknownNameError

if TYPE_CHECKING:
    import torch

    from tuneprobe.tasks.base import Example

WORD_POOLINGS = ("mean", "first", "last")
SENTENCE_POOLINGS = ("cls", "mean")


@dataclass
class PoolPlan:
    """Sparse pooling of a split: parallel int64/float32 arrays ``[n_triplets]`` (see the module docstring).

    n_parts: blocks per example vector (2 for pairs). target: ``row * n_parts + part``. segment: the segment
    (window) index. pos: position in that segment's input (specials counted). weight: float32 coefficient.
    """

    n_parts: int
    target: np.ndarray
    segment: np.ndarray
    pos: np.ndarray
    weight: np.ndarray


def _words_to_triplets(
    words: np.ndarray, targets: np.ndarray, al: Alignment, pooling: str, scale: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Triplets pooling flat word indices ``words`` into ``targets`` (both int64 ``[k]``); weights times
    ``scale``."""
    seg, first, n = al.word_segment[words], al.word_pos[words], al.word_len[words]
    if pooling == "first":
        w = np.ones(len(words), dtype=np.float64)
        out = (targets, seg, first, w)
    elif pooling == "last":
        w = np.ones(len(words), dtype=np.float64)
        out = (targets, seg, first + n - 1, w)
    else:  # mean
        total = int(n.sum())
        starts = np.cumsum(n) - n
        within = np.arange(total, dtype=np.int64) - np.repeat(starts, n)
        w = np.repeat(1.0 / n, n)
        out = (np.repeat(targets, n), np.repeat(seg, n), np.repeat(first, n) + within, w)
        if scale is not None:
            scale = np.repeat(scale, n)
    if scale is not None:
        out = (*out[:3], out[3] * scale)
    return out


def build_pool_plan(
    examples: Sequence[Example],
    local_sentence: np.ndarray,
    al: Alignment,
    unit_kind: str,
    pooling: str = "mean",
    sentence_pooling: str = "cls",
    n_prefix: int = 1,
) -> PoolPlan:
    """The pooling triplets of all ``examples``.

    local_sentence: int64 ``[n_split_sentences]`` mapping a split sentence index to its index in ``al`` (-1 if
    not encoded). n_prefix: special tokens before the words (sentence ``cls`` pooling needs >= 1).
    Raises TuneprobeError for a unit that points outside its sentence, UnknownNameError for an unknown
    pooling.
    """
    if pooling not in WORD_POOLINGS:
        raise UnknownNameError(f"pooling {pooling!r}: expected one of {', '.join(WORD_POOLINGS)}")
    if sentence_pooling not in SENTENCE_POOLINGS:
        raise UnknownNameError(
            f"sentence pooling {sentence_pooling!r}: expected one of {', '.join(SENTENCE_POOLINGS)}"
        )
    n = len(examples)
    sent = local_sentence[np.fromiter((e.sentence for e in examples), dtype=np.int64, count=n)]
    rows = np.arange(n, dtype=np.int64)
    n_words = np.diff(al.word_offset)[sent]
    if unit_kind in ("token", "pair"):
        n_parts = 1 if unit_kind == "token" else 2
        wrong = next((e for e in examples if len(e.unit) != n_parts), None)
        if wrong is not None:
            raise TuneprobeError(
                f"example {wrong.id}: a {unit_kind} unit has {n_parts} word index(es), got {wrong.unit}"
            )
        unit = np.fromiter((i for e in examples for i in e.unit), dtype=np.int64, count=n * n_parts)
        unit = unit.reshape(n, n_parts)
        bad = np.flatnonzero(((unit < 0) | (unit >= n_words[:, None])).any(axis=1))
        if len(bad):
            e = examples[int(bad[0])]
            raise TuneprobeError(
                f"example {e.id}: unit {e.unit} is outside its sentence of {int(n_words[bad[0]])} words"
            )
        words = (al.word_offset[sent][:, None] + unit).reshape(-1)
        targets = (rows[:, None] * n_parts + np.arange(n_parts)).reshape(-1)
        t, s, p, w = _words_to_triplets(words, targets, al, pooling)
    elif unit_kind == "sentence":
        n_parts = 1
        if sentence_pooling == "cls":
            if n_prefix < 1:
                raise TuneprobeError(
                    "sentence pooling 'cls' needs a tokenizer that puts a special token first"
                )
            n_seg = np.diff(al.segment_offset)[sent]
            t = np.repeat(rows, n_seg)
            within = np.arange(len(t), dtype=np.int64) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg)
            s = np.repeat(al.segment_offset[sent], n_seg) + within
            p = np.zeros(len(t), dtype=np.int64)
            w = np.repeat(1.0 / n_seg, n_seg)
        else:
            if np.any(n_words == 0):
                e = examples[int(np.flatnonzero(n_words == 0)[0])]
                raise TuneprobeError(f"example {e.id}: sentence pooling 'mean' of an empty sentence")
            words = np.repeat(al.word_offset[sent], n_words) + (
                np.arange(int(n_words.sum()), dtype=np.int64)
                - np.repeat(np.cumsum(n_words) - n_words, n_words)
            )
            targets = np.repeat(rows, n_words)
            cum = np.concatenate([[0], np.cumsum(al.word_len)])
            used = cum[al.word_offset[sent + 1]] - cum[al.word_offset[sent]]  # subwords pooled per sentence
            scale = al.word_len[words] / np.repeat(used, n_words)
            t, s, p, w = _words_to_triplets(words, targets, al, "mean", scale=scale)
    else:
        raise UnknownNameError(f"unit kind {unit_kind!r}: expected token, pair or sentence")
    return PoolPlan(
        n_parts=n_parts,
        target=np.asarray(t, np.int64),
        segment=np.asarray(s, np.int64),
        pos=np.asarray(p, np.int64),
        weight=np.asarray(w, np.float32),
    )


def batch_pooler(
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    n_targets: int,
    n_rows: int,
    device: torch.device,
    backend: str = "auto",
) -> Any:
    """The pooling matrix of one batch, ``[n_targets, n_rows]`` with ``weight[i]`` at ``(dst[i], src[i])``
    (duplicates add up): a scipy CSR matrix for CPU, a torch sparse COO tensor on ``device`` otherwise.

    src: int64 ``[k]`` flat row indices into the batch's ``[B*T, H]`` hidden states (``n_rows = B*T``).
    dst: int64 ``[k]`` output row of each triplet. weight: float32 ``[k]``. backend: ``auto`` (scipy on CPU,
    torch elsewhere), ``scipy`` or ``torch``.
    """
    if backend == "scipy" or (backend == "auto" and device.type == "cpu"):
        import scipy.sparse as sparse

        return sparse.csr_matrix((weight.astype(np.float32), (dst, src)), shape=(n_targets, n_rows))
    import torch

    idx = torch.from_numpy(np.stack([dst, src])).to(device)
    w = torch.from_numpy(weight.astype(np.float32)).to(device)
    return torch.sparse_coo_tensor(idx, w, (n_targets, n_rows), check_invariants=True).coalesce()


def pool_batch(hidden: torch.Tensor, pooler: Any) -> np.ndarray:
    """Pool one layer of one batch: ``pooler @ hidden.reshape(B*T, H)`` -> float32 numpy ``[n_targets, H]``.

    hidden: ``[B, T, H]`` hidden states. pooler: from ``batch_pooler``. On CPU this is one scipy CSR x dense
    product (single-threaded, so it stays fast when the CPU is oversubscribed, unlike ``index_add_``); on a
    GPU one ``torch.sparse.mm``, falling back to gather + ``index_add_`` where sparse kernels are missing
    (MPS).
    """
    import torch

    flat = hidden.reshape(-1, hidden.shape[-1])
    if not isinstance(pooler, torch.Tensor):
        return np.asarray(pooler @ flat.numpy(), dtype=np.float32)
    try:
        out = torch.sparse.mm(pooler, flat)
    except (NotImplementedError, RuntimeError):
        idx, w = pooler.indices(), pooler.values()
        out = flat.new_zeros((pooler.shape[0], flat.shape[1]))
        out.index_add_(0, idx[0], flat.index_select(0, idx[1]) * w.unsqueeze(1))
    return out.float().cpu().numpy()
