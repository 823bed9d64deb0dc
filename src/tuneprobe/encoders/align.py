"""Subword <-> word alignment and long-sentence windows.

Sentences arrive pre-split into words and are tokenised with ``is_split_into_words=True``; the fast
tokenizer's ``word_ids()`` maps each subword to its word. A word that yields no subword at all (e.g. a lone
zero-width or control character) is given the tokenizer's unknown token, so every word has >= 1 subword
(logged).

A sentence whose subwords do not fit in ``max_length`` (specials included) is cut into overlapping *windows*
at word boundaries: each window spans at most ``W = max_length - n_specials`` subwords, the next window starts
at the first word at or after ``W // 2`` subwords from the previous start, but no later than the previous
window's last word (so consecutive windows overlap by about half, and always by at least one word), and
each word takes its vectors from the window in which it is **most central** (largest distance, in subwords,
from the word to the nearer window edge; ties go to the earlier window). Nothing is truncated, except a single
word longer than ``W`` subwords, which keeps its first ``W`` subwords (logged as a warning).

Each window is encoded as its own sequence ``prefix + subwords + suffix`` (``[CLS] ... [SEP]`` for BERT),
exactly as if its words were a sentence of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuneprobe.errors import TuneprobeError

log = logging.getLogger("tuneprobe.encoders")

_MAX_LOGGED = 5


@dataclass
class Alignment:
    """Subword layout of a list of sentences ("local" sentence indices 0..n_sentences-1).

    word_offset: int64 ``[n_sentences + 1]``; the words of sentence s are flat indices
    ``word_offset[s]:word_offset[s+1]``. word_segment: int64 ``[n_words]`` segment (window) whose hidden
    states the word's vector is taken from. word_pos: int64 ``[n_words]`` position of the word's first subword
    in that segment's input (specials counted). word_len: int64 ``[n_words]`` number of the word's subwords
    used (>= 1). sentence_subwords: int64 ``[n_sentences]`` subword count of each sentence (specials
    excluded). segments: per segment, int64 ``[len]`` input ids, specials included.
    segment_offset: int64 ``[n_sentences + 1]``; the segments of sentence s are
    ``segment_offset[s]:segment_offset[s+1]``. n_unk_words: words that had no subword and became the unknown
    token. n_windowed: sentences longer than ``max_length`` (encoded in several windows).
    """

    word_offset: np.ndarray
    word_segment: np.ndarray
    word_pos: np.ndarray
    word_len: np.ndarray
    sentence_subwords: np.ndarray
    segments: list[np.ndarray]
    segment_offset: np.ndarray
    n_unk_words: int
    n_windowed: int

    @property
    def n_sentences(self) -> int:
        return len(self.word_offset) - 1

    @property
    def segment_lengths(self) -> np.ndarray:
        """int64 ``[n_segments]`` input length of every segment (specials included)."""
        return np.fromiter((len(s) for s in self.segments), dtype=np.int64, count=len(self.segments))


def plan_windows(word_start: np.ndarray, word_end: np.ndarray, width: int) -> list[tuple[int, int]]:
    """Overlapping word-boundary windows over one sentence: list of (first word, one past last word).

    word_start, word_end: int64 ``[n_words]`` subword span of each word (contiguous, non-decreasing).
    width: the most subwords a window may hold. A single word wider than ``width`` gets a window of its own.
    """
    n = len(word_start)
    if n == 0:
        return [(0, 0)]
    if word_end[-1] - word_start[0] <= width:
        return [(0, n)]
    stride = max(1, width // 2)
    windows: list[tuple[int, int]] = []
    s = 0
    while True:
        e = int(np.searchsorted(word_end, word_start[s] + width, side="right"))
        e = max(e, s + 1)
        windows.append((s, e))
        if e >= n:
            return windows
        ns = int(np.searchsorted(word_start, word_start[s] + stride, side="left"))
        s = max(ns, s + 1) if e - s < 2 else min(max(ns, s + 1), e - 1)  # keep >= 1 word of overlap


def most_central(
    word_start: np.ndarray, word_end: np.ndarray, windows: Sequence[tuple[int, int]], width: int
) -> np.ndarray:
    """int64 ``[n_words]``: for each word, the index of the window where it is most central.

    Centrality = subwords between the word and the nearer edge of the window's subword span; ties -> earlier
    window.
    """
    n = len(word_start)
    best = np.full(n, -1, dtype=np.int64)
    best_margin = np.full(n, -1, dtype=np.int64)
    for k, (s, e) in enumerate(windows):
        if e <= s:
            continue
        lo = word_start[s]
        hi = min(word_end[e - 1], lo + width)
        ws, we = word_start[s:e], np.minimum(word_end[s:e], hi)
        margin = np.minimum(ws - lo, hi - we)
        better = margin > best_margin[s:e]
        best[s:e][better] = k
        best_margin[s:e][better] = margin[better]
    return best


def align(
    sentences: Sequence[Sequence[str]],
    tokenizer: Any,
    max_length: int,
    prefix: Sequence[int],
    suffix: Sequence[int],
    unk_id: int | None = None,
) -> Alignment:
    """Tokenise ``sentences`` (lists of words) and lay them out as model inputs (see the module docstring).

    tokenizer: a fast HF tokenizer. max_length: the model's longest input, specials included. prefix/suffix:
    the special token ids placed around every sequence.
    """
    width = max_length - len(prefix) - len(suffix)
    if width < 1:
        raise TuneprobeError(
            f"max_length {max_length} leaves no room for words after {len(prefix) + len(suffix)} "
            "special tokens"
        )
    if unk_id is None:
        unk_id = tokenizer.unk_token_id
    prefix_a = np.asarray(prefix, dtype=np.int64)
    suffix_a = np.asarray(suffix, dtype=np.int64)
    nonempty = [i for i, s in enumerate(sentences) if len(s) > 0]
    enc = (
        tokenizer(
            [list(sentences[i]) for i in nonempty],
            is_split_into_words=True,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        if nonempty
        else None
    )
    slot = {i: j for j, i in enumerate(nonempty)}

    word_offset = np.zeros(len(sentences) + 1, dtype=np.int64)
    segment_offset = np.zeros(len(sentences) + 1, dtype=np.int64)
    sentence_subwords = np.zeros(len(sentences), dtype=np.int64)
    w_seg: list[np.ndarray] = []
    w_pos: list[np.ndarray] = []
    w_len: list[np.ndarray] = []
    segments: list[np.ndarray] = []
    unk_examples: list[str] = []
    n_unk = n_windowed = n_clipped = 0

    for i, words in enumerate(sentences):
        n_words = len(words)
        if n_words == 0:
            ids = np.zeros(0, dtype=np.int64)
            wids = np.zeros(0, dtype=np.int64)
        else:
            j = slot[i]
            ids = np.asarray(enc["input_ids"][j], dtype=np.int64)
            wids = np.asarray([-1 if w is None else w for w in enc.word_ids(j)], dtype=np.int64)
            if np.any(wids < 0):
                raise TuneprobeError("tokenizer added special tokens although add_special_tokens=False")
            if np.any(np.diff(wids) < 0):
                raise TuneprobeError(
                    f"tokenizer {type(tokenizer).__name__} reorders words (word_ids not sorted)"
                )
        counts = np.bincount(wids, minlength=n_words) if n_words else np.zeros(0, dtype=np.int64)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            if unk_id is None:
                raise TuneprobeError("a word has no subwords and the tokenizer has no unknown token")
            n_unk += len(empty)
            if len(unk_examples) < _MAX_LOGGED:
                unk_examples.extend(repr(words[k]) for k in empty[: _MAX_LOGGED - len(unk_examples)])
            order = np.argsort(np.concatenate([wids, empty]), kind="stable")
            ids = np.concatenate([ids, np.full(len(empty), unk_id, dtype=np.int64)])[order]
            counts[empty] = 1
        end = np.cumsum(counts)
        start = end - counts
        sentence_subwords[i] = int(end[-1]) if n_words else 0

        windows = plan_windows(start, end, width)
        seg0 = len(segments)
        if len(windows) == 1:
            assign = np.zeros(n_words, dtype=np.int64)
        else:
            n_windowed += 1
            assign = most_central(start, end, windows, width)
        lens = counts.copy()
        pos = np.empty(n_words, dtype=np.int64)
        for k, (s, e) in enumerate(windows):
            lo = int(start[s]) if e > s else 0
            hi = min(int(end[e - 1]), lo + width) if e > s else 0
            segments.append(np.concatenate([prefix_a, ids[lo:hi], suffix_a]))
            mine = np.flatnonzero(assign == k)
            pos[mine] = len(prefix_a) + start[mine] - lo
            too_long = mine[end[mine] > hi]
            if len(too_long):
                n_clipped += len(too_long)
                lens[too_long] = hi - start[too_long]
        w_seg.append(seg0 + assign)
        w_pos.append(pos)
        w_len.append(lens)
        word_offset[i + 1] = word_offset[i] + n_words
        segment_offset[i + 1] = len(segments)

    if n_unk:
        log.warning(
            "%d word(s) had no subword and were encoded as the unknown token, e.g. %s",
            n_unk,
            ", ".join(unk_examples),
        )
    if n_clipped:
        log.warning(
            "%d word(s) have more than %d subwords; only their first %d are used", n_clipped, width, width
        )
    if n_windowed:
        log.info(
            "%d sentence(s) longer than %d tokens were encoded in overlapping windows", n_windowed, max_length
        )

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return Alignment(
        word_offset=word_offset,
        word_segment=cat(w_seg),
        word_pos=cat(w_pos),
        word_len=cat(w_len),
        sentence_subwords=sentence_subwords,
        segments=segments,
        segment_offset=segment_offset,
        n_unk_words=n_unk,
        n_windowed=n_windowed,
    )
