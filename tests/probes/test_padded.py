"""The padded layout (one zero-padded network per layer for a whole loop, the GPU path) trains every
(configuration, seed) item to where the grouped layout trains it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tuneprobe.probes import NetConfig, TrainSettings, probe_search
from tuneprobe.probes._train import train_jobs

CENTERS = np.array([[2.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0], [0, 0, 2.0, 0, 0], [1.0, 1.0, 1.0, 0, 0]])


@pytest.mark.parametrize("rng", ["sklearn", "numpy"])
def test_padded_equals_grouped(blobs, rng: str) -> None:
    X, y = blobs(40, CENTERS, 0.9, seed=3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    groups = [[NetConfig((h1, h2), a) for a in (1e-5, 3.0)] for h1 in (3, 8) for h2 in (2, 6)]
    jobs = [*((g, 1) for g in groups), ([NetConfig((6, 3), 1e-3)], 2), ([NetConfig((6, 3), 1e-3)], 4)]
    common = {"max_iter": 40, "tol": 1e-2, "n_iter_no_change": 3, "batch_size": 50, "rng": rng}
    grouped = train_jobs(Xt, yt, 4, jobs, TrainSettings(layout="grouped", **common), workers=1)
    seen: list[tuple[int, int]] = []
    padded = train_jobs(
        Xt, yt, 4, jobs, TrainSettings(layout="padded", **common), progress=lambda e, a: seen.append((e, a))
    )
    assert [len(f) for f in padded] == [len(c) for c, _ in jobs]
    flat_g = [f for fs in grouped for f in fs]
    flat_p = [f for fs in padded for f in fs]
    assert len({f.n_iter for f in flat_p}) > 1  # items stopped at different epochs: the repacking path ran
    assert seen[-1][1] == 0 and [e for e, _ in seen] == list(range(1, len(seen) + 1))
    for g, p in zip(flat_g, flat_p, strict=True):
        assert p.config == g.config and p.n_iter == g.n_iter and p.converged == g.converged
        np.testing.assert_allclose(p.loss_curve, g.loss_curve, rtol=1e-4, atol=1e-6)
        for a, b in zip(p.weights + p.biases, g.weights + g.biases, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_padded_search_equals_grouped_search(blobs) -> None:
    (Xtr, ytr), (Xd, yd), (Xte, yte) = (blobs(30, CENTERS, 0.9, seed=s) for s in (5, 6, 7))
    opts = {"hidden_sizes": (4, 16), "alphas": (1e-4, 1.0), "max_iter": 40, "seeds": (0, 1, 2)}
    a = probe_search(Xtr, ytr, Xte, yte, Xd, yd, layout="grouped", workers=1, **opts)
    b = probe_search(Xtr, ytr, Xte, yte, Xd, yd, layout="padded", **opts)
    assert (a.best_h1, a.best_h2, a.best_alpha) == (b.best_h1, b.best_h2, b.best_alpha)
    np.testing.assert_allclose(a.test_accuracies, b.test_accuracies)
    assert [p.n_iter for p in a.grid] == [p.n_iter for p in b.grid]


def test_layout_is_checked() -> None:
    with pytest.raises(ValueError, match="layout"):
        TrainSettings(layout="diagonal")
