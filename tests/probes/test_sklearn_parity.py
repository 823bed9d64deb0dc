"""Given scikit-learn's initial weights and sample orders, our training follows ``MLPClassifier``'s path:
same loss curve, same stopping epoch, same weights (float32 rounding aside). This pins the semantics (alpha
scaling per batch, Adam form, epoch loss, the tol / n_iter_no_change rule) to sklearn's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import tuneprobe.probes._train as train_mod
from tuneprobe.probes import NetConfig, TrainSettings, train_nets


def _sklearn_streams(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Replay sklearn's RandomState use: Glorot draws per layer (coef, then intercept), then one in-place
    shuffle of the running sample order per epoch."""
    rs = np.random.RandomState(seed)

    def init(d: int, hidden: tuple[int, ...], k: int, _seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        widths = [d, *hidden, k]
        out = []
        for fi, fo in zip(widths[:-1], widths[1:], strict=True):
            bound = np.sqrt(6.0 / (fi + fo))
            w = rs.uniform(-bound, bound, (fi, fo)).astype(np.float32)
            b = rs.uniform(-bound, bound, fo).astype(np.float32)
            out.append((w, b))
        return out

    def orders(_seed: int, n: int):  # noqa: ANN202
        state = {"idx": np.arange(n)}

        def nxt() -> np.ndarray:
            perm = np.arange(n)
            rs.shuffle(perm)
            state["idx"] = state["idx"][perm]
            return state["idx"]

        return nxt

    monkeypatch.setattr(train_mod, "_init", init)
    monkeypatch.setattr(train_mod, "epoch_orders", orders)


@pytest.mark.parametrize("alpha", [1e-4, 0.5])
def test_follows_sklearn_trajectory(monkeypatch: pytest.MonkeyPatch, blobs, alpha: float) -> None:
    centers = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    X, y = blobs(70, centers, 0.8, seed=7)  # 210 examples: batches of 200 and 10
    warnings.simplefilter("ignore", ConvergenceWarning)
    sk = MLPClassifier((16, 8), alpha=alpha, max_iter=60, random_state=3, tol=1e-3).fit(X, y)
    _sklearn_streams(monkeypatch, 3)
    settings = TrainSettings(max_iter=60, tol=1e-3)
    (ours,) = train_nets(
        torch.from_numpy(X), torch.from_numpy(y), 3, [NetConfig((16, 8), alpha)], 0, settings
    )
    assert ours.n_iter == sk.n_iter_
    np.testing.assert_allclose(ours.loss_curve, sk.loss_curve_, rtol=2e-4)
    for w, ws in zip(ours.weights, sk.coefs_, strict=True):
        np.testing.assert_allclose(w, ws, rtol=1e-3, atol=2e-4)
    for b, bs in zip(ours.biases, sk.intercepts_, strict=True):
        np.testing.assert_allclose(b, bs, rtol=1e-3, atol=2e-4)
