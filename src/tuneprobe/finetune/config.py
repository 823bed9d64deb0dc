"""Fine-tuning settings (the paper's recipe as defaults, PAPER.md section 4), the learning-rate schedule and
the snapshot schedule.

Learning rate. Updates are numbered ``k = 0 .. total-1``; update ``k`` uses ``lr * factor(k)`` with the
Hugging Face ``get_linear_schedule_with_warmup`` factor (what the paper's HF 4.2.1 code would have used):
``k / warmup`` while ``k < warmup``, then ``(total - k) / (total - warmup)``; ``warmup = ceil(fraction *
total)``. The first update therefore runs at lr 0 (Adam's moments still move), the peak ``lr`` is reached at
update ``warmup`` and the factor falls linearly towards 0 at ``total``.

Snapshots are named by the number of updates done (``0`` = the pre-trained weights). Schedules:
``"0,10,50"`` (explicit), ``"log:K"`` (K log-spaced update counts in ``[1, total]``, rounded, distinct),
``"every:N"`` (``0, N, 2N, ...``), ``None``/``"paper"`` (every ``ceil(total / 20)``, the UNCONFIRMED default).
Step 0 and the final step are always added; steps beyond the final one are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tuneprobe.errors import UnknownNameError

#: epochs of the paper's recipe: 10, or 3 for models with at least this many layers (BERT_base)
PAPER_EPOCHS = 10
PAPER_EPOCHS_LARGE = 3
LARGE_MODEL_LAYERS = 12
SENTENCE_HEADS = ("linear", "pooler")


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run; defaults follow the paper (PAPER.md section 4).

    epochs: passes over the training sentences; None = 10, or 3 for models with >= 12 layers.
    lr: peak learning rate (3e-4). batch_size: sentences per update (32); the loss is the mean cross-entropy
    over the examples those sentences hold. warmup: fraction of all updates used for the linear warm-up
    (``ceil(warmup * total)`` updates). seed: seeds python, numpy and torch (dropout, head initialisation) and
    the data order (a ``torch.Generator`` seeded from ``(seed, epoch)``).
    snapshots: schedule (module docstring). max_steps: total number of updates instead of ``epochs * updates
    per epoch`` (the schedule is laid over it). device: auto|cpu|cuda|mps.
    weight_decay: Adam's L2 term (0; UNCONFIRMED in the paper). adam_betas, adam_eps: torch defaults.
    max_grad_norm: clip the global gradient norm (None = no clipping; the paper does not say).
    pooling: subword -> word pooling of token and pair units (``mean``, the paper's rule; ``first``;
    ``last``).
    sentence_pooling: ``cls`` (paper) or ``mean``. sentence_head: ``linear`` (a linear layer over the pooled
    [CLS] vector) or ``pooler`` (the model's pooler, dense + tanh, first, as HF sequence classification does).
    max_length: window length in tokens (default: the model's). head_init_std: std of the head's normal
    initialisation (None = the model config's ``initializer_range``, else 0.02); the bias starts at 0.
    keep_resume: ``last`` keeps optimizer/RNG state only in the newest snapshot, ``all`` in every snapshot.
    """

    epochs: int | None = None
    lr: float = 3e-4
    batch_size: int = 32
    warmup: float = 0.1
    seed: int = 0
    snapshots: str | Sequence[int] | None = None
    max_steps: int | None = None
    device: str = "auto"
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float | None = None
    pooling: str = "mean"
    sentence_pooling: str = "cls"
    sentence_head: str = "linear"
    max_length: int | None = None
    head_init_std: float | None = None
    keep_resume: str = "last"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise UnknownNameError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UnknownNameError(f"batch size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.warmup < 1.0:
            raise UnknownNameError(f"warmup must be a fraction in [0, 1), got {self.warmup}")
        if self.lr <= 0:
            raise UnknownNameError(f"lr must be > 0, got {self.lr}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UnknownNameError(f"max steps must be >= 1, got {self.max_steps}")
        if self.sentence_head not in SENTENCE_HEADS:
            raise UnknownNameError(f"sentence head {self.sentence_head!r}: expected one of {SENTENCE_HEADS}")
        if self.keep_resume not in ("last", "all"):
            raise UnknownNameError(f"keep_resume {self.keep_resume!r}: expected 'last' or 'all'")
        self.adam_betas = (float(self.adam_betas[0]), float(self.adam_betas[1]))
        if self.snapshots is not None and not isinstance(self.snapshots, str):
            self.snapshots = [int(s) for s in self.snapshots]

    def resolved_epochs(self, n_layers: int) -> int:
        """Epochs for a model with ``n_layers`` layers (the paper's 10, or 3 from 12 layers on)."""
        if self.epochs is not None:
            return self.epochs
        return PAPER_EPOCHS_LARGE if n_layers >= LARGE_MODEL_LAYERS else PAPER_EPOCHS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every setting."""
        d = asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        if d["snapshots"] is not None and not isinstance(d["snapshots"], str):
            d["snapshots"] = list(d["snapshots"])
        return d


def warmup_steps(total: int, fraction: float) -> int:
    """``ceil(fraction * total)`` warm-up updates (computed on a rounded product, so 0.1 * 590 gives 59)."""
    return int(math.ceil(round(fraction * total, 9)))


def lr_factor(k: int, total: int, warmup: int) -> float:
    """Multiplier of the peak lr for update ``k`` (0-based) of ``total``: linear warm-up, linear decay."""
    if k < warmup:
        return k / max(1, warmup)
    return max(0.0, (total - k) / max(1, total - warmup))


def parse_snapshots(spec: str | Sequence[int] | None, total: int) -> list[int]:
    """Sorted distinct update counts to snapshot at, always with 0 and ``total`` (module docstring).

    Raises UnknownNameError for a malformed specification.
    """
    if total < 1:
        raise UnknownNameError(f"a run needs >= 1 update, got {total}")
    steps: set[int]
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "paper", "default")):
        every = max(1, math.ceil(total / 20))
        steps = set(range(0, total + 1, every))
    elif isinstance(spec, str):
        text = spec.strip().lower()
        try:
            if text.startswith("log:"):
                k = int(text[4:])
                if k < 1:
                    raise ValueError
                steps = {int(round(x)) for x in np.geomspace(1, total, num=k)} if total > 1 else {1}
            elif text.startswith("every:"):
                n = int(text[6:])
                if n < 1:
                    raise ValueError
                steps = set(range(0, total + 1, n))
            else:
                steps = {int(x) for x in text.replace(" ", "").split(",") if x}
                if any(s < 0 for s in steps):
                    raise ValueError
        except ValueError:
            raise UnknownNameError(
                f"snapshots {spec!r}: expected e.g. '0,10,50', 'log:10', 'every:25' or 'paper'"
            ) from None
    else:
        steps = {int(s) for s in spec}
        if any(s < 0 for s in steps):
            raise UnknownNameError(f"snapshots {list(spec)}: update counts must be >= 0")
    steps = {s for s in steps if s <= total} | {0, total}
    return sorted(steps)
