"""Train many small softmax MLPs at once, with scikit-learn ``MLPClassifier`` (``solver="adam"``) semantics.

This is the engine behind :class:`~tuneprobe.probes.MLPProbe`, :class:`~tuneprobe.probes.LinearProbe` and the
paper's grid search. One call trains a list of configurations (hidden sizes, L2 weight ``alpha``) on the same
data with the same seed. Configurations in one batched loop share nothing but the order of the mini-batches,
so each ends where it would if it were trained alone (up to float rounding).

**How the grid is batched (grouped layout, the CPU default).** Configurations with the same hidden sizes form
a group (the paper's grid: 16
groups of 8 alphas). A group's weights are stacked ``W_l [A, in_l, out_l]`` and every layer, forward and
backward, is one ``torch.baddbmm`` / ``torch.bmm`` over the group (the first layer reads the shared mini-batch
through a stride-0 ``expand``). Groups are not padded to the largest size, so no FLOPs are wasted on masked
units. The softmax, the loss and the output deltas run once over ``[C, B, K]`` for all configurations of a
loop. All parameters, gradients and Adam moments live in four flat buffers (views give each group and layer
its block), so the L2 term is one fused ``addcmul`` with a per-element alpha and the Adam update is one fused
``torch._fused_adam_`` call. Each configuration keeps its own early-stopping counter; a
stopped one is snapshotted at once, and when stopped configurations make up 10 % of the remaining per-step
cost the buffers are repacked without them.

**Padded layout (the GPU default, ``layout="padded"``).** Every (configuration, seed) item of a loop, of any
hidden sizes, sits in ONE network per layer, zero-padded to the widest (:class:`_Padded`; the padding stays
exactly zero, so each item trains as it would alone). A step of the whole grid is then ~40 kernels instead of
~16x as many, which is what a GPU needs; the padding's extra FLOPs (2.8x for the paper's grid: 21.9 instead
of 7.8 GFLOP per step) make it the slower choice on a CPU. With ``rng="sklearn"`` each item reads its own
stream's mini-batch (``X`` gathered per item), so the whole grid, and all refit seeds, run in one loop each.

**Cores.** :func:`train_nets` makes one job (batched loop) per hidden-size group and runs the jobs on
``torch.get_num_threads()`` worker threads on CPU (largest first), each single-threaded; configurations are
independent, so this scales better than intra-op threads on these mid-sized matrices. On other devices all
jobs of a call form one padded loop. A configuration's result does not depend on the number of workers or
the layout (up to float rounding).

**scikit-learn semantics kept** (``MLPClassifier(solver="adam", activation="relu")``):

- Glorot-uniform init, ``bound = sqrt(6 / (fan_in + fan_out))`` for weights and biases;
- mini-batches of ``min(200, n)`` in a fresh permutation every epoch, the last batch may be smaller;
- per batch of size ``B``: loss = mean cross-entropy + ``alpha / (2 B) * sum ||W||^2`` (weights, not biases);
  gradient ``(A^T delta + alpha W) / B``; probabilities clipped at float32 eps in the reported loss;
- Adam with sklearn's update ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``, ``p -= lr_t * m / (sqrt(v) + eps)``;
- ``max_iter`` counts epochs; the epoch loss is the size-weighted mean of the batch losses; a configuration
  stops when its epoch loss has not dropped below ``best - tol`` for more than ``n_iter_no_change`` epochs in
  a row (sklearn's ``_update_no_improvement_count``).

**Random numbers.** By default (``rng="sklearn"``) a configuration uses exactly the random numbers of
``MLPClassifier(random_state=seed)``: one ``RandomState(seed)`` per hidden-size group draws the init, then
shuffles the sample order every epoch, so with three or more classes a fit follows sklearn's trajectory up to
float rounding (``tests/probes/test_sklearn_parity.py``). ``rng="numpy"`` uses ``default_rng`` streams instead
(``[seed, 2, d, *hidden, K]`` for the init, ``[seed, 1]`` for one sample order shared by the whole grid).

**Deviations** (documented): float32 throughout (sklearn also keeps float32 input in float32); two classes
use a 2-way softmax instead of sklearn's single logistic unit (so binary fits do not follow sklearn's
trajectory); the Adam update runs in torch's fused kernel with sklearn's bias correction and eps placement.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

RNG_KINDS: tuple[str, ...] = ("sklearn", "numpy")
LAYOUTS: tuple[str, ...] = ("auto", "grouped", "padded")
_F32_EPS = float(np.finfo(np.float32).eps)
_MAX_NLL = -math.log(_F32_EPS)  # sklearn clips probabilities to [eps, 1 - eps] in its reported loss
_REPACK_WASTE = 0.1  # repack when stopped configurations are this share of the remaining per-step cost


@dataclass(frozen=True)
class NetConfig:
    """One probe configuration: hidden layer sizes (``()``: linear softmax), L2 weight ``alpha``."""

    hidden: tuple[int, ...]
    alpha: float

    def __post_init__(self) -> None:
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be >= 1, got {self.hidden}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings shared by all configurations of one call (sklearn ``MLPClassifier`` defaults,
    except ``max_iter``: the paper's 1,000 instead of sklearn's 200)."""

    batch_size: int | None = None  # None: min(200, n_samples)
    learning_rate_init: float = 1e-3
    max_iter: int = 1000
    tol: float = 1e-4
    n_iter_no_change: int = 10
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    rng: str = "sklearn"  # random streams: "sklearn" (RandomState, as MLPClassifier) or "numpy" (default_rng)
    layout: str = "auto"  # batched layout: "grouped" | "padded" | "auto" (padded on GPUs, grouped on CPU)

    def __post_init__(self) -> None:
        if self.rng not in RNG_KINDS:
            raise ValueError(f"rng must be one of {RNG_KINDS}, got {self.rng!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")


@dataclass
class FittedNet:
    """A trained network. ``weights[l]`` float32 ``[in_l, out_l]``, ``biases[l]`` float32 ``[out_l]``, from
    ``[d, *hidden, K]``; ``loss_curve`` holds one training loss per epoch; ``converged`` is False when the
    network stopped at ``max_iter`` instead of by the ``tol`` rule."""

    config: NetConfig
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    n_iter: int
    loss_curve: list[float] = field(default_factory=list)
    converged: bool = True

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores ``[n, K]`` for float32 ``X [n, d]`` (on the device the caller chose)."""
        h = X
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            wt = torch.as_tensor(w, device=X.device)
            bt = torch.as_tensor(b, device=X.device)
            h = torch.addmm(bt, h, wt)
            if i < last:
                h = h.relu_()
        return h


def init_params(
    d: int, hidden: tuple[int, ...], n_classes: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Glorot-uniform float32 ``(W [in, out], b [out])`` per layer; ``default_rng([seed, 2, d, *hidden, K])``.

    Depends only on the seed and the layer widths (not on ``alpha``), so every configuration of a grid starts
    where the same configuration trained alone starts.
    """
    widths = [d, *hidden, n_classes]
    rng = np.random.default_rng([seed, 2, *widths])
    out = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        out.append((w, b))
    return out


def epoch_orders(seed: int, n: int) -> Callable[[], np.ndarray]:
    """``rng="numpy"``: a callable giving each epoch's sample order (int64 ``[n]``), a fresh permutation from
    ``default_rng([seed, 1])``. Depends only on the seed and ``n``."""
    rng = np.random.default_rng([seed, 1])
    return lambda: rng.permutation(n)


def sklearn_streams(
    d: int, hidden: tuple[int, ...], n_classes: int, seed: int, n: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], Callable[[], np.ndarray]]:
    """``rng="sklearn"``: the random numbers ``MLPClassifier(random_state=seed)`` uses, in its order.

    One ``RandomState(seed)`` draws the Glorot-uniform init layer by layer (weights ``[in, out]``, then
    biases, in float64, cast to float32), then shuffles the running sample order in place once per epoch.
    Returns the float32 ``(W, b)`` per layer and a callable giving each epoch's order (int64 ``[n]``).
    """
    rs = np.random.RandomState(seed)
    widths = [d, *hidden, n_classes]
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = rs.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        b = rs.uniform(-bound, bound, fan_out).astype(np.float32)
        layers.append((w, b))
    state = {"order": np.arange(n)}

    def next_order() -> np.ndarray:
        perm = np.arange(n)
        rs.shuffle(perm)
        state["order"] = state["order"][perm]
        return state["order"]

    return layers, next_order


def _cost(cfg: NetConfig, d: int, k: int) -> int:
    widths = [d, *cfg.hidden, k]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


@dataclass
class _Group:
    """Configurations with the same hidden sizes: positions ``[c0, c1)`` in the packed order."""

    hidden: tuple[int, ...]
    c0: int
    c1: int


class _FlatBuffers:
    """Parameters, gradients and Adam moments of a batched loop in four flat float32 buffers ``P, G, M, V``;
    subclasses define the layout (``_views``) and where configuration ``c`` sits in it (``_gather``)."""

    P: torch.Tensor
    G: torch.Tensor
    M: torch.Tensor
    V: torch.Tensor
    step_t: torch.Tensor

    def _alloc(self, size: int, device: torch.device) -> None:
        f32 = {"dtype": torch.float32, "device": device}
        self.P = torch.zeros(size, **f32)
        self.G = torch.zeros(size, **f32)
        self.M = torch.zeros(size, **f32)
        self.V = torch.zeros(size, **f32)
        self.step_t = torch.zeros((), **f32)

    def _views(self, buf: torch.Tensor) -> Any:
        raise NotImplementedError

    def _gather(self, views: Any, c: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def params_of(self, c: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of configuration ``c``'s ``(W [in, out], b [out])`` per layer (its real block)."""
        return self._gather(self._views(self.P), c)

    def moments_of(self, c: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Copies of configuration ``c``'s Adam moments ``(mW, mb, vW, vb)`` per layer."""
        m = self._gather(self._views(self.M), c)
        v = self._gather(self._views(self.V), c)
        return [(a[0], a[1], b[0], b[1]) for a, b in zip(m, v, strict=True)]


class _Packed(_FlatBuffers):
    """All parameters, gradients and Adam moments of the active configurations in four flat buffers.

    Layout of each buffer: for each group (``A`` configurations with equal hidden sizes) and each layer ``l``
    of ``[d, *hidden, K]``: ``W [A, in_l, out_l]`` then ``b [A, out_l]``.
    """

    def __init__(
        self,
        ids: list[int],
        configs: list[NetConfig],
        params: list[list[tuple[torch.Tensor, torch.Tensor]]],
        moments: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]] | None,
        d: int,
        k: int,
        device: torch.device,
    ) -> None:
        order = sorted(range(len(ids)), key=lambda i: configs[i].hidden)  # stable: groups are contiguous
        self.ids = [ids[i] for i in order]
        self.configs = [configs[i] for i in order]
        params = [params[i] for i in order]
        moments = [moments[i] for i in order] if moments is not None else None
        self.d, self.k, self.device = d, k, device
        self.groups: list[_Group] = []
        for c, cfg in enumerate(self.configs):
            if not self.groups or self.groups[-1].hidden != cfg.hidden:
                self.groups.append(_Group(cfg.hidden, c, c))
            self.groups[-1].c1 = c + 1
        size = 0
        for g in self.groups:
            widths = [d, *g.hidden, k]
            size += (g.c1 - g.c0) * sum(fi * fo + fo for fi, fo in zip(widths[:-1], widths[1:], strict=True))
        self.size = size
        f32 = {"dtype": torch.float32, "device": device}
        self._alloc(size, device)
        self.pv, self.gv = self._views(self.P), self._views(self.G)
        # per-element L2 weight (alpha on weights, 0 on biases): the decay term is one fused op over the grid
        self.alpha_flat = torch.zeros(size, **f32)
        av = self._views(self.alpha_flat)
        for gi, g in enumerate(self.groups):
            al = torch.tensor([c.alpha for c in self.configs[g.c0 : g.c1]], **f32).view(-1, 1, 1)
            for w in av[gi][0]:
                w.copy_(al.expand_as(w))
        self.alpha = torch.tensor([c.alpha for c in self.configs], **f32)
        self._scatter(self.pv, params)
        if moments is not None:
            self._scatter(self._views(self.M), [[(m[0], m[1]) for m in cm] for cm in moments])
            self._scatter(self._views(self.V), [[(m[2], m[3]) for m in cm] for cm in moments])

    def _views(self, buf: torch.Tensor) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
        """Per group: (``[W_l [A, in, out]]``, ``[b_l [A, out]]``) views into ``buf``."""
        off = 0
        out = []
        for g in self.groups:
            a = g.c1 - g.c0
            widths = [self.d, *g.hidden, self.k]
            ws, bs = [], []
            for fi, fo in zip(widths[:-1], widths[1:], strict=True):
                ws.append(buf[off : off + a * fi * fo].view(a, fi, fo))
                off += a * fi * fo
                bs.append(buf[off : off + a * fo].view(a, fo))
                off += a * fo
            out.append((ws, bs))
        return out

    def _locate(self, c: int) -> tuple[int, int]:
        for gi, g in enumerate(self.groups):
            if g.c0 <= c < g.c1:
                return gi, c - g.c0
        raise IndexError(c)

    def _scatter(self, views: list, per_cfg: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> None:
        for c, layers in enumerate(per_cfg):
            gi, j = self._locate(c)
            for (w, b), wv, bv in zip(layers, views[gi][0], views[gi][1], strict=True):
                wv[j].copy_(w)
                bv[j].copy_(b)

    def _gather(self, views: list, c: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        gi, j = self._locate(c)
        return [(w[j].clone(), b[j].clone()) for w, b in zip(views[gi][0], views[gi][1], strict=True)]

    def step(self, xb: torch.Tensor, yb: torch.Tensor, t: int, s: TrainSettings) -> torch.Tensor:
        """One Adam step of every packed configuration on batch ``xb [B, d]``, ``yb [B]`` (int64).

        Returns the per-configuration batch loss ``[C]`` (cross-entropy + L2 term, before the update).
        """
        B = xb.shape[0]
        C, K = len(self.configs), self.k
        dev = xb.device
        logits = torch.empty(C, B, K, dtype=torch.float32, device=dev)
        acts: list[list[torch.Tensor]] = []
        reg = torch.empty(C, dtype=torch.float32, device=dev)
        for gi, g in enumerate(self.groups):
            a = g.c1 - g.c0
            ws, bs = self.pv[gi]
            h = xb.expand(a, B, self.d)  # [A, B, d], shared input
            hs = [h]
            last = len(ws) - 1
            for li, (w, b) in enumerate(zip(ws, bs, strict=True)):
                if li < last:
                    h = torch.baddbmm(b.unsqueeze(1), h, w).relu_()
                    hs.append(h)
                else:
                    torch.baddbmm(b.unsqueeze(1), h, w, out=logits[g.c0 : g.c1])
            acts.append(hs)
            r = reg[g.c0 : g.c1]
            r.zero_()
            for w in ws:
                r += torch.linalg.vector_norm(w, dim=(1, 2)).square_()
        # loss and output deltas over the whole grid at once
        logp = torch.log_softmax(logits, dim=2)
        idx = yb.view(1, B, 1).expand(C, B, 1)
        nll = logp.gather(2, idx).squeeze(2).neg_().clamp_(max=_MAX_NLL)  # [C, B]
        loss = nll.mean(1) + (0.5 / B) * self.alpha * reg
        delta = logp.exp_()
        delta.scatter_add_(2, idx, torch.full((C, B, 1), -1.0, device=dev))
        delta.div_(B)  # (P - Y) / B
        # backward, group by group
        for gi, g in enumerate(self.groups):
            dg = delta[g.c0 : g.c1]
            ws, _ = self.pv[gi]
            gws, gbs = self.gv[gi]
            hs = acts[gi]
            for li in range(len(ws) - 1, -1, -1):
                hp = hs[li]
                torch.bmm(hp.transpose(1, 2), dg, out=gws[li])
                torch.sum(dg, dim=1, out=gbs[li])
                if li > 0:
                    dg = torch.ops.aten.threshold_backward(torch.bmm(dg, ws[li].transpose(1, 2)), hp, 0.0)
        self.G.addcmul_(self.P, self.alpha_flat, value=1.0 / B)  # + alpha W / B
        _adam(self, t, s)
        return loss


class _Stopping:
    """Per-item early stopping (sklearn's ``_update_no_improvement_count``) and the finished fits."""

    def __init__(self, configs: list[NetConfig], s: TrainSettings) -> None:
        self.configs, self.s = configs, s
        self.best = np.full(len(configs), np.inf)
        self.stall = np.zeros(len(configs), dtype=np.int64)
        self.curves: list[list[float]] = [[] for _ in configs]
        self.results: list[FittedNet | None] = [None] * len(configs)

    def update(self, epoch: int, epoch_loss: np.ndarray, ids: list[int], packed: _FlatBuffers) -> bool:
        """Record ``epoch_loss [len(ids)]`` (row ``c`` of ``packed`` is item ``ids[c]``); snapshot every item
        that stops now. Returns True when one did."""
        s, stopped = self.s, False
        for c, cid in enumerate(ids):
            if self.results[cid] is not None:
                continue
            loss = float(epoch_loss[c])
            self.curves[cid].append(loss)
            self.stall[cid] = self.stall[cid] + 1 if loss > self.best[cid] - s.tol else 0
            self.best[cid] = min(self.best[cid], loss)
            converged = bool(self.stall[cid] > s.n_iter_no_change)
            if converged or epoch == s.max_iter:
                layers = packed.params_of(c)
                self.results[cid] = FittedNet(
                    config=self.configs[cid],
                    weights=[w.cpu().numpy() for w, _ in layers],
                    biases=[b.cpu().numpy() for _, b in layers],
                    n_iter=epoch,
                    loss_curve=self.curves[cid],
                    converged=converged,
                )
                stopped = True
        return stopped

    def active(self, ids: list[int]) -> list[int]:
        """Rows of ``ids`` still training."""
        return [c for c, cid in enumerate(ids) if self.results[cid] is None]

    def fits(self) -> list[FittedNet]:
        assert all(r is not None for r in self.results)
        return [r for r in self.results if r is not None]


def _epoch_loss(
    packed: _FlatBuffers,
    X: torch.Tensor,
    y: torch.Tensor,
    perm: torch.Tensor,
    bs: int,
    t: int,
    s: TrainSettings,
) -> tuple[np.ndarray, int]:
    """One epoch of ``packed`` over the mini-batches of ``perm`` (``[n]`` shared, or ``[C, n]`` per row);
    returns each row's epoch loss (size-weighted mean of its batch losses) and the new update count."""
    n = perm.shape[-1]
    total = None
    for start in range(0, n, bs):
        idx = perm[..., start : start + bs]
        t += 1
        batch = packed.step(X[idx], y[idx], t, s).double() * idx.shape[-1]
        total = batch if total is None else total + batch
    assert total is not None
    return (total / n).cpu().numpy(), t


def _train_packed(
    X: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    configs: Sequence[NetConfig],
    seed: int,
    settings: TrainSettings,
    progress: Callable[[int, int], None] | None,
) -> list[FittedNet]:
    """One batched training loop over ``configs`` (one seed); see :func:`train_nets`."""
    s = settings
    configs = list(configs)
    n, d = X.shape
    device = X.device
    bs = min(200, n) if s.batch_size is None else min(s.batch_size, n)
    k = n_classes
    if s.rng == "sklearn":
        if len({c.hidden for c in configs}) != 1:
            raise ValueError('rng="sklearn": one batched loop holds one hidden-size group (see train_nets)')
        shared, next_order = sklearn_streams(d, configs[0].hidden, k, seed, n)
        inits = [shared] * len(configs)  # same seed and shape: the same draws for every alpha
    else:
        inits = [init_params(d, cfg.hidden, k, seed) for cfg in configs]
        next_order = epoch_orders(seed, n)
    params = []
    for layers in inits:
        params.append([(torch.from_numpy(w).to(device), torch.from_numpy(b).to(device)) for w, b in layers])
    packed = _Packed(list(range(len(configs))), configs, params, None, d, k, device)
    del params
    costs = np.array([_cost(c, d, k) for c in configs], dtype=np.float64)
    track = _Stopping(configs, s)
    t = 0
    for epoch in range(1, s.max_iter + 1):
        perm = torch.from_numpy(next_order()).to(device)
        epoch_loss, t = _epoch_loss(packed, X, y, perm, bs, t, s)
        stopped_now = track.update(epoch, epoch_loss, packed.ids, packed)
        active = track.active(packed.ids)
        if progress is not None:
            progress(epoch, len(active))
        if not active:
            break
        if stopped_now:
            present = costs[packed.ids].sum()
            waste = sum(costs[cid] for cid in packed.ids if track.results[cid] is not None)
            if waste >= _REPACK_WASTE * present:
                packed = _Packed(
                    [packed.ids[c] for c in active],
                    [packed.configs[c] for c in active],
                    [packed.params_of(c) for c in active],
                    [packed.moments_of(c) for c in active],
                    d,
                    k,
                    device,
                )
    return track.fits()


class _Padded(_FlatBuffers):
    """Every (configuration, seed) item of one loop as ONE network per layer, zero-padded to the widest.

    Layer ``l`` of ``[d, *hidden, K]`` holds ``W [C, max in_l, max out_l]`` and ``b [C, max out_l]`` for the
    ``C`` items (all with the same number of hidden layers). Item ``c`` occupies ``W[c, :in_c, :out_c]``; the
    rest is zero and stays exactly zero: a padded unit's pre-activation is 0, so its ReLU output, its delta
    and every gradient that touches it are 0, its L2 term is ``alpha * 0``, and Adam moves a parameter with
    zero gradient and zero moments by ``0 / (0 + eps) = 0``. So each item computes what it computes alone
    (up to float rounding), while a whole step of the grid is a handful of ``bmm`` calls: few kernel
    launches, which is what a GPU needs (on a CPU the padding's extra FLOPs cost more than they save).
    Parameters, gradients and Adam moments live in four flat buffers, as in :class:`_Packed`.
    """

    def __init__(
        self,
        configs: list[NetConfig],
        params: list[list[tuple[torch.Tensor, torch.Tensor]]],
        moments: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]] | None,
        d: int,
        k: int,
        device: torch.device,
    ) -> None:
        self.configs = configs
        self.d, self.k, self.device = d, k, device
        depth = {len(c.hidden) for c in configs}
        if len(depth) != 1:
            raise ValueError("a padded loop holds configurations with the same number of hidden layers")
        n_hidden = depth.pop()
        self.widths = [d, *(max(c.hidden[i] for c in configs) for i in range(n_hidden)), k]
        C = len(configs)
        pairs = list(zip(self.widths[:-1], self.widths[1:], strict=True))
        size = sum(C * (fi * fo + fo) for fi, fo in pairs)
        f32 = {"dtype": torch.float32, "device": device}
        self._alloc(size, device)
        self.pv, self.gv = self._views(self.P), self._views(self.G)
        self.alpha = torch.tensor([c.alpha for c in configs], **f32)
        self.alpha_flat = torch.zeros(size, **f32)
        for w in self._views(self.alpha_flat)[0]:
            w.copy_(self.alpha.view(C, 1, 1).expand_as(w))
        self._scatter(self.pv, params)
        if moments is not None:
            self._scatter(self._views(self.M), [[(m[0], m[1]) for m in cm] for cm in moments])
            self._scatter(self._views(self.V), [[(m[2], m[3]) for m in cm] for cm in moments])

    def _views(self, buf: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(``[W_l [C, in, out]]``, ``[b_l [C, out]]``) views into ``buf``."""
        C, off = len(self.configs), 0
        ws, bs = [], []
        for fi, fo in zip(self.widths[:-1], self.widths[1:], strict=True):
            ws.append(buf[off : off + C * fi * fo].view(C, fi, fo))
            off += C * fi * fo
            bs.append(buf[off : off + C * fo].view(C, fo))
            off += C * fo
        return ws, bs

    def _real(self, c: int) -> list[tuple[int, int]]:
        w = [self.d, *self.configs[c].hidden, self.k]
        return list(zip(w[:-1], w[1:], strict=True))

    def _scatter(self, views: tuple[list[torch.Tensor], list[torch.Tensor]], per_cfg: list) -> None:
        for c, layers in enumerate(per_cfg):
            for (w, b), wv, bv, (fi, fo) in zip(layers, views[0], views[1], self._real(c), strict=True):
                wv[c, :fi, :fo].copy_(w)
                bv[c, :fo].copy_(b)

    def _gather(self, views: tuple[list[torch.Tensor], list[torch.Tensor]], c: int) -> list:
        return [
            (wv[c, :fi, :fo].clone(), bv[c, :fo].clone())
            for wv, bv, (fi, fo) in zip(views[0], views[1], self._real(c), strict=True)
        ]

    def step(self, xb: torch.Tensor, yb: torch.Tensor, t: int, s: TrainSettings) -> torch.Tensor:
        """One Adam step of every item on its batch: ``xb [C, B, d]`` and ``yb [C, B]`` (int64), or one
        batch ``xb [B, d]``, ``yb [B]`` shared by all. Returns the per-item batch loss ``[C]`` (before the
        update)."""
        C = len(self.configs)
        B = xb.shape[-2]
        h = xb if xb.dim() == 3 else xb.expand(C, B, self.d)
        idx = (yb if yb.dim() == 2 else yb.expand(C, B)).unsqueeze(2)  # [C, B, 1]
        ws, bs = self.pv
        gws, gbs = self.gv
        hs = [h]
        last = len(ws) - 1
        for li, (w, b) in enumerate(zip(ws, bs, strict=True)):
            h = torch.baddbmm(b.unsqueeze(1), h, w)
            if li < last:
                h = h.relu_()
                hs.append(h)
        reg = sum(torch.linalg.vector_norm(w, dim=(1, 2)).square_() for w in ws)
        logp = torch.log_softmax(h, dim=2)  # [C, B, K]
        nll = logp.gather(2, idx).squeeze(2).neg_().clamp_(max=_MAX_NLL)
        loss = nll.mean(1) + (0.5 / B) * self.alpha * reg
        delta = logp.exp_()
        delta.scatter_add_(2, idx, torch.full((C, B, 1), -1.0, device=xb.device))
        dg = delta.div_(B)
        for li in range(last, -1, -1):
            hp = hs[li]
            torch.bmm(hp.transpose(1, 2), dg, out=gws[li])
            torch.sum(dg, dim=1, out=gbs[li])
            if li > 0:
                dg = torch.ops.aten.threshold_backward(torch.bmm(dg, ws[li].transpose(1, 2)), hp, 0.0)
        self.G.addcmul_(self.P, self.alpha_flat, value=1.0 / B)
        _adam(self, t, s)
        return loss


def _adam(buf: _FlatBuffers, t: int, s: TrainSettings) -> None:
    """sklearn's Adam step on ``buf``'s flat parameters with its flat gradient: ``lr_t = lr sqrt(1-b2^t) /
    (1-b1^t)``, ``p -= lr_t m / (sqrt(v) + eps)``. torch's fused kernel computes ``lr/(1-b1^t) m /
    (sqrt(v)/sqrt(1-b2^t) + eps')``, equal for ``eps' = eps / sqrt(1-b2^t)``."""
    buf.step_t.fill_(float(t))
    bc2 = 1.0 - s.beta_2**t
    torch._fused_adam_(
        [buf.P],
        [buf.G],
        [buf.M],
        [buf.V],
        [],
        [buf.step_t],
        amsgrad=False,
        lr=s.learning_rate_init,
        beta1=s.beta_1,
        beta2=s.beta_2,
        weight_decay=0.0,
        eps=s.epsilon / math.sqrt(bc2),
        maximize=False,
    )


def _train_padded(
    X: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    items: Sequence[tuple[NetConfig, int]],
    settings: TrainSettings,
    progress: Callable[[int, int], None] | None,
) -> list[FittedNet]:
    """One loop over ``(configuration, seed)`` items in the :class:`_Padded` layout (any mix of hidden sizes
    and seeds with one depth). Each item draws the random numbers it draws in :func:`_train_packed`: with
    ``rng="sklearn"`` a ``RandomState(seed)`` per (hidden sizes, seed) for the init and that stream's epoch
    orders (so items with different streams read different mini-batches: ``X`` is gathered per item), with
    ``rng="numpy"`` :func:`init_params` and one :func:`epoch_orders` stream per seed."""
    s = settings
    items = [(c, int(seed)) for c, seed in items]
    n, d = X.shape
    device = X.device
    bs = min(200, n) if s.batch_size is None else min(s.batch_size, n)
    k = n_classes
    streams: dict[tuple, Callable[[], np.ndarray]] = {}
    inits: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
    stream_of = []
    for cfg, seed in items:
        key = (cfg.hidden, seed)
        if key not in inits:
            if s.rng == "sklearn":
                inits[key], streams[key] = sklearn_streams(d, cfg.hidden, k, seed, n)
            else:
                inits[key] = init_params(d, cfg.hidden, k, seed)
                if (seed,) not in streams:
                    streams[(seed,)] = epoch_orders(seed, n)
        stream_of.append(list(streams).index(key if s.rng == "sklearn" else (seed,)))
    next_orders = list(streams.values())
    configs = [c for c, _ in items]
    params = [
        [(torch.from_numpy(w).to(device), torch.from_numpy(b).to(device)) for w, b in inits[(c.hidden, seed)]]
        for c, seed in items
    ]
    packed = _Padded(configs, params, None, d, k, device)
    del params
    ids = list(range(len(items)))  # item of each packed row
    track = _Stopping(configs, s)
    row_stream = torch.tensor(stream_of, dtype=torch.int64, device=device)
    t = 0
    for epoch in range(1, s.max_iter + 1):
        orders = torch.from_numpy(np.stack([f() for f in next_orders])).to(device)  # [S, n]
        perm = orders[0] if len(next_orders) == 1 else orders[row_stream]  # [n] shared, or [C, n]
        epoch_loss, t = _epoch_loss(packed, X, y, perm, bs, t, s)
        stopped_now = track.update(epoch, epoch_loss, ids, packed)
        active = track.active(ids)
        if progress is not None:
            progress(epoch, len(active))
        if not active:
            break
        if stopped_now and len(ids) - len(active) >= _REPACK_WASTE * len(ids):
            packed = _Padded(
                [configs[ids[c]] for c in active],
                [packed.params_of(c) for c in active],
                [packed.moments_of(c) for c in active],
                d,
                k,
                device,
            )
            ids = [ids[c] for c in active]
            row_stream = row_stream[torch.tensor(active, dtype=torch.int64, device=device)]
    return track.fits()


def _padded(settings: TrainSettings, device: torch.device, configs: Sequence[NetConfig]) -> bool:
    """Use the padded layout: ``layout="padded"``, or ``"auto"`` on a non-CPU device; needs one depth."""
    want = settings.layout == "padded" or (settings.layout == "auto" and device.type != "cpu")
    return want and len({len(c.hidden) for c in configs}) <= 1


def _check(X: torch.Tensor, y: torch.Tensor, n_classes: int) -> None:
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be [n, d] and y [n]; got {tuple(X.shape)} and {tuple(y.shape)}")
    if X.shape[0] == 0:
        raise ValueError("cannot train on zero examples")
    if X.dtype != torch.float32:
        raise ValueError(f"X must be float32, got {X.dtype}")
    if n_classes < 1 or int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")


def default_workers(device: torch.device) -> int:
    """CPU: ``torch.get_num_threads()`` (the cores the caller allowed torch); other devices: 1."""
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


class _Progress:
    """Merges the per-job epoch reports of jobs (parallel or one after another) into ``progress(epoch,
    n_active_total)`` calls: one per new highest epoch, and one whenever the number of configurations still
    training (summed over all jobs, the ones not started included) drops."""

    def __init__(self, progress: Callable[[int, int], None] | None, sizes: list[int]) -> None:
        self.progress = progress
        self.active = list(sizes)
        self.epoch = 0
        self.lock = threading.Lock()

    def job(self, j: int) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None

        def report(epoch: int, active: int) -> None:
            with self.lock:
                before = sum(self.active)
                self.active[j] = active
                if epoch > self.epoch or sum(self.active) < before:
                    self.epoch = max(self.epoch, epoch)
                    assert self.progress is not None
                    self.progress(epoch, sum(self.active))

        return report


def train_jobs(
    X: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    jobs: Sequence[tuple[Sequence[NetConfig], int]],
    settings: TrainSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[list[FittedNet]]:
    """Train several ``(configs, seed)`` jobs on ``X`` float32 ``[n, d]``, ``y`` int64 ``[n]`` (values in
    ``0..n_classes-1``, both on the training device); returns the :class:`FittedNet` lists in job order.

    Each job is one batched loop (:func:`train_nets` semantics). On CPU the jobs run on ``workers`` threads
    (default ``torch.get_num_threads()``), largest first, each single-threaded: configurations are
    independent, so parallel jobs scale better than intra-op threads on these mid-sized matrices. While they
    run, torch's intra-op thread count is 1 (restored afterwards). Every configuration's result depends only
    on its data, configuration and seed, not on ``workers`` or on which job it shares.
    """
    s = settings or TrainSettings()
    _check(X, y, n_classes)
    jobs = [(list(c), int(seed)) for c, seed in jobs]
    device = X.device
    if _padded(s, device, [c for cs, _ in jobs for c in cs]):
        items = [(c, seed) for cs, seed in jobs for c in cs]
        fits = _train_padded(X, y, n_classes, items, s, progress) if items else []
        out, pos = [], 0
        for cs, _ in jobs:
            out.append(fits[pos : pos + len(cs)])
            pos += len(cs)
        return out
    w = default_workers(device) if workers is None else max(1, int(workers))
    w = min(w, sum(1 for c, _ in jobs if c))
    merged = _Progress(progress, [len(c) for c, _ in jobs])
    if w <= 1:
        return [
            _train_packed(X, y, n_classes, c, seed, s, merged.job(j)) if c else []
            for j, (c, seed) in enumerate(jobs)
        ]
    d = X.shape[1]
    order = sorted(
        range(len(jobs)), key=lambda j: -sum(_cost(c, d, n_classes) for c in jobs[j][0])
    )  # largest first (LPT), so the pool ends balanced
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=w, thread_name_prefix="tuneprobe-probe") as pool:
            futures = {
                j: pool.submit(_train_packed, X, y, n_classes, jobs[j][0], jobs[j][1], s, merged.job(j))
                for j in order
                if jobs[j][0]
            }
            return [futures[j].result() if j in futures else [] for j in range(len(jobs))]
    finally:
        torch.set_num_threads(threads_before)


def train_nets(
    X: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    configs: Sequence[NetConfig],
    seed: int = 0,
    settings: TrainSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[FittedNet]:
    """Train every configuration in ``configs`` on ``X`` float32 ``[n, d]`` and ``y`` int64 ``[n]`` (values in
    ``0..n_classes-1``), both on the device to train on, with one seed. Returns one :class:`FittedNet` per
    configuration, in the given order. ``progress(epoch, n_active)`` is called after every epoch.

    Each group of equal hidden sizes is its own batched loop (:func:`train_jobs`; with ``rng="sklearn"`` a
    group's sample order comes from its own ``RandomState``, as in sklearn), run on ``workers`` threads (CPU
    default: ``torch.get_num_threads()``). With ``rng="numpy"`` and one worker, all configurations share one
    loop.
    """
    configs = list(configs)
    if not configs:
        return []
    s = settings or TrainSettings()
    w = default_workers(X.device) if workers is None else max(1, int(workers))
    if (w <= 1 and s.rng == "numpy") or _padded(s, X.device, configs):
        return train_jobs(X, y, n_classes, [(configs, seed)], s, progress, workers=1)[0]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(configs):
        by_shape.setdefault(c.hidden, []).append(i)
    groups = list(by_shape.values())
    fits = train_jobs(
        X, y, n_classes, [([configs[i] for i in g], seed) for g in groups], s, progress, workers=w
    )
    out: list[FittedNet | None] = [None] * len(configs)
    for g, f in zip(groups, fits, strict=True):
        for i, net in zip(g, f, strict=True):
            out[i] = net
    return [net for net in out if net is not None]
