"""Pooling and alignment, checked against manual computation from a single-sentence forward pass."""

from __future__ import annotations

import logging
import weakref

import numpy as np
import pytest
import torch

from tuneprobe import extract
from tuneprobe.encoders.align import align, most_central, plan_windows
from tuneprobe.encoders.extract import resolve_layers
from tuneprobe.errors import TuneprobeError, UnknownNameError
from tuneprobe.tasks.base import Example, Split

ATOL = 1e-5


_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # encoder -> {words: (hidden, word_ids)}


def manual_hidden(enc, words):
    """(hidden_states [L+1, T, H] as numpy, word_ids [T]) of ``words`` encoded alone, specials included."""
    memo = _MEMO.setdefault(enc, {})
    if tuple(words) not in memo:
        memo[tuple(words)] = _manual_hidden(enc, words)
    return memo[tuple(words)]


def _manual_hidden(enc, words):
    batch = enc.tokenizer([list(words)], is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        out = enc.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
        )
    return torch.stack(out.hidden_states)[:, 0].numpy(), batch.word_ids(0)


def manual_word(hs, word_ids, i, pooling="mean"):
    """[L+1, H] vector of word i under ``pooling``."""
    pos = [t for t, w in enumerate(word_ids) if w == i]
    if pooling == "first":
        return hs[:, pos[0]]
    if pooling == "last":
        return hs[:, pos[-1]]
    return hs[:, pos].mean(axis=1)


@pytest.mark.parametrize("pooling", ["mean", "first", "last"])
def test_word_pooling_matches_manual(tiny, tiny_encoder, pooling):
    sp = tiny.token_split()
    rep = extract(sp, tiny_encoder, pooling=pooling, cache=False, progress=False, batch_size=3)
    assert rep.X.shape == (3, len(sp), 16) and rep.X.dtype == np.float32
    assert rep.layers == [0, 1, 2]
    multi = 0
    for k, e in enumerate(sp.examples):
        hs, wids = manual_hidden(tiny_encoder, sp.sentences[e.sentence])
        multi += sum(1 for w in wids if w == e.unit[0]) > 1
        np.testing.assert_allclose(rep.X[:, k], manual_word(hs, wids, e.unit[0], pooling), atol=ATOL)
    assert multi >= 4  # unbelievable, playing, quickly, jumped are split into several subwords
    assert rep.y.dtype == np.int64 and [rep.labels[i] for i in rep.y] == [e.label for e in sp.examples]
    assert rep.example_ids == [e.id for e in sp.examples]


def test_pooling_variants_differ_on_split_words(tiny, tiny_encoder):
    sp = tiny.token_split()
    xs = {
        p: extract(sp, tiny_encoder, pooling=p, cache=False, progress=False).X
        for p in ("mean", "first", "last")
    }
    k = next(i for i, e in enumerate(sp.examples) if sp.sentences[e.sentence][e.unit[0]] == "unbelievable")
    assert not np.allclose(xs["mean"][:, k], xs["first"][:, k])
    assert not np.allclose(xs["first"][:, k], xs["last"][:, k])
    single = next(i for i, e in enumerate(sp.examples) if sp.sentences[e.sentence][e.unit[0]] == "cat")
    np.testing.assert_allclose(xs["mean"][:, single], xs["first"][:, single], atol=ATOL)


def test_pair_is_dependent_then_head(tiny, tiny_encoder):
    tok = extract(tiny.token_split(), tiny_encoder, cache=False, progress=False)
    pair_sp = tiny.pair_split()
    pair = extract(pair_sp, tiny_encoder, cache=False, progress=False)
    assert pair.X.shape == (3, len(pair_sp), 32)
    row = {(e.sentence, e.unit[0]): k for k, e in enumerate(tiny.token_split().examples)}
    for k, e in enumerate(pair_sp.examples):
        dep, head = e.unit
        np.testing.assert_allclose(pair.X[:, k, :16], tok.X[:, row[(e.sentence, dep)]], atol=ATOL)
        np.testing.assert_allclose(pair.X[:, k, 16:], tok.X[:, row[(e.sentence, head)]], atol=ATOL)


@pytest.mark.parametrize("sentence_pooling", ["cls", "mean"])
def test_sentence_pooling(tiny, tiny_encoder, sentence_pooling):
    sp = tiny.sentence_split()
    rep = extract(
        sp, tiny_encoder, sentence_pooling=sentence_pooling, cache=False, progress=False, batch_size=2
    )
    assert rep.X.shape == (3, len(sp), 16)
    for k, e in enumerate(sp.examples):
        hs, wids = manual_hidden(tiny_encoder, sp.sentences[e.sentence])
        if sentence_pooling == "cls":
            expected = hs[:, 0]
        else:
            expected = hs[:, [t for t, w in enumerate(wids) if w is not None]].mean(axis=1)
        np.testing.assert_allclose(rep.X[:, k], expected, atol=ATOL)


def test_plan_windows_cover_and_overlap():
    counts = np.array([1, 3, 1, 2, 1, 1, 4, 1, 1, 2, 1, 1, 1, 3, 1], dtype=np.int64)
    end = np.cumsum(counts)
    start = end - counts
    windows = plan_windows(start, end, width=6)
    assert len(windows) > 2
    covered = np.zeros(len(counts), dtype=bool)
    for s, e in windows:
        assert end[e - 1] - start[s] <= 6
        covered[s:e] = True
    assert covered.all()
    for (s1, e1), (s2, _) in zip(windows, windows[1:], strict=False):
        assert s1 < s2 < e1  # consecutive windows overlap
    best = most_central(start, end, windows, 6)
    assert best.min() == 0 and best.max() == len(windows) - 1
    for w, k in enumerate(best):
        s, e = windows[k]
        assert s <= w < e


def test_long_sentence_encoded_in_windows(tiny, tmp_path):
    """max length 16 -> windows of 14 subwords; each word equals its most-central window encoded alone."""
    from tuneprobe.encoders.load import Encoder

    model, tok = tiny.make_tiny(tmp_path, max_position_embeddings=16, seed=1)
    enc = Encoder.from_model(model, tok, device="cpu")
    assert enc.max_length == 16
    text = "the quick brown fox unbelievable jumped over a lazy dog playing in the big red house , what is"
    words = tuple(text.split(" ") + ["the", "cat", "on", "the", "mat", "?"])
    sp = tiny.token_split([words, ("a", "dog", ".")])
    rep = extract(sp, enc, cache=False, progress=False, batch_size=4)
    assert rep.meta["n_windowed"] == 1
    al = align([words], tok, 16, enc.prefix, enc.suffix)
    counts = np.diff(np.r_[al.word_pos, 0])  # not used for layout; recompute spans below
    del counts
    ids = tok([list(words)], is_split_into_words=True, add_special_tokens=False).word_ids(0)
    n = np.bincount(np.asarray(ids), minlength=len(words))
    end = np.cumsum(n)
    start = end - n
    assert end[-1] > 14  # really longer than one window
    windows = plan_windows(start, end, 14)
    best = most_central(start, end, windows, 14)
    assert len(windows) >= 3
    for i in range(len(words)):
        s, e = windows[best[i]]
        hs, wids = manual_hidden(enc, words[s:e])
        expected = manual_word(hs, wids, i - s)
        np.testing.assert_allclose(rep.X[:, i], expected, atol=ATOL)
    # the last words are not truncated away: they differ from the first window's encoding
    assert np.all(np.abs(rep.X[:, len(words) - 1]).sum(axis=-1) > 0)


def test_sentence_cls_over_windows_is_mean_of_window_cls(tiny, tmp_path):
    from tuneprobe.encoders.load import Encoder

    model, tok = tiny.make_tiny(tmp_path, max_position_embeddings=16, seed=2)
    enc = Encoder.from_model(model, tok, device="cpu")
    words = tuple(("the cat sat on the mat . " * 4).split())
    sp = tiny.sentence_split([words])
    rep = extract(sp, enc, cache=False, progress=False)
    n = np.ones(len(words), dtype=np.int64)
    windows = plan_windows(np.cumsum(n) - n, np.cumsum(n), 14)
    expected = np.mean([manual_hidden(enc, words[s:e])[0][:, 0] for s, e in windows], axis=0)
    np.testing.assert_allclose(rep.X[:, 0], expected, atol=ATOL)


def test_word_without_subwords_becomes_unk(tiny, tiny_encoder, caplog):
    words = ("the", "\u200b", "cat")
    sp = tiny.token_split([words])
    with caplog.at_level(logging.WARNING, logger="tuneprobe.encoders"):
        rep = extract(sp, tiny_encoder, cache=False, progress=False)
    assert rep.meta["n_unk_words"] == 1
    assert any("unknown token" in r.message for r in caplog.records)
    hs, _ = manual_hidden(tiny_encoder, ("the", "[UNK]", "cat"))
    np.testing.assert_allclose(rep.X[:, 1], hs[:, 2], atol=ATOL)
    np.testing.assert_allclose(rep.X[:, 2], hs[:, 3], atol=ATOL)


def test_batching_does_not_change_vectors(tiny, tiny_encoder):
    sp = tiny.token_split()
    a = extract(sp, tiny_encoder, cache=False, progress=False, batch_size=1).X
    b = extract(sp, tiny_encoder, cache=False, progress=False, batch_size=64).X
    np.testing.assert_allclose(a, b, atol=ATOL)


def test_layer_selection(tiny, tiny_encoder):
    sp = tiny.token_split()
    full = extract(sp, tiny_encoder, cache=False, progress=False)
    last = extract(sp, tiny_encoder, layers=-1, cache=False, progress=False)
    assert last.layers == [2]
    np.testing.assert_allclose(last.layer(2), full.layer(2), atol=ATOL)
    assert resolve_layers([2, 0, -1], 2) == [0, 2]
    with pytest.raises(UnknownNameError, match="hidden states 0..2"):
        resolve_layers([3], 2)


def test_bad_options_and_units_rejected(tiny, tiny_encoder):
    sp = tiny.token_split()
    with pytest.raises(UnknownNameError, match="pooling"):
        extract(sp, tiny_encoder, pooling="max", cache=False, progress=False)
    bad = Split(
        task="t",
        corpus="c",
        name="train",
        unit_kind="token",
        sentences=[("a", "dog")],
        sentence_ids=["s0"],
        examples=[Example(0, (5,), "x", "s0:w5")],
    )
    with pytest.raises(TuneprobeError, match="s0:w5"):
        extract(bad, tiny_encoder, cache=False, progress=False)


def test_batches_longest_first_within_budgets(tiny, tiny_encoder):
    import tuneprobe.encoders.extract as ex

    sentences = [("the",) * n for n in (3, 40, 7, 40, 12, 1, 25)]
    al = align(sentences, tiny_encoder.tokenizer, 64, tiny_encoder.prefix, tiny_encoder.suffix)
    batches = ex.plan_batches(al, batch_size=2)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(sentences)))
    assert batches[0].tolist() == [1, 3]  # longest first, ties by index
    lengths = al.segment_lengths
    for b in batches:
        assert len(b) <= 2 and len(b) * lengths[b].max() <= 2 * ex.TOKENS_PER_SEQUENCE


@pytest.mark.parametrize("via_torch", [False, True])
def test_sparse_pooling_matches_gather_and_index_add(via_torch):
    from tuneprobe.encoders.pool import batch_pooler, pool_batch

    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 4, generator=g)
    src = np.array([0, 1, 1, 7, 14, 3])
    dst = np.array([0, 0, 1, 2, 2, 0])
    w = np.array([0.5, 0.5, 1.0, 0.25, 0.75, 2.0], dtype=np.float32)
    backend = "torch" if via_torch else "auto"  # torch: the GPU code path, exercised on CPU tensors
    pooler = batch_pooler(src, dst, w, 3, 15, torch.device("cpu"), backend=backend)
    assert isinstance(pooler, torch.Tensor) == via_torch
    got = pool_batch(hidden, pooler)
    flat = hidden.reshape(15, 4).numpy()
    expected = np.zeros((3, 4), dtype=np.float32)
    np.add.at(expected, dst, flat[src] * w[:, None])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
