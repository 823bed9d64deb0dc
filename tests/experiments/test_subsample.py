"""The seeded stratified subsample behind ``max_examples``."""

from __future__ import annotations

import numpy as np

from tuneprobe.experiments.execute import load_split, stratified_subsample


def _groups(sizes: dict[str, int]) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for label, n in sizes.items():
        out[label] = np.arange(start, start + n, dtype=np.int64)
        start += n
    return out


def test_quotas_follow_label_shares_with_at_least_one_each():
    groups = _groups({"a": 50, "b": 30, "c": 1, "d": 19})
    keep = stratified_subsample(groups, cap=10, seed=0)
    counts = {k: int(np.isin(v, keep).sum()) for k, v in groups.items()}
    assert counts == {"a": 5, "b": 3, "c": 1, "d": 1}  # floors 5, 3, 0 -> 1, 1
    assert len(keep) == 10 and np.all(np.diff(keep) > 0)
    # largest remainders fill the places the floors leave
    groups = _groups({"a": 7, "b": 7, "c": 6})
    keep = stratified_subsample(groups, cap=10, seed=0)
    counts = {k: int(np.isin(v, keep).sum()) for k, v in groups.items()}
    assert counts == {"a": 4, "b": 3, "c": 3}  # exact 3.5, 3.5, 3.0: the tie goes to the first label


def test_seeded_and_whole_when_small():
    groups = _groups({"a": 40, "b": 60})
    one, two = stratified_subsample(groups, 20, seed=1), stratified_subsample(groups, 20, seed=1)
    assert np.array_equal(one, two)
    assert not np.array_equal(one, stratified_subsample(groups, 20, seed=2))
    assert np.array_equal(stratified_subsample(groups, 100, seed=0), np.arange(100))


def test_load_split_subsample(task_dirs):
    reader = {"name": f"jsonl:{task_dirs[0]}", "corpus": None, "options": {}}
    data = {"reader": reader, "split": "train", "max_examples": None, "subsample_seed": None}
    full = load_split(data, None)
    sub = load_split({**data, "max_examples": 20, "subsample_seed": 0}, None)
    assert len(sub) == 20 < len(full) and set(sub.labels) == set(full.labels)
    ids = [e.id for e in full.examples]
    assert [ids.index(e.id) for e in sub.examples] == sorted(ids.index(e.id) for e in sub.examples)
    assert sub.fingerprint() != full.fingerprint() and sub.options["subsample"]["max_examples"] == 20
