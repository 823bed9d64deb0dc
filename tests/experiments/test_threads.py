"""Every job runs with the run context's torch thread count, whatever the caller's count was."""

from __future__ import annotations

import pytest
import torch

from tuneprobe.experiments.execute import RunContext
from tuneprobe.experiments.plan import make_job
from tuneprobe.experiments.results import make_row
from tuneprobe.experiments.runner import record_job, torch_threads


@pytest.mark.parametrize("threads", [1, 2])
def test_record_job_runs_with_the_context_thread_count(tmp_path, threads):
    seen: list[int] = []

    def fake_run(job, ctx):
        seen.append(torch.get_num_threads())
        return [make_row(analysis="models", metric="n_layers", value=1.0, model="m")]

    job = make_job("models", "models table m", {"model": "m", "threads-test": threads})
    ambient = 3 if threads != 3 else 4
    with torch_threads(ambient):
        info = record_job(job, RunContext(results=str(tmp_path), threads=threads), run=fake_run)
        assert torch.get_num_threads() == ambient  # restored
    assert info["executed"] and seen == [threads]


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"), torch_threads(0):
        pass
