"""The paper's probe protocol (PAPER.md section 5): grid search, selection, five seeded refits, test accuracy.

1. **Grid:** hidden sizes ``(h1, h2)`` in ``{32, 64, 128, 256}^2`` crossed with ``alpha`` in ``10^-7 .. 10^0``
   (8 powers of ten): 128 configurations, each at most ``max_iter = 1000`` epochs. They are trained as 16
   batched models, one per hidden-size group (see :mod:`tuneprobe.probes._train`), with seed ``grid_seed``
   (default 0); with the default ``rng="sklearn"`` each fit uses the random numbers of
   ``MLPClassifier(random_state=grid_seed)``.
2. **Selection:** accuracy on the dev split when one is given; otherwise the grid is trained on 90 % of train
   and scored on a seeded, stratified 10 % hold-out (:func:`stratified_holdout`). Ties go to the first
   configuration in grid order (``h1`` ascending, then ``h2`` ascending, then ``alpha`` ascending).
3. **Refit:** the best setting is retrained on *all* of train with seeds 0-4 and scored on test. Test accuracy
   is reported in percent as mean and *population* std over the seeds. Test labels unseen in train count as
   errors; their number is reported. With a dev split the grid already trained the best setting on all of
   train with ``grid_seed``; when ``grid_seed`` is among ``seeds`` that fit is reused instead of being trained
   again. The remaining refits run as parallel jobs on CPU (``workers``).

Determinism: the same data, options and ``workers`` give the same result (single-threaded kernels per job);
changing ``workers`` or the device changes only float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from tuneprobe.probes._train import FittedNet, NetConfig, TrainSettings, train_jobs, train_nets
from tuneprobe.probes.estimators import as_float32, encode_labels, resolve_device
from tuneprobe.store.representations import Representations

PAPER_HIDDEN_SIZES: tuple[int, ...] = (32, 64, 128, 256)
PAPER_ALPHAS: tuple[float, ...] = tuple(float(10.0**e) for e in range(-7, 1))
PAPER_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)


def stratified_holdout(
    y: Sequence[object] | np.ndarray, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``y`` ``[n]`` into (train, hold-out), both sorted int64 arrays.

    The hold-out has ``round(fraction * n)`` examples. Each label contributes ``floor(fraction * n_label)``;
    the remaining places go to the labels with the largest remainders (ties: sorted label order). A label
    never gives away all of its examples, so every hold-out label also occurs in the training part (a label
    with one example stays in train). Which examples of a label are held out is a ``default_rng([seed, 3])``
    permutation.
    """
    y = np.asarray(y)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    exact = fraction * counts
    take = np.minimum(np.floor(exact).astype(np.int64), counts - 1)
    target = int(round(fraction * len(y)))
    room = counts - 1 - take
    rem = exact - take
    for c in sorted(range(len(classes)), key=lambda i: (-rem[i], i)):
        if take.sum() >= target:
            break
        if room[c] > 0 and rem[c] > 0:
            take[c] += 1
    rng = np.random.default_rng([seed, 3])
    hold = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        hold.append(rng.permutation(members)[: take[c]])
    hold_idx = np.sort(np.concatenate(hold)) if hold else np.empty(0, dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[hold_idx] = False
    return np.flatnonzero(mask).astype(np.int64), hold_idx.astype(np.int64)


@dataclass
class GridPoint:
    """One trained grid configuration: selection accuracy in ``[0, 1]``, epochs run, final train loss."""

    h1: int
    h2: int
    alpha: float
    selection_accuracy: float
    n_iter: int
    converged: bool
    train_loss: float


@dataclass
class ProbeSearchResult:
    """Outcome of :meth:`ProbeSearch.run`; ``test_accuracies``, ``mean`` and ``std`` are percent."""

    best_h1: int
    best_h2: int
    best_alpha: float
    selection: str  # "dev" or "holdout"
    grid: list[GridPoint]
    seeds: list[int]
    test_accuracies: list[float]
    mean: float
    std: float
    n_test: int
    n_test_unseen: int
    unseen_labels: list[str]
    n_classes: int
    grid_seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def rows(
        self,
        model: str = "",
        tuned_on: str = "",
        checkpoint: int = 0,
        layer: int = -1,
        task: str = "",
        seed: int = 0,
        control: str = "real",
    ) -> list[dict[str, object]]:
        """Tidy result rows (the columns of :data:`tuneprobe.experiments.results.ROW_COLUMNS`, analysis
        ``probe``), validated with :func:`~tuneprobe.experiments.results.make_row`. ``seed`` is the row's seed
        column: the fine-tuning seed of the probed weights (0 for an original model), as everywhere in the
        results table; the refit seeds are part of the metric names.

        Split ``test``: ``accuracy_refit_<k>`` (percent, one row per refit seed k), ``accuracy_mean``,
        ``accuracy_std`` (percent, population std over the refits), ``n_test``, ``n_unseen`` (test examples
        whose label is not in train). Split ``dev`` (``train`` when selection used a hold-out of train):
        ``best_dev_accuracy`` (percent, the selected configuration on the selection set). Split empty:
        ``best_h1``, ``best_h2``, ``best_alpha``.
        """
        from tuneprobe.experiments.results import make_row

        base = {
            "model": model,
            "tuned_on": tuned_on,
            "checkpoint": int(checkpoint),
            "layer": int(layer),
            "task": task,
            "analysis": "probe",
            "seed": int(seed),
            "control": control,
        }
        best = self.best_point()
        sel = "dev" if self.selection == "dev" else "train"
        values: list[tuple[str, str, float]] = [
            ("test", f"accuracy_refit_{k}", acc)
            for k, acc in zip(self.seeds, self.test_accuracies, strict=True)
        ]
        values += [
            ("test", "accuracy_mean", self.mean),
            ("test", "accuracy_std", self.std),
            ("test", "n_test", float(self.n_test)),
            ("test", "n_unseen", float(self.n_test_unseen)),
            (sel, "best_dev_accuracy", 100.0 * best.selection_accuracy),
            ("", "best_h1", float(self.best_h1)),
            ("", "best_h2", float(self.best_h2)),
            ("", "best_alpha", self.best_alpha),
        ]
        return [make_row(**base, split=sp, metric=m, value=v) for sp, m, v in values]

    def best_point(self) -> GridPoint:
        """The selected :class:`GridPoint`."""
        for p in self.grid:
            if (p.h1, p.h2, p.alpha) == (self.best_h1, self.best_h2, self.best_alpha):
                return p
        raise LookupError("best configuration not in grid")

    def summary(self) -> str:
        """One line: ``mean ± std (h1, h2, alpha)``."""
        return (
            f"{self.mean:.2f} ± {self.std:.2f} % (h1={self.best_h1}, h2={self.best_h2}, "
            f"alpha={self.best_alpha:g}; selected on {self.selection}; "
            f"{self.n_test_unseen}/{self.n_test} test examples with unseen labels)"
        )


def _accuracy(net: FittedNet, X: torch.Tensor, y_idx: np.ndarray) -> float:
    """Fraction of rows of ``X [n, d]`` whose argmax logit equals ``y_idx [n]`` (``-1`` never matches)."""
    with torch.no_grad():
        pred = net.logits(X).argmax(dim=1).cpu().numpy()
    return float(np.mean(pred == y_idx))


@dataclass
class ProbeSearch:
    """The paper's MLP probe protocol; see the module docstring. ``device=None`` picks cuda when present."""

    hidden_sizes: Sequence[int] = PAPER_HIDDEN_SIZES
    alphas: Sequence[float] = PAPER_ALPHAS
    seeds: Sequence[int] = PAPER_SEEDS
    grid_seed: int = 0
    max_iter: int = 1000
    holdout_fraction: float = 0.1
    holdout_seed: int = 0
    batch_size: int | None = None
    learning_rate_init: float = 1e-3
    tol: float = 1e-4
    n_iter_no_change: int = 10
    rng: str = "sklearn"  # random streams, see tuneprobe.probes._train ("sklearn" | "numpy")
    layout: str = "auto"  # batched layout, see tuneprobe.probes._train ("auto" | "grouped" | "padded")
    configs: Sequence[tuple[int, int, float]] | None = (
        None  # explicit (h1, h2, alpha) list overrides the grid
    )
    device: str | torch.device | None = None
    workers: int | None = None  # CPU threads running independent jobs; None: torch.get_num_threads()
    progress: Callable[[str, int, int], None] | None = None  # (phase, epoch, n_active)

    def grid(self) -> list[NetConfig]:
        """The configurations in grid order (h1, then h2, then alpha, all ascending)."""
        if self.configs is not None:
            return [NetConfig((int(a), int(b)), float(al)) for a, b, al in self.configs]
        return [
            NetConfig((h1, h2), float(al))
            for h1 in sorted(self.hidden_sizes)
            for h2 in sorted(self.hidden_sizes)
            for al in sorted(self.alphas)
        ]

    def _settings(self) -> TrainSettings:
        return TrainSettings(
            batch_size=self.batch_size,
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            rng=self.rng,
            layout=self.layout,
        )

    def _cb(self, phase: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        progress = self.progress
        return lambda epoch, active: progress(phase, epoch, active)

    def run(
        self,
        X_train: np.ndarray,
        y_train: Sequence[object] | np.ndarray,
        X_test: np.ndarray,
        y_test: Sequence[object] | np.ndarray,
        X_dev: np.ndarray | None = None,
        y_dev: Sequence[object] | np.ndarray | None = None,
    ) -> ProbeSearchResult:
        """Grid, selection, refits. ``X_*`` float32 ``[n_*, d]``; ``y_*`` ``[n_*]`` labels (ids or names, the
        same vocabulary in every split)."""
        if (X_dev is None) != (y_dev is None):
            raise ValueError("give both X_dev and y_dev, or neither")
        y_train, y_test = np.asarray(y_train), np.asarray(y_test)
        if len(X_train) != len(y_train) or len(X_test) != len(y_test):
            raise ValueError("X and y lengths differ")
        if len(y_test) == 0:
            raise ValueError("the test split is empty")
        dev = resolve_device(self.device)
        classes = np.unique(y_train)
        k = len(classes)
        settings = self._settings()
        configs = self.grid()
        timings: dict[str, float] = {}

        Xtr = as_float32(X_train, dev)
        ytr_idx = encode_labels(classes, y_train)
        ytr = torch.from_numpy(ytr_idx).to(dev)
        t0 = time.perf_counter()
        if X_dev is not None:
            selection = "dev"
            Xsel = as_float32(X_dev, dev)
            ysel_idx = encode_labels(classes, np.asarray(y_dev))
            fits = train_nets(Xtr, ytr, k, configs, self.grid_seed, settings, self._cb("grid"), self.workers)
        else:
            selection = "holdout"
            fit_idx, hold_idx = stratified_holdout(y_train, self.holdout_fraction, self.holdout_seed)
            fi = torch.from_numpy(fit_idx).to(dev)
            Xsel = Xtr[torch.from_numpy(hold_idx).to(dev)]
            ysel_idx = ytr_idx[hold_idx]
            fits = train_nets(
                Xtr[fi], ytr[fi], k, configs, self.grid_seed, settings, self._cb("grid"), self.workers
            )
        timings["grid_s"] = time.perf_counter() - t0
        if len(ysel_idx) == 0:
            raise ValueError("the selection set is empty")
        accs = [_accuracy(f, Xsel, ysel_idx) for f in fits]
        grid = [
            GridPoint(c.hidden[0], c.hidden[1], c.alpha, a, f.n_iter, f.converged, f.loss_curve[-1])
            for c, f, a in zip(configs, fits, accs, strict=True)
        ]
        b = int(np.argmax(accs))  # first maximum = first in grid order
        best = configs[b]

        t0 = time.perf_counter()
        Xte = as_float32(X_test, dev)
        yte_idx = encode_labels(classes, y_test)
        reuse = selection == "dev"  # the grid's grid_seed fit of the best setting is that seed's refit
        todo = [seed for seed in self.seeds if not (reuse and seed == self.grid_seed)]
        refits = train_jobs(
            Xtr, ytr, k, [([best], seed) for seed in todo], settings, self._cb("refit"), self.workers
        )
        nets = dict(zip(todo, (f[0] for f in refits), strict=True))
        test_accs = [
            100.0 * _accuracy(nets[seed] if seed in nets else fits[b], Xte, yte_idx) for seed in self.seeds
        ]
        timings["refit_s"] = time.perf_counter() - t0
        unseen = yte_idx < 0
        mean = float(np.mean(test_accs))
        std = float(np.std(test_accs))  # population std (ddof=0)
        return ProbeSearchResult(
            best_h1=best.hidden[0],
            best_h2=best.hidden[1],
            best_alpha=best.alpha,
            selection=selection,
            grid=grid,
            seeds=list(self.seeds),
            test_accuracies=test_accs,
            mean=mean,
            std=std,
            n_test=len(y_test),
            n_test_unseen=int(unseen.sum()),
            unseen_labels=sorted({str(v) for v in y_test[unseen]}),
            n_classes=k,
            grid_seed=self.grid_seed,
            timings=timings,
        )


def probe_search(
    X_train: np.ndarray,
    y_train: Sequence[object] | np.ndarray,
    X_test: np.ndarray,
    y_test: Sequence[object] | np.ndarray,
    X_dev: np.ndarray | None = None,
    y_dev: Sequence[object] | np.ndarray | None = None,
    **options: object,
) -> ProbeSearchResult:
    """``ProbeSearch(**options).run(...)``: the paper's grid, selection and five refits (module doc)."""
    return ProbeSearch(**options).run(X_train, y_train, X_test, y_test, X_dev, y_dev)  # type: ignore[arg-type]


def probe_representations(
    train: Representations,
    test: Representations,
    layer: int,
    dev: Representations | None = None,
    *,
    model: str | None = None,
    tuned_on: str = "",
    checkpoint: int = 0,
    seed: int = 0,
    **options: object,
) -> tuple[ProbeSearchResult, list[dict[str, object]]]:
    """Run :func:`probe_search` on hidden-state index ``layer`` of each split; return the result and its
    tidy rows (:meth:`ProbeSearchResult.rows`; ``seed``: the fine-tuning seed; ``model`` defaults to
    ``train.meta["model"]``, the task to ``train.meta["task"]``). Label ids are mapped to names first, because
    each split's ``y`` indexes its own ``labels`` list."""

    def names(r: Representations) -> np.ndarray:
        return np.asarray(r.labels, dtype=object)[np.asarray(r.y)].astype(str)

    result = probe_search(
        train.layer(layer),
        names(train),
        test.layer(layer),
        names(test),
        None if dev is None else dev.layer(layer),
        None if dev is None else names(dev),
        **options,
    )
    meta = train.meta
    rows = result.rows(
        model=str(meta.get("model", "")) if model is None else model,
        tuned_on=tuned_on,
        checkpoint=checkpoint,
        layer=layer if layer >= 0 else train.layers[layer],
        task=str(meta.get("task", "")),
        seed=seed,
    )
    return result, rows
