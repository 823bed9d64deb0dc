"""``tuneprobe finetune`` on a JSONL task and a tiny model directory."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tuneprobe.cli import app
from tuneprobe.finetune import list_snapshots
from tuneprobe.finetune.commands import default_out
from tuneprobe.tasks import write_jsonl


def test_finetune_command(tiny_dir: Path, token_split, tmp_path: Path) -> None:
    write_jsonl(token_split, tmp_path / "toy" / "train.jsonl")
    out = tmp_path / "run"
    args = [
        "finetune",
        f"jsonl:{tmp_path / 'toy'}",
        "--model",
        str(tiny_dir),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--snapshots",
        "every:2",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "3 updates (3/epoch, warm-up 1), fresh run" in r.output
    assert [s.step for s in list_snapshots(out)] == [0, 2, 3]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "resumed from update 3" in again.output
    bad = CliRunner().invoke(app, [*args, "--lr", "1e-2"])
    assert bad.exit_code != 0


def test_default_out() -> None:
    assert default_out("ps-role", "/a/b/model/", 3) == Path("runs/finetune/ps-role-model-seed3")
