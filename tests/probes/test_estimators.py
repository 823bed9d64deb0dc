"""LinearProbe / MLPProbe: separable blobs, XOR, determinism, unseen labels, sklearn-like bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tuneprobe.probes import LinearProbe, MLPProbe, NetConfig, TrainSettings, train_nets


def test_linear_probe_separates_blobs(blobs) -> None:
    centers = np.array([[4.0, 0, 0, 0, 0], [0, 4.0, 0, 0, 0], [0, 0, 4.0, 0, 0]])
    X, y = blobs(40, centers, 0.3, seed=1)
    probe = LinearProbe(seed=0).fit(X, y)
    assert probe.score(X, y) == 1.0
    Xt, yt = blobs(20, centers, 0.3, seed=2)
    assert probe.score(Xt, yt) == 1.0
    assert probe.predict_proba(Xt).shape == (60, 3)
    np.testing.assert_allclose(probe.predict_proba(Xt).sum(1), 1.0, rtol=1e-5)


def test_mlp_solves_xor_where_linear_fails(xor) -> None:
    X, y = xor(240, seed=0)
    Xt, yt = xor(200, seed=1)
    assert LinearProbe(seed=0).fit(X, y).score(Xt, yt) < 0.75
    mlp = MLPProbe((32, 32), alpha=1e-4, seed=0).fit(X, y)
    assert mlp.score(Xt, yt) >= 0.97
    assert mlp.converged_ and 0 < mlp.n_iter_ < 1000
    assert len(mlp.loss_curve_) == mlp.n_iter_


def test_string_labels_and_unseen_labels_count_as_errors(blobs) -> None:
    centers = np.array([[3.0, 0], [0, 3.0]])
    X, y = blobs(30, centers, 0.2, seed=3)
    names = np.array(["p.Locus", "p.Time"])[y]
    probe = LinearProbe(seed=0).fit(X, names)
    assert list(probe.classes_) == ["p.Locus", "p.Time"]
    Xt, yt = blobs(10, centers, 0.2, seed=4)
    yt_names = np.array(["p.Locus", "p.Time"])[yt].astype(object)
    yt_names[:5] = "p.Unseen"  # 5 of 20 test labels never occur in train
    assert probe.score(Xt, yt_names) == pytest.approx(15 / 20)
    assert set(probe.predict(Xt)) <= {"p.Locus", "p.Time"}


def test_fit_is_deterministic(xor) -> None:
    X, y = xor(100, seed=5)
    a = MLPProbe((8, 8), alpha=1e-3, seed=3, max_iter=40).fit(X, y)
    b = MLPProbe((8, 8), alpha=1e-3, seed=3, max_iter=40).fit(X, y)
    c = MLPProbe((8, 8), alpha=1e-3, seed=4, max_iter=40).fit(X, y)
    for wa, wb in zip(a.net_.weights, b.net_.weights, strict=True):
        assert wa.tobytes() == wb.tobytes()
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.net_.weights[0], c.net_.weights[0])


def test_loss_matches_sklearn_formula_on_first_batch(xor) -> None:
    """One full-batch epoch with lr=0: the reported loss is CE + alpha/(2n) * sum ||W||^2 at the init."""
    X, y = xor(50, seed=6)
    alpha = 0.5
    (net,) = train_nets(
        torch.from_numpy(X),
        torch.from_numpy(y),
        2,
        [NetConfig((4, 3), alpha)],
        seed=0,
        settings=TrainSettings(learning_rate_init=0.0, max_iter=1, batch_size=50),
    )
    logits = net.logits(torch.from_numpy(X))
    ce = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).item()
    l2 = sum(float((w.astype(np.float64) ** 2).sum()) for w in net.weights)
    assert net.loss_curve[0] == pytest.approx(ce + alpha / (2 * 50) * l2, rel=1e-5)


def test_bad_input_fails_early() -> None:
    with pytest.raises(ValueError, match="2-d"):
        LinearProbe().fit(np.zeros(5, dtype=np.float32), np.zeros(5))
    with pytest.raises(ValueError, match="rows"):
        LinearProbe().fit(np.zeros((5, 2), dtype=np.float32), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        LinearProbe().fit(np.full((5, 2), np.nan, dtype=np.float32), np.zeros(5))
