"""DirectProbe: label-pure clusters with disjoint convex hulls, hull distances, nearest-hull prediction.

Names are imported lazily: ``import tuneprobe.directprobe`` (e.g. by the CLI) loads neither scipy nor numba.
"""

from __future__ import annotations

from tuneprobe._lazy import lazy_exports

_EXPORTS = {
    "DirectProbe": "tuneprobe.directprobe.cluster",
    "DuplicateLabelsError": "tuneprobe.directprobe.cluster",
    "Clustering": "tuneprobe.directprobe.clustering",
    "cluster_distance_matrix": "tuneprobe.directprobe.hulls",
    "cluster_distances": "tuneprobe.directprobe.hulls",
    "hull_distance": "tuneprobe.directprobe.hulls",
    "point_hull_distance": "tuneprobe.directprobe.hulls",
    "point_hull_distances": "tuneprobe.directprobe.hulls",
    "label_distances": "tuneprobe.directprobe.metrics",
    "label_statistics": "tuneprobe.directprobe.metrics",
    "pearson_similarity": "tuneprobe.directprobe.metrics",
    "spatial_similarity": "tuneprobe.directprobe.metrics",
    "intra_accuracy": "tuneprobe.directprobe.predict",
    "nearest_hull_predict": "tuneprobe.directprobe.predict",
    "nearest_neighbor_predict": "tuneprobe.directprobe.predict",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
