"""Benchmark: a whole grid (default: configs/quickstart.toml) with the local executor and with the Dask
executor (a LocalCluster of ``--workers`` processes), in the same run, from scratch on both sides.

Each side runs ``tuneprobe run CONFIG --results R --threads T [--executor dask --workers W]`` as its own
process under ``/usr/bin/time -v``, with its own empty results directory and its own empty representation
cache (``TUNEPROBE_CACHE``), so neither side reuses the other's fine-tuning, extraction or cells. Reports
wall and CPU seconds (user + system, the Dask workers included: they are waited-for descendants), the
largest single process's peak RSS, the speed-up (local wall / Dask wall) and whether the two results tables
(``results.csv`` and ``results.parquet``) are byte-identical; where they are not, how many rows differ.

    TUNEPROBE_DATA=../shared/data python bench/dask_quickstart.py [--config configs/quickstart.toml]
        [--workers 2] [--threads 1] [--order local,dask] [--keep DIR]

The JSON goes to ``bench/out/dask_quickstart.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("results.csv", "results.parquet")


def _time_v(stderr: str) -> dict[str, float]:
    """Wall, user, system seconds and peak RSS (MB) from GNU time's ``-v`` report."""
    out: dict[str, float] = {}
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", stderr)
    if m:
        parts = [float(p) for p in m.group(1).split(":")]
        out["wall_s"] = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    for key, name in (("user_s", "User time (seconds)"), ("sys_s", "System time (seconds)")):
        m = re.search(re.escape(name) + r": (\S+)", stderr)
        if m:
            out[key] = float(m.group(1))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if m:
        out["peak_rss_mb"] = int(m.group(1)) / 1024
    return out


def run_side(name: str, config: Path, root: Path, threads: int, workers: int) -> dict[str, object]:
    """One ``tuneprobe run`` from scratch under ``/usr/bin/time -v``: its measurements and results dir."""
    results, cache = root / name / "results", root / name / "cache"
    cache.mkdir(parents=True)
    cmd = [
        "/usr/bin/time", "-v", sys.executable, "-c", "from tuneprobe.cli import main; main()",
        "run", str(config), "--results", str(results), "--threads", str(threads), "--no-progress",
    ]  # fmt: skip
    if name == "dask":
        cmd += ["--executor", "dask", "--workers", str(workers)]
    env = dict(os.environ, TUNEPROBE_CACHE=str(cache), HF_HUB_OFFLINE="1")
    print(f"[{name}] {' '.join(cmd[2:])}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (root / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        log = root / f"{name}.log"
        raise SystemExit(f"[{name}] failed (rc {proc.returncode}); log: {log}\n{proc.stderr[-3000:]}")
    m = _time_v(proc.stderr)
    m.setdefault("wall_s", wall)
    m["cpu_s"] = m.get("user_s", 0.0) + m.get("sys_s", 0.0)
    print(
        f"[{name}] wall {m['wall_s']:.1f} s, CPU {m['cpu_s']:.1f} s, "
        f"peak RSS {m.get('peak_rss_mb', float('nan')):.0f} MB",
        flush=True,
    )
    return {"name": name, "results": str(results), **m}


def compare_tables(a: Path, b: Path) -> dict[str, object]:
    """Byte identity of each table, and the number of differing rows of the CSV where they differ."""
    import pandas as pd

    out: dict[str, object] = {}
    for t in TABLES:
        out[f"{t}_identical"] = (a / t).read_bytes() == (b / t).read_bytes()
    da, db = pd.read_csv(a / "results.csv"), pd.read_csv(b / "results.csv")
    out["rows"] = [len(da), len(db)]
    if len(da) == len(db) and not out["results.csv_identical"]:
        diff = ~((da == db) | (da.isna() & db.isna())).all(axis=1)
        out["rows_differing"] = int(diff.sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/quickstart.toml"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per job, both sides")
    ap.add_argument("--order", default="local,dask", help="which side runs first")
    ap.add_argument("--keep", type=Path, default=None, help="keep both sides' results here")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("out") / "dask_quickstart.json")
    args = ap.parse_args()
    if not os.environ.get("TUNEPROBE_DATA"):
        raise SystemExit("set TUNEPROBE_DATA to the data directory (e.g. ../shared/data)")
    root = args.keep or Path(tempfile.mkdtemp(prefix="tp-dask-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    config = args.config.resolve()
    load_before = os.getloadavg()
    sides = {}
    for name in args.order.split(","):
        sides[name] = run_side(name, config, root, args.threads, args.workers)
    cmp = compare_tables(Path(sides["local"]["results"]), Path(sides["dask"]["results"]))
    speedup = float(sides["local"]["wall_s"]) / float(sides["dask"]["wall_s"])
    report = {
        "config": str(args.config),
        "workers": args.workers,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "sides": sides,
        "tables": cmp,
        "speedup_wall": speedup,
    }
    print(f"speed-up (local wall / dask wall) with {args.workers} workers: {speedup:.2f}x")
    print(f"tables: {cmp}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
