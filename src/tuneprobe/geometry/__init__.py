"""Comparing representations: DirectProbe cells and the paper's analyses on them (PAPER.md §7, §8).

:mod:`tuneprobe.geometry.cells` turns one labelled representation into a :class:`DirectProbeCell` (fit, hull
distances, label statistics, centroids, prediction); :mod:`tuneprobe.geometry.analyses` turns cells into tidy
result rows (train/test similarity, similarity to the original, ``outside_min`` changes, centroid paths and
shifts, model and task tables). Names are imported lazily.
"""

from __future__ import annotations

from tuneprobe._lazy import lazy_exports

_EXPORTS = {
    "CellKey": "tuneprobe.geometry.cells",
    "DirectProbeCell": "tuneprobe.geometry.cells",
    "effective_dimension": "tuneprobe.geometry.cells",
    "permute_labels": "tuneprobe.geometry.cells",
    "run_directprobe_cell": "tuneprobe.geometry.cells",
    "centroid_paths": "tuneprobe.geometry.analyses",
    "centroid_shift": "tuneprobe.geometry.analyses",
    "closest_triple": "tuneprobe.geometry.analyses",
    "extreme_labels": "tuneprobe.geometry.analyses",
    "linear_cka": "tuneprobe.geometry.analyses",
    "model_rows": "tuneprobe.geometry.analyses",
    "outside_min_change": "tuneprobe.geometry.analyses",
    "pca_2d": "tuneprobe.geometry.analyses",
    "similarity_to_original": "tuneprobe.geometry.analyses",
    "task_rows": "tuneprobe.geometry.analyses",
    "train_test_similarity": "tuneprobe.geometry.analyses",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
