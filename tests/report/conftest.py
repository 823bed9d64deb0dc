"""Shared fixture: the report of the synthetic results table (built once per session)."""

from __future__ import annotations

import pytest

from tuneprobe.experiments.results import write_rows
from tuneprobe.report.build import Report, build_report

from .synthetic import synthetic_rows


@pytest.fixture(scope="session")
def synthetic_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """``build_report`` of :func:`synthetic_rows` written as Parquet."""
    d = tmp_path_factory.mktemp("run")
    write_rows(synthetic_rows(), d / "results.parquet")
    return build_report(d)
