"""ProbeSearch: batched grid == individual fits, selection (dev / stratified hold-out), refits, rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tuneprobe.experiments.results import ROW_COLUMNS
from tuneprobe.probes import (
    MLPProbe,
    NetConfig,
    ProbeSearch,
    TrainSettings,
    probe_representations,
    probe_search,
    stratified_holdout,
    train_nets,
)
from tuneprobe.store.representations import Representations

CENTERS = np.array(
    [[2.0, 0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0, 0], [0, 0, 2.0, 0, 0, 0], [1.0, 1.0, 1.0, 0, 0, 0]]
)
SMALL = {"hidden_sizes": (4, 16), "alphas": (1e-4, 1.0), "max_iter": 60}


@pytest.fixture
def splits(blobs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Overlapping blobs (so configurations differ): train 4x40, dev 4x15, test 4x15, d = 6."""
    return {
        "train": blobs(40, CENTERS, 0.9, seed=10),
        "dev": blobs(15, CENTERS, 0.9, seed=11),
        "test": blobs(15, CENTERS, 0.9, seed=12),
    }


def test_batched_grid_equals_individual_fits(splits) -> None:
    """Every configuration of one batched call ends where it ends when trained alone with the same seed, also
    when configurations stop at different epochs (tol=1e-2) and the buffers get repacked."""
    X, y = splits["train"]
    configs = [NetConfig((h1, h2), a) for h1 in (3, 8) for h2 in (5, 8) for a in (1e-5, 3.0)]
    settings = TrainSettings(max_iter=50, tol=1e-2, n_iter_no_change=3, batch_size=50)
    fits = train_nets(torch.from_numpy(X), torch.from_numpy(y), 4, configs, seed=2, settings=settings)
    assert len({f.n_iter for f in fits}) > 1  # stopping epochs differ: the repacking path ran
    for cfg, fit in zip(configs, fits, strict=True):
        (alone,) = train_nets(torch.from_numpy(X), torch.from_numpy(y), 4, [cfg], seed=2, settings=settings)
        assert fit.n_iter == alone.n_iter, cfg
        np.testing.assert_allclose(fit.loss_curve, alone.loss_curve, rtol=1e-4, atol=1e-6)
        for wa, wb in zip(fit.weights + fit.biases, alone.weights + alone.biases, strict=True):
            np.testing.assert_allclose(wa, wb, rtol=1e-3, atol=1e-4)


def test_search_matches_individual_protocol(splits) -> None:
    """Selection and test accuracies of the batched search equal the protocol with one MLPProbe per config."""
    (Xtr, ytr), (Xd, yd), (Xte, yte) = splits["train"], splits["dev"], splits["test"]
    result = probe_search(Xtr, ytr, Xte, yte, Xd, yd, **SMALL)
    grid = [(h1, h2, a) for h1 in (4, 16) for h2 in (4, 16) for a in (1e-4, 1.0)]
    dev_accs = [MLPProbe((h1, h2), a, seed=0, max_iter=60).fit(Xtr, ytr).score(Xd, yd) for h1, h2, a in grid]
    np.testing.assert_allclose([p.selection_accuracy for p in result.grid], dev_accs, atol=1.5 / len(yd))
    h1, h2, a = grid[int(np.argmax(dev_accs))]
    assert (result.best_h1, result.best_h2, result.best_alpha) == (h1, h2, a)
    test_accs = [
        100 * MLPProbe((h1, h2), a, seed=s, max_iter=60).fit(Xtr, ytr).score(Xte, yte) for s in range(5)
    ]
    np.testing.assert_allclose(result.test_accuracies, test_accs, atol=100 * 1.5 / len(yte))
    assert result.mean == pytest.approx(np.mean(result.test_accuracies))
    assert result.std == pytest.approx(np.std(result.test_accuracies))  # population std
    assert result.selection == "dev" and result.n_test_unseen == 0


def test_search_is_deterministic(splits) -> None:
    (Xtr, ytr), (Xte, yte) = splits["train"], splits["test"]
    a = probe_search(Xtr, ytr, Xte, yte, seeds=(0, 1), **SMALL)
    b = probe_search(Xtr, ytr, Xte, yte, seeds=(0, 1), **SMALL)
    assert a.test_accuracies == b.test_accuracies
    assert [(p.selection_accuracy, p.train_loss, p.n_iter) for p in a.grid] == [
        (p.selection_accuracy, p.train_loss, p.n_iter) for p in b.grid
    ]


def test_unseen_test_labels_count_as_errors(splits) -> None:
    (Xtr, ytr), (Xte, yte) = splits["train"], splits["test"]
    keep = ytr != 3  # label 3 never occurs in train
    result = probe_search(Xtr[keep], ytr[keep], Xte, yte, seeds=(0,), **SMALL)
    assert result.n_test_unseen == int((yte == 3).sum()) == 15
    assert result.unseen_labels == ["3"]
    assert result.test_accuracies[0] <= 100 * (len(yte) - 15) / len(yte)
    assert result.n_classes == 3


def test_holdout_selection_without_dev(splits) -> None:
    (Xtr, ytr), (Xte, yte) = splits["train"], splits["test"]
    result = probe_search(Xtr, ytr, Xte, yte, seeds=(0,), **SMALL)
    assert result.selection == "holdout"
    # the grid was scored on the 16 held-out examples: accuracies are multiples of 1/16
    for p in result.grid:
        assert p.selection_accuracy * 16 == pytest.approx(round(p.selection_accuracy * 16))


def test_stratified_holdout_is_stratified_and_seeded() -> None:
    y = np.array([0] * 50 + [1] * 30 + [2] * 19 + [3] * 1)
    rng = np.random.default_rng(0)
    y = y[rng.permutation(len(y))]
    train, hold = stratified_holdout(y, 0.1, seed=0)
    assert len(hold) == 10 and len(train) == 90
    assert np.array_equal(np.sort(np.concatenate([train, hold])), np.arange(100))
    counts = {c: int((y[hold] == c).sum()) for c in range(4)}
    assert counts[0] == 5 and counts[1] == 3 and counts[3] == 0  # 1 example: stays in train
    assert counts[2] in (1, 2)
    again_train, again_hold = stratified_holdout(y, 0.1, seed=0)
    assert np.array_equal(hold, again_hold) and np.array_equal(train, again_train)
    _, other = stratified_holdout(y, 0.1, seed=1)
    assert not np.array_equal(hold, other)
    assert {int((y[other] == c).sum()) for c in (0, 1)} == {5, 3}
    with pytest.raises(ValueError):
        stratified_holdout(y, 1.5)


def test_rows_and_representations(splits) -> None:
    (Xtr, ytr), (Xte, yte) = splits["train"], splits["test"]
    labels = ["a", "b", "c", "d"]

    def reps(X: np.ndarray, y: np.ndarray, split: str) -> Representations:
        return Representations(
            X=np.stack([X, -X]),
            y=y,
            labels=labels,
            example_ids=[str(i) for i in range(len(y))],
            layers=[5, 6],
            meta={"model": "m", "task": "t", "split": split, "checkpoint": 0},
        )

    result, rows = probe_representations(
        reps(Xtr, ytr, "train"), reps(Xte, yte, "test"), layer=6, seeds=(0, 1), **SMALL
    )
    assert all(tuple(r) == ROW_COLUMNS for r in rows)
    metrics = {r["metric"]: r["value"] for r in rows}
    assert [metrics["accuracy_refit_0"], metrics["accuracy_refit_1"]] == result.test_accuracies
    assert len(metrics) == len(rows) and {r["seed"] for r in rows} == {0}
    assert metrics["accuracy_mean"] == result.mean and metrics["n_unseen"] == 0
    assert (metrics["best_h1"], metrics["best_h2"]) == (result.best_h1, result.best_h2)
    assert {(r["layer"], r["model"], r["task"], r["analysis"]) for r in rows} == {(6, "m", "t", "probe")}
    assert {r["split"] for r in rows if r["metric"].startswith("accuracy")} == {"test"}


def test_search_rejects_half_dev(splits) -> None:
    (Xtr, ytr), (Xte, yte) = splits["train"], splits["test"]
    with pytest.raises(ValueError, match="X_dev"):
        ProbeSearch(**SMALL).run(Xtr, ytr, Xte, yte, X_dev=Xte)


def test_parallel_workers_give_the_same_fits(splits) -> None:
    """Jobs on two worker threads (one per hidden-size group) end exactly where one batched loop ends."""
    X, y = splits["train"]
    configs = [NetConfig((h1, h2), a) for h1 in (3, 8) for h2 in (5,) for a in (1e-5, 1.0)]
    settings = TrainSettings(max_iter=15, batch_size=50)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    one = train_nets(Xt, yt, 4, configs, seed=1, settings=settings, workers=1)
    seen: list[tuple[int, int]] = []
    two = train_nets(
        Xt, yt, 4, configs, seed=1, settings=settings, workers=2, progress=lambda e, a: seen.append((e, a))
    )
    assert torch.get_num_threads() == 1  # restored (the fixture set 1)
    assert sorted({e for e, _ in seen}) == list(range(1, 16)) and seen[-1] == (15, 0)
    for a, b in zip(one, two, strict=True):
        assert a.n_iter == b.n_iter
        for wa, wb in zip(a.weights, b.weights, strict=True):
            np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    Xte, yte = splits["test"]
    r1 = probe_search(X, y, Xte, yte, workers=1, seeds=(0, 1), **SMALL)
    r2 = probe_search(X, y, Xte, yte, workers=2, seeds=(0, 1), **SMALL)
    assert (r1.best_h1, r1.best_h2, r1.best_alpha) == (r2.best_h1, r2.best_h2, r2.best_alpha)
    np.testing.assert_allclose(r1.test_accuracies, r2.test_accuracies)
