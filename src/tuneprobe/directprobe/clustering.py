"""The result type of ``DirectProbe.fit``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Clustering:
    """A partition of the training points into label-pure clusters whose hulls do not overlap.

    assignment: int64 ``[n]``, the cluster id of every input row (clusters numbered 0..K-1 in order of their
        smallest member index).
    cluster_labels: int64 ``[K]``, the label id of each cluster.
    n_labels: number of distinct labels in ``y``.
    label_names: optional names for label ids 0..n_labels-1.
    stats: counters and timings of the fit (LP calls, certificates used, seconds per phase, duplicates).
    finished: False when the fit ran out of its ``max_seconds`` budget: the partition is then the finest clean
        (label-pure, overlap-free) partition the fit had reached, which the finished greedy would only
        coarsen; ``stats["stopped_in"]`` names the phase and, from the checked phase, ``stats["pairs_left"]``
        counts the same-label cluster pairs it had not yet decided.
    """

    assignment: np.ndarray
    cluster_labels: np.ndarray
    n_labels: int
    label_names: list[str] | None = None
    stats: dict[str, object] = field(default_factory=dict)
    finished: bool = True

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_labels.shape[0])

    @property
    def is_linear(self) -> bool:
        """True when there is exactly one cluster per label (the labels are linearly separable); False for an
        unfinished fit, which has not decided it."""
        return self.finished and self.n_clusters == self.n_labels

    def members(self, k: int) -> np.ndarray:
        """Row indices (int64, ascending) of cluster ``k``."""
        return np.flatnonzero(self.assignment == k)
