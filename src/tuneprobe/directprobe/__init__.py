from tuneprobe.directprobe.cluster import DirectProbe, DuplicateLabelsError  # noqa: F401
from tuneprobe.directprobe.hulls import (  # noqa: F401
    cluster_distance_matrix,
    cluster_distances,
    hull_distance,
    point_hull_distance,
    point_hull_distances,
)
from tuneprobe.directprobe.metrics import (  # noqa: F401
    label_distances,
    label_statistics,
    pearson_similarity,
    spatial_similarity,
)
from tuneprobe.directprobe.predict import (  # noqa: F401
    intra_accuracy,
    nearest_hull_predict,
    nearest_neighbor_predict,
)
