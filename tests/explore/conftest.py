"""A small synthetic explorer series: 3 labels, 3 snapshots x 2 layers, real DirectProbe cells."""

from __future__ import annotations

import numpy as np
import pytest

from tuneprobe.explore.data import HeldOut, Series, SnapshotLayer
from tuneprobe.geometry.cells import CellKey, run_directprobe_cell

LABELS = ["alpha", "beta", "gamma"]
WORDS = ["red", "green", "blue", "cat", "dog", "fox", "runs", "sits", "jumps", "the", "a", "big"]
STEPS = [0, 5, 10]
LAYERS = [1, 2]


def synthetic_series(n_per_label: int = 20, dim: int = 6, seed: int = 0, n_held: int = 12) -> Series:
    """Label clouds that separate more with every snapshot and layer; sentences of 5 random words with the
    unit at a random position (example ``k`` is ``"ex{k}"``); ``n_held`` held-out examples ``"test{j}"``
    drawn the same way."""
    rng = np.random.default_rng(seed)
    n = n_per_label * len(LABELS)
    y = np.repeat(np.arange(len(LABELS)), n_per_label)
    base = rng.normal(size=(n, dim))
    direction = rng.normal(size=(len(LABELS), dim)) * 2
    sentences = [tuple(rng.choice(WORDS, size=5)) for _ in range(n)]
    units = [(int(rng.integers(5)),) for _ in range(n)]
    hy = np.arange(n_held) % len(LABELS)
    hbase = rng.normal(size=(n_held, dim))
    cells, held_X = {}, {}
    for si, step in enumerate(STEPS):
        for layer in LAYERS:
            X = (base + direction[y] * (0.5 + si + layer)).astype(np.float32)
            key = CellKey("toy", "toy-task", step, layer, "toy-task", "train")
            cell = run_directprobe_cell(key, X, y, LABELS, device="cpu")
            cells[(step, layer)] = SnapshotLayer(X, cell)
            held_X[(step, layer)] = (hbase + direction[hy] * (0.5 + si + layer)).astype(np.float32)
    held = HeldOut(
        split="test",
        y=hy.astype(np.int64),
        example_ids=[f"test{j}" for j in range(n_held)],
        sentences=[tuple(rng.choice(WORDS, size=4)) for _ in range(n_held)],
        sentence=np.arange(n_held, dtype=np.int64),
        units=[(int(rng.integers(4)),) for _ in range(n_held)],
        X=held_X,
    )
    return Series(
        task="toy-task",
        split="train",
        model="toy",
        tuned_on="toy-task",
        seed=0,
        labels=list(LABELS),
        y=y.astype(np.int64),
        example_ids=[f"ex{k}" for k in range(n)],
        sentences=sentences,
        sentence=np.arange(n, dtype=np.int64),
        units=units,
        steps=list(STEPS),
        layers=list(LAYERS),
        cells=cells,
        held_out=held if n_held else None,
    )


@pytest.fixture(scope="session")
def series() -> Series:
    return synthetic_series()
