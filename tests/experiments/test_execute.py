"""Job bodies on hand-made DirectProbe cells (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from tuneprobe.experiments.execute import RunContext, run_job
from tuneprobe.experiments.plan import make_job


def _cells(ctx: RunContext, n_labels: int) -> dict[str, list[str]]:
    """Saved cells of one series (checkpoints 0 and 5) at layers 1 and 2; returns layer -> cell ids."""
    from tuneprobe.geometry.cells import CellKey, run_directprobe_cell

    rng = np.random.default_rng(0)
    labels = [f"l{i}" for i in range(n_labels)]
    y = np.repeat(np.arange(n_labels), 6)
    out: dict[str, list[str]] = {}
    for layer in (1, 2):
        for step in (0, 5):
            X = rng.normal(size=(len(y), 4)) + 4.0 * y[:, None]  # well separated clouds
            tuned = "t" if step else ""
            key = CellKey("m", tuned, step, layer, "task", "train", 0, "real")
            cell_id = f"cell{n_labels}-{layer}-{step}"
            run_directprobe_cell(key, X, y, labels).save(ctx.cell_path(cell_id))
            out.setdefault(str(layer), []).append(cell_id)
    return out


@pytest.mark.parametrize(("n_labels", "expect_rows"), [(2, False), (3, True)])
def test_centroid_paths_needs_three_labels(tmp_path, n_labels: int, expect_rows: bool):
    ctx = RunContext(results=str(tmp_path))
    layers = _cells(ctx, n_labels)
    job = make_job("centroid_paths", "paths", {"layers": layers})
    rows = run_job(job, ctx)
    assert bool(rows) == expect_rows
    if rows:
        pcs = [r for r in rows if r["metric"] == "pc1"]
        assert {r["checkpoint"] for r in pcs} == {0, 5} and {r["layer"] for r in pcs} == {1, 2}
        assert {r["tuned_on"] for r in rows} == {"t"}  # the series' run, checkpoint 0 included
