"""The representation store extracts from snapshots: a snapshot is a model directory, keyed by its weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tuneprobe import extract
from tuneprobe.finetune import FinetuneConfig, finetune


@pytest.fixture(scope="module")
def run(tiny_dir, token_split, tmp_path_factory):
    torch.set_num_threads(1)
    cfg = FinetuneConfig(batch_size=3, epochs=1, snapshots="0,2", device="cpu", lr=1e-3)
    return finetune(
        token_split, model=str(tiny_dir), out=tmp_path_factory.mktemp("run"), config=cfg, progress=False
    )


def test_two_snapshots_two_keys_same_snapshot_cache_hit(run, token_split, cache_dir) -> None:
    first, last = run.snapshots[0].path, run.snapshots[-1].path
    a = extract(token_split, model=str(first), layers=[1, 2], device="cpu", progress=False)
    b = extract(token_split, model=str(last), layers=[1, 2], device="cpu", progress=False)
    assert not a.meta["from_cache"] and not b.meta["from_cache"]
    assert a.meta["weights_sha256"] != b.meta["weights_sha256"]
    assert a.meta["cache_key"] != b.meta["cache_key"]
    assert not np.allclose(np.asarray(a.X), np.asarray(b.X))
    again = extract(token_split, model=str(last), layers=[1, 2], device="cpu", progress=False)
    assert again.meta["from_cache"] and again.meta["cache_key"] == b.meta["cache_key"]
    np.testing.assert_array_equal(np.asarray(again.X), np.asarray(b.X))
    # the head lives in tuneprobe/, so the weights hash covers the encoder weights only
    from tuneprobe.store.keys import file_sha256

    assert b.meta["weights_sha256"] == file_sha256(last / "model.safetensors")
