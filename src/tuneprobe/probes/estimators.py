"""Classifier probes as estimators: ``fit(X, y)``, ``predict(X)``, ``predict_proba(X)``, ``score(X, y)``.

``X`` is float32 ``[n_examples, dim]`` (one layer of a :class:`~tuneprobe.store.Representations`); ``y`` is
any 1-d array of hashable labels (label ids or names). Classes are the sorted distinct training labels; a
label that is not among them can never be predicted, so ``score`` counts it as an error.

Both probes follow scikit-learn's ``MLPClassifier(solver="adam")`` semantics; see
:mod:`tuneprobe.probes._train` for what is kept and what deviates. The only default that differs from
sklearn's is ``max_iter=1000`` (the paper's limit; sklearn's is 200).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tuneprobe.probes._train import FittedNet, NetConfig, TrainSettings, train_nets


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def as_float32(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 ``[n, d]`` tensor on ``device`` (copies a read-only memmap once)."""
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be a 2-d array [n_examples, dim], got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(arr).all():
        raise ValueError("X contains NaN or infinite values")
    return torch.from_numpy(arr).to(device)


def encode_labels(classes: np.ndarray, y: Sequence[object] | np.ndarray) -> np.ndarray:
    """int64 ``[n]`` indices of ``y`` in the sorted ``classes``; ``-1`` for a label not in ``classes``."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-d, got shape {y.shape}")
    if len(classes) == 0:
        return np.full(len(y), -1, dtype=np.int64)
    pos = np.searchsorted(classes, y)
    pos = np.clip(pos, 0, len(classes) - 1)
    return np.where(classes[pos] == y, pos, -1).astype(np.int64)


class _NetProbe:
    """Shared estimator code; subclasses fix the hidden sizes."""

    hidden: tuple[int, ...] = ()

    def __init__(
        self,
        alpha: float = 1e-4,
        *,
        batch_size: int | None = None,
        learning_rate_init: float = 1e-3,
        max_iter: int = 1000,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        seed: int = 0,
        rng: str = "sklearn",
        device: str | torch.device | None = None,
    ) -> None:
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.seed = seed
        self.rng = rng
        self.device = device

    # -- sklearn-like attributes after fit: classes_, n_iter_, loss_curve_, converged_, net_
    def _settings(self) -> TrainSettings:
        return TrainSettings(
            batch_size=self.batch_size,
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            rng=self.rng,
        )

    def fit(self, X: np.ndarray, y: Sequence[object] | np.ndarray) -> _NetProbe:
        """Train on ``X`` float32 ``[n, d]`` and labels ``y`` ``[n]``; returns ``self``."""
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
        self.classes_ = np.unique(y)
        dev = resolve_device(self.device)
        Xt = as_float32(X, dev)
        yt = torch.from_numpy(encode_labels(self.classes_, y)).to(dev)
        (net,) = train_nets(
            Xt,
            yt,
            len(self.classes_),
            [NetConfig(tuple(self.hidden), float(self.alpha))],
            self.seed,
            self._settings(),
        )
        self._set_net(net)
        return self

    def _set_net(self, net: FittedNet) -> None:
        self.net_ = net
        self.n_iter_ = net.n_iter
        self.loss_curve_ = net.loss_curve
        self.converged_ = net.converged

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """float32 logits ``[n, n_classes]``."""
        dev = resolve_device(self.device)
        with torch.no_grad():
            return self.net_.logits(as_float32(X, dev)).cpu().numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """float32 class probabilities ``[n, n_classes]`` (columns follow ``classes_``)."""
        dev = resolve_device(self.device)
        with torch.no_grad():
            return torch.softmax(self.net_.logits(as_float32(X, dev)), dim=1).cpu().numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels ``[n]`` (elements of ``classes_``; ties go to the first class)."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def score(self, X: np.ndarray, y: Sequence[object] | np.ndarray) -> float:
        """Accuracy in ``[0, 1]`` on ``X [n, d]``, ``y [n]``; labels unseen in training count as errors."""
        y = np.asarray(y)
        if len(y) == 0:
            raise ValueError("cannot score on zero examples")
        return float(np.mean(self.predict(X) == y))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(hidden={tuple(self.hidden)}, alpha={self.alpha}, seed={self.seed}, "
            f"max_iter={self.max_iter})"
        )


class LinearProbe(_NetProbe):
    """Multinomial logistic regression (softmax over ``W x + b``) trained like the MLP probe: Adam,
    mini-batches of ``min(200, n)``, L2 weight ``alpha`` with sklearn's scaling, early stopping on the
    training loss."""

    hidden = ()


class MLPProbe(_NetProbe):
    """Two-hidden-layer ReLU MLP (the paper's probe), scikit-learn ``MLPClassifier`` semantics.

    hidden: ``(h1, h2)``; alpha: L2 weight (a batch of size B adds ``alpha / (2 B) * sum ||W||^2`` to the
    loss). Default hidden sizes ``(100, 100)``: sklearn's ``(100,)`` with the paper's second layer.
    """

    def __init__(self, hidden: tuple[int, ...] = (100, 100), alpha: float = 1e-4, **kwargs: object) -> None:
        super().__init__(alpha, **kwargs)  # type: ignore[arg-type]
        self.hidden = tuple(int(h) for h in hidden)
