"""Training batches that pool exactly like extraction.

The training sentences are those that hold at least one example (for ``ps-*`` the target-bearing sentences;
the loss covers only the examples). They are aligned with :func:`tuneprobe.encoders.align.align` (same
subwords, same long-sentence windows) and pooled with the triplets of
:func:`tuneprobe.encoders.pool.build_pool_plan` (same subword weights, ``[dependent; head]`` order, [CLS] of
every window), so the vector a head sees in training is the vector ``tuneprobe.extract`` would return for the
last layer of the same weights.

Everything a batch needs is precomputed as flat arrays in CSR form (per sentence: its segments, its examples
and its pooling triplets); :meth:`TrainingData.batch` assembles a batch of sentence indices with a handful of
vectorised numpy operations (no Python loop over words, examples or sequences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuneprobe.errors import TuneprobeError

if TYPE_CHECKING:
    import torch

    from tuneprobe.encoders.load import Encoder
    from tuneprobe.tasks.base import Split


def ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(starts[i], ends[i])`` over i, vectorised; int64 ``[sum(ends - starts)]``."""
    lens = (ends - starts).astype(np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.cumsum(lens) - lens
    return np.repeat(starts.astype(np.int64) - offs, lens) + np.arange(total, dtype=np.int64)


@dataclass
class Batch:
    """One update's inputs.

    input_ids, attention_mask: int64 ``[S, T]`` (S sequences = the sentences' windows, padded to the longest).
    pooler: sparse COO float32 ``[n * n_parts, S*T]``: row ``example * n_parts + part`` holds the weights of
    the flattened ``[S*T, H]`` last-hidden-state rows pooled into that block (the extraction's triplets).
    labels: int64 ``[n]`` label ids (-1 = ignored). n_examples: n. sentences: int64 ``[B]`` training-sentence
    indices of the batch.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pooler: torch.Tensor
    labels: torch.Tensor
    n_examples: int
    sentences: np.ndarray

    def to(self, device: torch.device) -> Batch:
        """The same batch with every tensor on ``device``."""
        if self.input_ids.device == device:
            return self
        return Batch(
            *(t.to(device) for t in (self.input_ids, self.attention_mask, self.pooler, self.labels)),
            self.n_examples,
            self.sentences,
        )


class TrainingData:
    """The training split laid out for fine-tuning (see the module docstring).

    n_sentences: training sentences (those with >= 1 example), indexed 0..n_sentences-1 in split order.
    n_parts: blocks per example vector (2 for pairs). labels: label names; ``y`` int64 ``[n_examples]``.
    """

    def __init__(
        self,
        split: Split,
        encoder: Encoder,
        labels: Sequence[str] | None = None,
        pooling: str = "mean",
        sentence_pooling: str = "cls",
        max_length: int | None = None,
    ) -> None:
        from tuneprobe.encoders.align import align
        from tuneprobe.encoders.pool import build_pool_plan

        if len(split) == 0:
            raise TuneprobeError(f"task {split.task} split {split.name} has no examples to train on")
        self.split = split
        self.labels = list(labels) if labels is not None else split.labels
        vocab = {name: i for i, name in enumerate(self.labels)}
        y_all = np.asarray([vocab.get(e.label, -1) for e in split.examples], dtype=np.int64)
        ex_sent = np.fromiter((e.sentence for e in split.examples), dtype=np.int64, count=len(split))
        used = np.unique(ex_sent)
        local = np.full(len(split.sentences), -1, dtype=np.int64)
        local[used] = np.arange(len(used))
        self.sentence_index = used  # training sentence -> split sentence
        limit = min(max_length, encoder.max_length) if max_length else encoder.max_length
        self.max_length = limit
        al = align(
            [split.sentences[i] for i in used], encoder.tokenizer, limit, encoder.prefix, encoder.suffix
        )
        plan = build_pool_plan(
            split.examples,
            local,
            al,
            split.unit_kind,
            pooling,
            sentence_pooling,
            n_prefix=len(encoder.prefix),
        )
        self.alignment = al
        self.n_parts = plan.n_parts
        self.unit_kind = split.unit_kind
        n_sent = len(used)
        self.n_sentences = n_sent

        # examples grouped by training sentence (stable: corpus order within a sentence)
        ex_local = local[ex_sent]
        ex_order = np.argsort(ex_local, kind="stable")
        self.ex_order = ex_order  # position -> example index
        ex_pos = np.empty(len(ex_order), dtype=np.int64)
        ex_pos[ex_order] = np.arange(len(ex_order))  # example index -> position
        self.ex_offset = np.searchsorted(ex_local[ex_order], np.arange(n_sent + 1)).astype(np.int64)
        self.y = y_all[ex_order]  # by position

        # pooling triplets grouped by sentence, each pointing at its example's position and block
        t_row, t_part = np.divmod(plan.target, plan.n_parts)
        t_pos = ex_pos[t_row]
        t_sent = ex_local[t_row]
        t_order = np.lexsort((np.arange(len(t_pos)), t_pos, t_sent))
        self.t_pos = t_pos[t_order]
        self.t_part = t_part[t_order]
        self.t_segment = plan.segment[t_order]
        self.t_tokpos = plan.pos[t_order]
        self.t_weight = plan.weight[t_order]
        self.t_offset = np.searchsorted(t_sent[t_order], np.arange(n_sent + 1)).astype(np.int64)

        # tokens of all segments, flat
        self.seg_offset = al.segment_offset
        self.seg_len = al.segment_lengths
        self.tok_offset = np.concatenate([[0], np.cumsum(self.seg_len)]).astype(np.int64)
        self.tokens = (
            np.concatenate(al.segments).astype(np.int64) if al.segments else np.zeros(0, dtype=np.int64)
        )
        pad = encoder.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else 0
        # scratch maps (global index -> batch-local index), reused by every batch
        self._pos_map = np.zeros(len(ex_order), dtype=np.int64)
        self._seg_map = np.zeros(len(self.seg_len), dtype=np.int64)

    @property
    def n_examples(self) -> int:
        """Number of training examples."""
        return len(self.ex_order)

    def fingerprint(self) -> str:
        """The training split's fingerprint (``Split.fingerprint()``)."""
        return self.split.fingerprint()

    def batch(self, sentences: np.ndarray) -> Batch:
        """Assemble the batch of training-sentence indices ``sentences`` (int64 ``[B]``), on the CPU."""
        import torch

        sentences = np.asarray(sentences, dtype=np.int64)
        segs = ranges(self.seg_offset[sentences], self.seg_offset[sentences + 1])
        lens = self.seg_len[segs]
        S, T = len(segs), int(lens.max())
        ids = np.full((S, T), self.pad_id, dtype=np.int64)
        mask = np.arange(T)[None, :] < lens[:, None]
        ids[mask] = self.tokens[ranges(self.tok_offset[segs], self.tok_offset[segs + 1])]
        self._seg_map[segs] = np.arange(S)

        pos = ranges(self.ex_offset[sentences], self.ex_offset[sentences + 1])
        self._pos_map[pos] = np.arange(len(pos))
        trip = ranges(self.t_offset[sentences], self.t_offset[sentences + 1])
        src = self._seg_map[self.t_segment[trip]] * T + self.t_tokpos[trip]
        dst = self._pos_map[self.t_pos[trip]] * self.n_parts + self.t_part[trip]
        pooler = torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([dst, src])),
            torch.from_numpy(np.ascontiguousarray(self.t_weight[trip])),
            (len(pos) * self.n_parts, S * T),
            check_invariants=False,
        ).coalesce()
        return Batch(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask.astype(np.int64)),
            pooler=pooler,
            labels=torch.from_numpy(self.y[pos]),
            n_examples=len(pos),
            sentences=sentences,
        )
