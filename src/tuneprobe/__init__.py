"""tuneprobe: how does fine-tuning change the representation space of a pre-trained encoder?

Pipeline (data flows one way): tasks -> encoders -> store -> probes / directprobe / geometry -> report.
"""

__version__ = "0.1.0"
from tuneprobe.encoders.extract import extract  # noqa: E402,F401  (lazy: torch loads only on a cache miss)
