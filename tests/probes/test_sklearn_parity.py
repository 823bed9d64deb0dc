"""With ``rng="sklearn"`` (the default) a fit uses the random numbers of ``MLPClassifier(random_state=seed)``
and follows its path: same loss curve, same stopping epoch, same weights (float32 rounding aside). This
pins the semantics (alpha scaling per batch, Adam form, epoch loss, the tol / n_iter_no_change rule) to
sklearn's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from tuneprobe.probes import MLPProbe, NetConfig, TrainSettings, train_nets


@pytest.mark.parametrize("alpha", [1e-4, 0.5])
def test_follows_sklearn_trajectory(blobs, alpha: float) -> None:
    centers = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    X, y = blobs(70, centers, 0.8, seed=7)  # 210 examples: batches of 200 and 10
    warnings.simplefilter("ignore", ConvergenceWarning)
    sk = MLPClassifier((16, 8), alpha=alpha, max_iter=60, random_state=3, tol=1e-3).fit(X, y)
    settings = TrainSettings(max_iter=60, tol=1e-3)
    # batched with other alphas and another shape: each configuration still follows its own sklearn path
    configs = [NetConfig((16, 8), 1e-7), NetConfig((16, 8), alpha), NetConfig((4, 4), alpha)]
    fits = train_nets(torch.from_numpy(X), torch.from_numpy(y), 3, configs, seed=3, settings=settings)
    ours = fits[1]
    assert ours.n_iter == sk.n_iter_
    np.testing.assert_allclose(ours.loss_curve, sk.loss_curve_, rtol=2e-4)
    for w, ws in zip(ours.weights, sk.coefs_, strict=True):
        np.testing.assert_allclose(w, ws, rtol=1e-3, atol=2e-4)
    for b, bs in zip(ours.biases, sk.intercepts_, strict=True):
        np.testing.assert_allclose(b, bs, rtol=1e-3, atol=2e-4)
    probe = MLPProbe((16, 8), alpha, seed=3, max_iter=60, tol=1e-3).fit(X, y)
    np.testing.assert_array_equal(probe.predict(X), sk.predict(X))


def test_numpy_streams_differ_but_train(blobs) -> None:
    centers = np.array([[2.0, 0], [0, 2.0], [2.0, 2.0]])
    X, y = blobs(40, centers, 0.3, seed=8)
    a = MLPProbe((8, 8), rng="numpy", max_iter=500).fit(X, y)
    b = MLPProbe((8, 8), rng="sklearn", max_iter=500).fit(X, y)
    assert not np.array_equal(a.net_.weights[0], b.net_.weights[0])
    assert a.score(X, y) > 0.95 and b.score(X, y) > 0.95
    with pytest.raises(ValueError, match="rng"):
        MLPProbe(rng="torch").fit(X, y)
