"""Probe tests run single-threaded: tiny matrices gain nothing from threads, and on a loaded machine OpenMP
threads waiting for each other make every small op slow. The previous thread count is restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _blobs(n_per: int, centers: np.ndarray, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: float32 ``X [n_per * k, d]`` around ``centers [k, d]`` and int ``y [n_per * k]``."""
    rng = np.random.default_rng(seed)
    k, d = centers.shape
    y = np.repeat(np.arange(k), n_per)
    X = centers[y] + scale * rng.normal(size=(len(y), d))
    return X.astype(np.float32), y


def _xor(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """XOR quadrants with a margin: float32 ``X [n, 2]``, ``y [n]`` = sign(x0) != sign(x1)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.2, 1.0, size=(n, 2)) * rng.choice([-1.0, 1.0], size=(n, 2))
    y = (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(np.int64)
    return X.astype(np.float32), y


@pytest.fixture
def blobs() -> object:
    """The :func:`_blobs` maker (fixtures, so test modules need not import this conftest)."""
    return _blobs


@pytest.fixture
def xor() -> object:
    """The :func:`_xor` maker."""
    return _xor
