"""Task heads: training pools exactly like extraction, for token, pair and sentence units (with windows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tuneprobe.encoders.extract import extract
from tuneprobe.encoders.load import Encoder
from tuneprobe.finetune.config import FinetuneConfig
from tuneprobe.finetune.data import ranges
from tuneprobe.finetune.heads import forward_loss
from tuneprobe.finetune.train import Trainer


def test_ranges() -> None:
    got = ranges(np.array([3, 0, 7]), np.array([5, 0, 10]))
    assert got.tolist() == [3, 4, 7, 8, 9]
    assert ranges(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == []


@pytest.mark.parametrize("kind", ["token", "pair", "sentence"])
@pytest.mark.parametrize("max_length", [None, 8])
def test_training_pooling_equals_extraction(
    tiny, kind: str, max_length: int | None, request, tmp_path
) -> None:
    """Pooled vectors of every batch == tuneprobe.extract's last layer (same weights, eval mode); with
    max_length 8 most sentences are encoded in several windows."""
    split = request.getfixturevalue(f"{kind}_split")
    model, tok = tiny.make_tiny(tmp_path, seed=1)
    enc = Encoder.from_model(model, tok, name="tiny", device="cpu")
    cfg = FinetuneConfig(batch_size=3, epochs=1, device="cpu", max_length=max_length)
    tr = Trainer(split, enc, cfg, device="cpu")
    ref = extract(split, model=enc, layers=-1, cache=False, progress=False, max_length=max_length)
    X = np.asarray(ref.X[0])
    if max_length:
        assert ref.meta["n_windowed"] > 0 and tr.data.alignment.n_windowed == ref.meta["n_windowed"]
    tr.base.eval()
    seen = []
    with torch.no_grad():
        for k in range(tr.steps_per_epoch):
            sents = tr.batch_sentences(k)
            b = tr.data.batch(sents)
            hidden = tr.base(input_ids=b.input_ids, attention_mask=b.attention_mask).last_hidden_state
            v = tr.head.pool(hidden, b).numpy()
            pos = ranges(tr.data.ex_offset[sents], tr.data.ex_offset[sents + 1])
            rows = tr.data.ex_order[pos]
            np.testing.assert_allclose(v, X[rows], rtol=1e-5, atol=1e-5)
            assert b.labels.tolist() == [ref.labels.index(split.examples[r].label) for r in rows]
            seen.extend(rows.tolist())
    assert sorted(seen) == list(range(len(split)))  # one epoch covers every example exactly once
    n_parts = 2 if kind == "pair" else 1
    assert tr.head.classifier.in_features == n_parts * 16
    assert tr.head.classifier.out_features == len(split.labels)


@pytest.mark.parametrize("kind", ["token", "pair", "sentence"])
def test_head_trains_end_to_end(tiny, kind: str, request, tmp_path) -> None:
    split = request.getfixturevalue(f"{kind}_split")
    model, tok = tiny.make_tiny(tmp_path)
    enc = Encoder.from_model(model, tok, name="tiny", device="cpu")
    tr = Trainer(split, enc, FinetuneConfig(batch_size=4, epochs=1, device="cpu"), device="cpu")
    b = tr.data.batch(tr.batch_sentences(0))
    loss, correct, n = forward_loss(tr.base, tr.head, b)
    loss.backward()
    assert torch.isfinite(loss) and 0 <= int(correct) <= int(n) == b.n_examples
    assert tr.head.classifier.weight.grad is not None and tr.head.classifier.weight.grad.abs().sum() > 0
    emb = tr.base.embeddings.word_embeddings.weight.grad
    assert emb is not None and emb.abs().sum() > 0  # the encoder is trained too
    # the caller's model is never changed
    assert all(p.grad is None for p in enc.full_model.parameters())


def test_pooler_sentence_head(tiny, sentence_split, tmp_path) -> None:
    model, tok = tiny.make_tiny(tmp_path)
    enc = Encoder.from_model(model, tok, name="tiny", device="cpu")
    cfg = FinetuneConfig(batch_size=4, epochs=1, device="cpu", sentence_head="pooler")
    tr = Trainer(sentence_split, enc, cfg, device="cpu")
    b = tr.data.batch(tr.batch_sentences(0))
    loss, _, _ = forward_loss(tr.base, tr.head, b)
    loss.backward()
    assert tr.base.pooler.dense.weight.grad.abs().sum() > 0
    assert not any(n.startswith("_pooler") for n, _ in tr.head.named_parameters())
