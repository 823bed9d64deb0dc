"""Kept, warm-started separation LPs (``tuneprobe.directprobe._warm_lp``)."""

from __future__ import annotations

import numpy as np
import pytest

from tuneprobe.directprobe.separability import lp_is_separable, verify_separation

pytest.importorskip("highspy")

from tuneprobe.directprobe._warm_lp import WarmSeparator  # noqa: E402


def _clouds(seed: int, n: int, d: int, gap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two clouds of n points in d dims, ``gap`` apart along the first axis: X, rows of A, rows of B."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, d))
    X[:n, 0] += gap
    X[n:, 0] -= gap
    return X, np.arange(n), np.arange(n, 2 * n)


def test_new_model_needs_a_direction_and_answers_with_a_verified_plane() -> None:
    X, A, B = _clouds(0, 400, 20, 3.0)
    ws = WarmSeparator(X)
    assert ws.separate(A, B, [(1, 2)]) == (None, None)  # no earlier plane: nothing to warm-start from
    w0 = np.zeros(20)
    w0[0] = 1.0
    plane, key = ws.separate(A, B, [(1, 2)], direction=w0)
    assert key == (1, 2) and plane is not None
    assert verify_separation(plane[0], plane[1], X[A], X[B])
    assert ws.solves >= 1 and ws.hits == 0


def test_kept_model_absorbs_new_points_and_never_certifies_an_overlap() -> None:
    X, A, B = _clouds(1, 400, 20, 3.0)
    w0 = np.zeros(20)
    w0[0] = 1.0
    ws = WarmSeparator(X)
    _, key = ws.separate(A, B, [(1, 2)], direction=w0)
    assert key is not None
    # A absorbs a point between the clouds but on its own side: the kept model answers, re-keyed
    extra = np.r_[X, np.eye(1, 20) * 0.5]
    ws.X = extra
    A2 = np.r_[A, 2 * 400]
    ws.rekey(key, (3, 2))
    plane, key2 = ws.separate(A2, B, [(3, 2)])
    assert key2 == (3, 2) and ws.hits == 1 and plane is not None
    assert verify_separation(plane[0], plane[1], extra[A2], extra[B])
    # a point deep inside B joins A: the pair overlaps; the kept model must not say "separable"
    inside = np.r_[extra, extra[B].mean(axis=0, keepdims=True)]
    ws.X = inside
    A3 = np.r_[A2, inside.shape[0] - 1]
    assert not lp_is_separable(inside[A3], inside[B])
    plane, key3 = ws.separate(A3, B, [(3, 2)])
    assert plane is None and key3 is None and (3, 2) not in ws.models  # a failed model is dropped


def test_least_recently_used_models_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from tuneprobe.directprobe import _warm_lp

    monkeypatch.setattr(_warm_lp, "WARM_MODELS", 2)
    X, A, B = _clouds(2, 350, 10, 3.0)
    w0 = np.eye(1, 10)[0]
    ws = WarmSeparator(X)
    for k in range(3):
        ws.separate(A, B, [(k, 99)], direction=w0)
    assert list(ws.models) == [(1, 99), (2, 99)]
