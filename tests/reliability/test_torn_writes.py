"""A SIGKILL between an atomic writer's temporary write and its rename, then the same write again: the target
is complete and no temporary file of the killed writer is left beside it. (Also a corrupted cache file met
through the command line: detected by its checksum and recomputed.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROWS = "[make_row(analysis='directprobe', metric='n_clusters', value=3.0, model='m', task='t', layer=1)]"

WRITERS = {
    "store.arrays.atomic_write_text": (
        "from tuneprobe.store.arrays import atomic_write_text as w",
        "w({path!r}, 'complete\\n')",
        "summary.json",
    ),
    "experiments.results.write_rows": (
        "from tuneprobe.experiments.results import make_row, write_rows as w",
        "w(" + ROWS + ", {path!r})",
        "results.parquet",
    ),
    "geometry.cells.DirectProbeCell.save": (
        "import numpy as np\n"
        "from tuneprobe.geometry.cells import CellKey, run_directprobe_cell\n"
        "X = np.array([[0.0, 0], [1, 0], [0, 1], [1, 1], [3, 0], [4, 0], [3, 1], [4, 1]])\n"
        "key = CellKey('m', '', 0, 1, 't', 'train')\n"
        "w = run_directprobe_cell(key, X, np.repeat([0, 1], 4), ['a', 'b']).save",
        "w({path!r})",
        "cell.npz",
    ),
    "encoders.commands.export_layer": (
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from tuneprobe.encoders.commands import export_layer\n"
        "from tuneprobe.store.representations import Representations\n"
        "X = np.ones((1, 2, 3), np.float32)\n"
        "rep = Representations(X, np.array([0, 1]), ['a', 'b'], ['e0', 'e1'], [6], {})",
        "export_layer(rep, 6, Path({path!r}))",
        "x.npy",
    ),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_killed_between_write_and_rename(writer: str, tmp_path: Path, h: SimpleNamespace) -> None:
    imp, call, name = WRITERS[writer]
    path = str(tmp_path / name)
    kill_on_rename = "import os, signal\nos.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)"
    script = f"{imp}\n{kill_on_rename}\n{call.format(path=path)}\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], env=h.subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not Path(path).exists() and len(list(tmp_path.iterdir())) == 1  # the torn temporary file
    proc = subprocess.run(  # the same write again, not killed
        [sys.executable, "-c", f"{imp}\n{call.format(path=path)}"], env=h.subprocess_env(), timeout=300
    )
    assert proc.returncode == 0
    assert (tmp_path / name).is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_corrupted_cache_file_via_cli(tmp_path: Path, tiny_dir: Path, h: SimpleNamespace) -> None:
    """``tuneprobe extract`` three times: computed, then from the cache, then — after bytes of the cached
    matrix were flipped — the checksum mismatch is reported and the vectors recomputed, equal to the first.
    The third run is the real console script in a subprocess, so the warning is checked on its stderr."""
    import numpy as np

    task = h.write_task(tmp_path / "task", h.length_label)
    cache = tmp_path / "cache"
    args = ["extract", f"jsonl:{task}", "--model", tiny_dir, "--cache-dir", cache, "--device", "cpu"]
    args += ["--no-progress", "--out"]
    code, first = h.cli([*args, tmp_path / "a.npy"])
    assert code == 0 and "computed in" in first, first
    code, second = h.cli([*args, tmp_path / "b.npy"])
    assert code == 0 and "cache in" in second, second
    (cached,) = cache.rglob("L*.npy")
    raw = bytearray(cached.read_bytes())
    raw[-64:-60] = b"\xff\xff\xff\xff"  # inside the last layer's data
    cached.write_bytes(bytes(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "tuneprobe.cli", *map(str, args), str(tmp_path / "c.npy")],
        env=h.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "computed in" in proc.stdout, proc.stdout + proc.stderr
    assert "checksum mismatch" in proc.stderr and "recomputed" in proc.stderr, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), np.load(tmp_path / "a.npy"))
    code, fourth = h.cli([*args, tmp_path / "d.npy"])
    assert code == 0 and "cache in" in fourth, fourth
    assert h.partial_files(cache) == []
