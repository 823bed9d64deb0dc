"""``Representations``: the only thing analyses receive (arrays + label ids + metadata, never a model)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Representations:
    """Per-layer vectors of the examples of one split.

    X: float32 ``[n_layers, n_examples, dim]`` (may be a read-only memmap). ``layers[k]`` is the hidden-state
       index of ``X[k]`` (0 = embedding output, 1..L = transformer layers).
    y: int64 ``[n_examples]``, indices into ``labels``.
    labels: label names (sorted distinct labels of the split).
    example_ids: ``[n_examples]`` stable example ids.
    meta: model, weights hash, task, corpus, split, unit kind, pooling, ... (JSON-serialisable).
    """

    X: np.ndarray
    y: np.ndarray
    labels: list[str]
    example_ids: list[str]
    layers: list[int]
    meta: dict[str, object] = field(default_factory=dict)

    def layer(self, layer: int) -> np.ndarray:
        """float32 ``[n_examples, dim]`` matrix of hidden-state index ``layer`` (negative: from the end)."""
        if layer < 0:
            layer = self.layers[layer]
        try:
            k = self.layers.index(layer)
        except ValueError:
            raise KeyError(f"layer {layer} not available; have {self.layers}") from None
        return self.X[k]

    @property
    def n_examples(self) -> int:
        return int(self.X.shape[1])

    @property
    def dim(self) -> int:
        return int(self.X.shape[2])
