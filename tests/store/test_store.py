"""The representation store: cache hits, invalidation, atomic and resumable writes, corruption detection."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import tuneprobe.encoders.extract as extract_mod
import tuneprobe.encoders.pool as pool_mod
from tuneprobe import extract
from tuneprobe.store.arrays import MANIFEST, RepresentationStore, atomic_write_text
from tuneprobe.store.keys import entry_key, file_sha256


def entry_files(cache_dir, key):
    d = RepresentationStore(cache_dir).entry_dir(key)
    return sorted(p.name for p in d.glob("L*.npy")), d


def test_second_call_is_a_cache_hit(tiny, tiny_encoder, cache_dir, monkeypatch):
    sp = tiny.token_split()
    first = extract(sp, tiny_encoder, progress=False)
    assert first.meta["from_cache"] is False
    assert str(first.meta["cache_file"]).startswith(str(cache_dir))  # TUNEPROBE_CACHE is honoured
    monkeypatch.setattr(extract_mod, "encode", lambda *a, **k: pytest.fail("model run on a cache hit"))
    second = extract(sp, tiny_encoder, progress=False)
    assert second.meta["from_cache"] is True
    assert isinstance(second.X, np.memmap) and not second.X.flags.writeable
    np.testing.assert_array_equal(first.X, second.X)
    sub = extract(sp, tiny_encoder, layers=[1, 2], progress=False)  # a subset comes from the same file
    assert sub.meta["from_cache"] is True and sub.layers == [1, 2]
    np.testing.assert_array_equal(sub.X, first.X[1:])
    manifest = json.loads(
        (
            first.meta and RepresentationStore(cache_dir).entry_dir(first.meta["cache_key"]) / MANIFEST
        ).read_text()
    )
    rec = manifest["files"]["L0_1_2.npy"]
    assert rec["shape"] == [3, len(sp), 16] and set(rec["sha256"]) == {"0", "1", "2"}
    assert manifest["spec"]["split_fingerprint"] == sp.fingerprint()


def test_options_change_the_key(tiny, tiny_encoder, cache_dir):
    sp = tiny.token_split()
    a = extract(sp, tiny_encoder, progress=False)
    b = extract(sp, tiny_encoder, pooling="first", progress=False)
    c = extract(tiny.token_split(name="test"), tiny_encoder, progress=False)
    assert len({a.meta["cache_key"], b.meta["cache_key"], c.meta["cache_key"]}) == 3
    # sentence pooling is irrelevant to token units and does not fragment the cache
    d = extract(sp, tiny_encoder, sentence_pooling="mean", progress=False)
    assert d.meta["cache_key"] == a.meta["cache_key"] and d.meta["from_cache"]


def test_changed_weights_invalidate(tiny, tmp_path, cache_dir):
    from transformers import BertModel

    d = tiny.save_tiny(tmp_path / "m")
    sp = tiny.token_split()
    first = extract(sp, str(d), progress=False, device="cpu")
    assert extract(sp, str(d), progress=False).meta["from_cache"] is True
    model = BertModel.from_pretrained(d)
    with torch.no_grad():
        model.encoder.layer[1].output.dense.weight[0, 0] += 0.5
    model.save_pretrained(d)
    again = extract(sp, str(d), progress=False, device="cpu")
    assert again.meta["from_cache"] is False
    assert (
        again.meta["weights_sha256"] == file_sha256(d / "model.safetensors") != first.meta["weights_sha256"]
    )
    assert again.meta["cache_key"] != first.meta["cache_key"]
    assert not np.allclose(again.layer(2), first.layer(2))
    np.testing.assert_allclose(again.layer(0), first.layer(0), atol=1e-6)  # embeddings untouched


REAL_POOL_BATCH = pool_mod.pool_batch


class Boom(RuntimeError):
    pass


def _explode_after(monkeypatch, n_calls):
    """Make pooling raise after ``n_calls`` successful calls (simulates a killed extraction)."""
    real = REAL_POOL_BATCH
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n_calls:
            raise Boom("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(pool_mod, "pool_batch", flaky)
    return calls


def test_interrupted_write_leaves_no_file_and_resumes(tiny, tiny_encoder, cache_dir, monkeypatch):
    sp = tiny.token_split()
    reference = extract(sp, tiny_encoder, cache=False, progress=False, batch_size=1).X
    key_probe = extract(sp, tiny_encoder, cache=False, progress=False, batch_size=1).meta["cache_key"]
    monkeypatch.setattr(extract_mod, "CHECKPOINT_SECONDS", -1.0)  # checkpoint after every batch
    _explode_after(monkeypatch, 3 * 2)  # 3 layers per batch: dies inside the 3rd of 4 batches
    with pytest.raises(Boom):
        extract(sp, tiny_encoder, progress=False, batch_size=1)
    files, d = entry_files(cache_dir, key_probe)
    assert files == [] and not (d / MANIFEST).exists()
    partial = list(d.glob("partial-*/progress.json"))
    assert len(partial) == 1 and json.loads(partial[0].read_text())["batches_done"] == 2
    calls = _explode_after(monkeypatch, 10_000)
    rep = extract(sp, tiny_encoder, progress=False, batch_size=1)
    assert calls["n"] == 3 * 2  # only the 2 remaining batches ran
    assert rep.meta["from_cache"] is False
    np.testing.assert_allclose(rep.X, reference, atol=1e-6)
    assert not list(d.glob("partial-*"))


def test_corrupted_file_is_detected_and_recomputed(tiny, tiny_encoder, cache_dir, caplog):
    sp = tiny.token_split()
    first = extract(sp, tiny_encoder, progress=False)
    path = first.meta["cache_file"]
    expected = np.array(first.X)
    del first
    with open(path, "r+b") as fh:  # flip bytes inside layer 1's data
        fh.seek(-len(sp) * 16 * 4 - 40, 2)
        fh.write(b"\xff\xff\xff\xff")
    with caplog.at_level(logging.WARNING, logger="tuneprobe.store"):
        again = extract(sp, tiny_encoder, progress=False)
    assert any("checksum mismatch" in r.message for r in caplog.records)
    assert again.meta["from_cache"] is False
    np.testing.assert_allclose(again.X, expected, atol=1e-6)
    assert extract(sp, tiny_encoder, progress=False).meta["from_cache"] is True


def test_truncated_file_is_detected(tiny, tiny_encoder, cache_dir, caplog):
    sp = tiny.token_split()
    path = extract(sp, tiny_encoder, progress=False).meta["cache_file"]
    with open(path, "r+b") as fh:
        fh.truncate(100)
    with caplog.at_level(logging.WARNING, logger="tuneprobe.store"):
        again = extract(sp, tiny_encoder, progress=False)
    assert again.meta["from_cache"] is False and any("recomputed" in r.message for r in caplog.records)


def test_verify_can_be_skipped(tiny, tiny_encoder, cache_dir, monkeypatch):
    sp = tiny.token_split()
    extract(sp, tiny_encoder, progress=False)
    import tuneprobe.store.arrays as arrays

    monkeypatch.setattr(
        arrays, "layers_sha256", lambda *a, **k: pytest.fail("verified although verify=False")
    )
    assert extract(sp, tiny_encoder, progress=False, verify=False).meta["from_cache"] is True
    monkeypatch.setenv("TUNEPROBE_VERIFY", "0")
    assert extract(sp, tiny_encoder, progress=False).meta["from_cache"] is True


def test_atomic_write_text_keeps_old_content_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "f.json"
    atomic_write_text(p, "old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError):
        atomic_write_text(p, "new")
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["f.json"]


def test_entry_key_is_stable_and_excludes_layer():
    spec = {"a": 1, "b": [1, 2]}
    assert entry_key(spec) == entry_key({"b": [1, 2], "a": 1})
    with pytest.raises(ValueError):
        entry_key({**spec, "layer": 3})


def test_concurrent_extractions_compute_once(tiny, tiny_encoder, cache_dir):
    import threading

    sp = tiny.token_split()
    results: list = []

    def run() -> None:
        results.append(extract(sp, tiny_encoder, progress=False))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.meta["from_cache"] for r in results) == [False, True]
    np.testing.assert_array_equal(results[0].X, results[1].X)


def test_atomic_write_text_uses_normal_permissions(tmp_path):
    import os

    p = tmp_path / "x.txt"
    atomic_write_text(p, "hello")
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_unwritable_cache_dir_is_a_clear_error(tiny, tiny_encoder, tmp_path):
    from tuneprobe.errors import TuneprobeError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TuneprobeError, match="cache directory"):
        extract(tiny.token_split(), tiny_encoder, cache_dir=blocker / "cache", progress=False)
