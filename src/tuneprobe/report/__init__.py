"""The report (PAPER.md section 7): tables, figures and the claims section, drawn from result rows only.

- :func:`build_report`: ``RESULTS_DIR/results.parquet|csv`` -> ``report.md``, a self-contained
  ``report.html``, ``tables/*.csv`` and ``figures/*.png|svg``.
- :mod:`tuneprobe.report.tables`, :mod:`tuneprobe.report.figures`, :mod:`tuneprobe.report.claims`: one
  function per table, figure and finding, each taking the results frame.

Names are imported lazily, so ``import tuneprobe.report`` (e.g. by the CLI) does not load pandas or
matplotlib.
"""

from __future__ import annotations

from tuneprobe._lazy import lazy_exports

_EXPORTS = {
    "Report": "tuneprobe.report.build",
    "build_report": "tuneprobe.report.build",
    "load_results": "tuneprobe.report.data",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
