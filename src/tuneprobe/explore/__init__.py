"""``tuneprobe explore``: one self-contained, offline HTML page to look at the embedding space of a task
across fine-tuning snapshots and layers (projection, Mapper graph, hull distances, examples on demand).

- :mod:`tuneprobe.explore.data`: the inputs of a finished run (DirectProbe cells, cached representations,
  the examples' sentences) as a :class:`~tuneprobe.explore.data.Series`;
- :mod:`tuneprobe.explore.views`: what the page shows, computed in Python (PCA projections, Mapper graphs);
- :mod:`tuneprobe.explore.page`: the page itself (plotly.js from the ``plotly`` package, data as JSON).
"""

from tuneprobe.explore.data import HeldOut, Series, SnapshotLayer, load_series
from tuneprobe.explore.page import build_page, write_explorer

__all__ = ["HeldOut", "Series", "SnapshotLayer", "build_page", "load_series", "write_explorer"]
