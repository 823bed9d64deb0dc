"""Settings, the learning-rate schedule and the snapshot schedule."""

from __future__ import annotations

import math

import pytest

from tuneprobe.errors import UnknownNameError
from tuneprobe.finetune.config import FinetuneConfig, lr_factor, parse_snapshots, warmup_steps


@pytest.mark.parametrize("total", [1, 7, 10, 59, 590, 1713])
def test_warmup_is_ceil_of_ten_percent(total: int) -> None:
    assert warmup_steps(total, 0.1) == math.ceil(total / 10)


def test_warmup_exact_products_do_not_round_up() -> None:
    assert warmup_steps(590, 0.1) == 59  # 0.1 * 590 = 59.000000000000004 in floating point
    assert warmup_steps(250, 0.1) == 25


def test_lr_schedule_linear_warmup_then_linear_decay() -> None:
    total, warm = 59, warmup_steps(59, 0.1)
    assert warm == 6
    f = [lr_factor(k, total, warm) for k in range(total + 1)]
    assert f[0] == 0.0  # HF get_linear_schedule_with_warmup: the first update runs at lr 0
    assert f[: warm + 1] == pytest.approx([k / warm for k in range(warm + 1)])
    assert f[warm] == 1.0 and max(f) == 1.0
    assert f[warm:] == pytest.approx([(total - k) / (total - warm) for k in range(warm, total + 1)])
    assert f[-1] == 0.0
    diffs = [b - a for a, b in zip(f[warm:], f[warm + 1 :], strict=False)]
    assert diffs == pytest.approx([-1 / (total - warm)] * (total - warm))


def test_no_warmup() -> None:
    assert warmup_steps(10, 0.0) == 0
    assert lr_factor(0, 10, 0) == 1.0


def test_paper_epochs_by_depth() -> None:
    assert FinetuneConfig().resolved_epochs(6) == 10
    assert FinetuneConfig().resolved_epochs(12) == 3
    assert FinetuneConfig(epochs=1).resolved_epochs(12) == 1


def test_defaults_are_the_paper_recipe() -> None:
    c = FinetuneConfig()
    assert (c.lr, c.batch_size, c.warmup, c.weight_decay, c.seed) == (3e-4, 32, 0.1, 0.0, 0)


@pytest.mark.parametrize(
    ("spec", "total", "expected"),
    [
        ("0,10,50", 59, [0, 10, 50, 59]),
        ("10, 50", 59, [0, 10, 50, 59]),
        ("0,10,500", 59, [0, 10, 59]),
        ([5, 3], 8, [0, 3, 5, 8]),
        ("every:25", 59, [0, 25, 50, 59]),
        ("every:3", 9, [0, 3, 6, 9]),
        ("log:4", 1000, [0, 1, 10, 100, 1000]),
        ("log:1", 5, [0, 1, 5]),
        (None, 59, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48, 51, 54, 57, 59]),
        ("paper", 40, list(range(0, 41, 2))),
        ("0", 1, [0, 1]),
    ],
)
def test_parse_snapshots(spec, total: int, expected: list[int]) -> None:
    assert parse_snapshots(spec, total) == expected


def test_log_snapshots_are_log_spaced_and_distinct() -> None:
    steps = parse_snapshots("log:10", 590)
    assert steps[0] == 0 and steps[-1] == 590 and steps == sorted(set(steps))
    inner = steps[1:]
    ratios = [b / a for a, b in zip(inner, inner[1:], strict=False)]
    assert max(ratios) / min(ratios) < 2.5


@pytest.mark.parametrize("spec", ["log:0", "every:0", "every:x", "1,a", "-1", "bogus:3"])
def test_parse_snapshots_rejects(spec: str) -> None:
    with pytest.raises(UnknownNameError):
        parse_snapshots(spec, 10)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(UnknownNameError):
        FinetuneConfig(warmup=1.5)
    with pytest.raises(UnknownNameError):
        FinetuneConfig(batch_size=0)
    with pytest.raises(UnknownNameError):
        FinetuneConfig(sentence_head="mlp")
