"""Task heads trained end to end with the encoder (PAPER.md section 4, UNCONFIRMED options).

- token units (``pos``, ``ps-*``): a linear layer over the word vector, the mean of its subwords' last-layer
  states;
- pair units (``dep``): a linear layer over ``[dependent; head]`` (2H);
- sentence units (``trec*``): a linear layer over the [CLS] vector (``sentence_head="linear"``), or over the
  model's pooler output (dense + tanh of [CLS], as HF sequence classification; ``"pooler"``).

Pooling is the extraction's weighted sum over the batch's last hidden state, with the extraction's weights
(:func:`tuneprobe.encoders.pool.build_pool_plan`), as one differentiable sparse-dense product per batch
(``torch.sparse.mm``; its backward is another sparse product, which, unlike ``index_add_``, stays fast on an
oversubscribed CPU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tuneprobe.errors import TuneprobeError
from tuneprobe.finetune.data import Batch


class TaskHead(nn.Module):
    """Linear classifier over pooled example vectors.

    in_dim = n_parts * H; out = n_labels. ``pooler``: optional module (the encoder's own pooler, shared, not
    copied) applied to a sentence vector before the linear layer.
    """

    def __init__(
        self,
        hidden_size: int,
        n_parts: int,
        n_labels: int,
        init_std: float = 0.02,
        seed: int = 0,
        pooler: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.n_parts = n_parts
        self.hidden_size = hidden_size
        self.classifier = nn.Linear(n_parts * hidden_size, n_labels)
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            self.classifier.weight.copy_(
                torch.randn(self.classifier.weight.shape, generator=g, dtype=torch.float32) * init_std
            )
            self.classifier.bias.zero_()
        # kept out of this module's parameters/state: the pooler belongs to (and is saved with) the encoder
        self._pooler = [pooler] if pooler is not None else []

    def pool(self, last_hidden: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Example vectors ``[n_examples, n_parts * H]`` from the last hidden state ``[S, T, H]``."""
        flat = last_hidden.reshape(-1, last_hidden.shape[-1])
        try:
            out = torch.sparse.mm(batch.pooler, flat)
        except (NotImplementedError, RuntimeError):  # devices without sparse kernels (e.g. MPS)
            idx, w = batch.pooler.indices(), batch.pooler.values()
            out = flat.new_zeros((batch.pooler.shape[0], flat.shape[1]))
            out = out.index_add(0, idx[0], flat.index_select(0, idx[1]) * w.unsqueeze(1))
        return out.reshape(batch.n_examples, self.n_parts * self.hidden_size)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, n_labels]`` of pooled vectors ``[n, n_parts * H]``."""
        if self._pooler:
            pooler = self._pooler[0]
            vectors = pooler.activation(pooler.dense(vectors))
        return self.classifier(vectors)


def make_head(
    model: Any,
    n_parts: int,
    n_labels: int,
    unit_kind: str,
    sentence_head: str = "linear",
    init_std: float | None = None,
    seed: int = 0,
) -> TaskHead:
    """The head for ``unit_kind`` on top of ``model`` (an HF base model); see the module docstring."""
    cfg = model.config
    std = float(init_std if init_std is not None else getattr(cfg, "initializer_range", 0.02) or 0.02)
    pooler = None
    if unit_kind == "sentence" and sentence_head == "pooler":
        pooler = getattr(model, "pooler", None)
        if pooler is None or not hasattr(pooler, "dense"):
            raise TuneprobeError(f"sentence head 'pooler': {type(model).__name__} has no dense pooler")
    return TaskHead(int(cfg.hidden_size), n_parts, n_labels, init_std=std, seed=seed, pooler=pooler)


def forward_loss(
    model: nn.Module, head: TaskHead, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean cross-entropy over the batch's labelled examples, number correct, number labelled) for one batch.

    Examples whose label id is -1 (not in the label map) are ignored.
    """
    hidden = model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, return_dict=True
    ).last_hidden_state
    logits = head(head.pool(hidden, batch))
    loss = nn.functional.cross_entropy(logits, batch.labels, ignore_index=-1)
    with torch.no_grad():
        valid = batch.labels >= 0
        correct = ((logits.argmax(dim=1) == batch.labels) & valid).sum()
    return loss, correct, valid.sum()
