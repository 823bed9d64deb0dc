#!/usr/bin/env python
"""Scaling of ``DirectProbe.fit`` on EWT POS train (last layer of the default model): time and peak memory.

For each N (default 5k, 25k, 50k, 100k and the full 204,577 words) a seeded, label-stratified subsample is
clustered in a fresh subprocess (so its peak RSS is its own), with a wall-clock limit (default 60 minutes).
The child reports wall and CPU seconds, ``ru_maxrss``, the number of clusters and the fit's counters; the
parent prints one line per N as it finishes, then the curve as a table, and writes everything as JSON.

Vectors: ``tuneprobe.extract("pos", corpus="ewt", split="train", layers=[-1])`` (cached by the store), or
``--vectors X.npy --labels y.npz`` (an ``[n, d]`` float array and an npz with ``y``) for vectors made
elsewhere.

Usage::

    python bench/directprobe_scaling.py --out /tmp/scaling.json
    python bench/directprobe_scaling.py --sizes 5000 25000 --vectors X.npy --labels y.npz
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FULL = 204_577


def stratified_subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted row indices ``[n]``: per-label counts proportional to ``y`` (largest remainder), seeded."""
    if n >= y.size:
        return np.arange(y.size)
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(y, return_counts=True)
    quota = counts * n / y.size
    take = np.floor(quota).astype(int)
    rest = n - int(take.sum())
    order = np.lexsort((labels, -(quota - take)))
    take[order[:rest]] += 1
    rows = [rng.permutation(np.flatnonzero(y == lab))[:k] for lab, k in zip(labels, take, strict=True)]
    return np.sort(np.concatenate(rows))


def load_vectors(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.vectors:
        X = np.load(args.vectors, mmap_mode="r")
        y = np.load(args.labels)["y"]
        return X, y
    import tuneprobe

    rep = tuneprobe.extract("pos", model="default", split="train", layers=[-1], corpus="ewt", progress=True)
    return np.asarray(rep.X[0]), np.asarray(rep.y)


def child(args: argparse.Namespace) -> None:
    """Fit one subsample (rows in ``args.rows``) and print a JSON line."""
    from tuneprobe.directprobe import DirectProbe

    X = np.load(args.x_file, mmap_mode="r")
    y = np.load(args.y_file)
    t0, c0 = time.perf_counter(), time.process_time()
    cl = DirectProbe(progress=args.progress, max_seconds=args.max_seconds).fit(np.asarray(X), y)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    st = cl.stats
    per_label = np.bincount(cl.cluster_labels)
    out: dict[str, Any] = {
        "n": int(y.size),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "n_clusters": cl.n_clusters,
        "n_labels": cl.n_labels,
        "k_star": st.get("k_star"),
        "finished": cl.finished,
        "stopped_in": st.get("stopped_in"),
        "pairs_left": st.get("pairs_left"),
        # every pair of same-label clusters is popped and rejected by G: each needs its own overlap proof
        "same_label_cluster_pairs": int((per_label * (per_label - 1) // 2).sum()),
        "clusters_largest_label": int(per_label.max()) if per_label.size else 0,
        "forward_pops": st.get("forward_pops"),
        "forward_accepted": st.get("forward_accepted"),
        "forward_rejected": st.get("forward_rejected"),
        "forward_start_clusters": st.get("forward_start_clusters"),
        "label_pairs_certified": st.get("label_pairs_certified"),
        "seconds": {k: v for k, v in st.items() if k.startswith("seconds")},
        "separability": st.get("separability"),
        "duplicates": {k: v for k, v in st["duplicates"].items() if k != "examples"},
    }
    print("RESULT " + json.dumps(out), flush=True)


def _vmhwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    """utime + stime of a live process, from /proc."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _last_progress(log: Path) -> str:
    """The last progress-bar state written to the child's stderr log."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    parts = [p.strip() for p in text.replace("\r", "\n").splitlines() if p.strip()]
    return parts[-1][-300:] if parts else ""


def run_child(cmd: list[str], log: Path, timeout: float, n: int) -> dict[str, Any]:
    """Run one size; stderr (progress) goes to ``log``. On timeout: the peak RSS seen so far (VmHWM, polled
    every 2 s) and the last progress line."""
    t0 = time.perf_counter()
    hwm = 0.0
    with log.open("w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=dict(os.environ))
        while p.poll() is None and time.perf_counter() - t0 < timeout:
            hwm = max(hwm, _vmhwm_mb(p.pid) or 0.0)
            time.sleep(2.0)
        if p.poll() is None:
            cpu = _cpu_s(p.pid)
            p.kill()
            p.wait()
            return {
                "n": n,
                "error": f"timeout after {timeout:.0f} s",
                "cpu_s_seen": None if cpu is None else round(cpu, 1),
                "peak_rss_mb_seen": round(hwm, 1),
                "last_progress": _last_progress(log),
            }
        out = p.stdout.read() if p.stdout else ""
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if line:
        return json.loads(line[-1][7:])
    return {"n": n, "error": log.read_text(errors="replace")[-2000:], "returncode": p.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 25000, 50000, 100000, FULL])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per size (default 60 minutes)")
    ap.add_argument("--timeouts", type=float, nargs="+", help="seconds for each of --sizes")
    ap.add_argument("--vectors", help="[n, d] .npy instead of tuneprobe.extract")
    ap.add_argument("--labels", help=".npz with y, with --vectors")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument(
        "--budget",
        action="store_true",
        help="give each fit its time limit as DirectProbe(max_seconds=...) (minus 30 s), so that it stops "
        "cleanly and reports the phase it was in and the same-label pairs left; the limit + 15 min stays "
        "as a hard kill for an LP that overruns",
    )
    ap.add_argument("--max-seconds", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--x-file", help=argparse.SUPPRESS)
    ap.add_argument("--y-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    X, y = load_vectors(args)
    print(f"vectors: {X.shape} labels: {np.unique(y).size}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="dp-scaling-") as tmp:
        for n in args.sizes:
            rows = stratified_subsample(y, n, args.seed)
            xf, yf = Path(tmp) / f"X{n}.npy", Path(tmp) / f"y{n}.npy"
            np.save(xf, np.asarray(X[rows], dtype=np.float32))
            np.save(yf, np.asarray(y[rows]))
            cmd = [sys.executable, __file__, "--child", "--x-file", str(xf), "--y-file", str(yf)]
            if args.progress:
                cmd.append("--progress")
            log = Path(tmp) / "log"
            if args.out:
                log = Path(args.out).with_name(f"{Path(args.out).stem}_N{n}.log")
            t0 = time.perf_counter()
            limit = args.timeouts[args.sizes.index(n)] if args.timeouts else args.timeout
            if args.budget:
                cmd += ["--max-seconds", str(max(1.0, limit - 30))]
                limit += 900
            res = run_child(cmd, log, limit, int(rows.size))
            res["elapsed_s"] = round(time.perf_counter() - t0, 1)
            res["loadavg_1m"] = round(os.getloadavg()[0], 1)
            results.append(res)
            print(json.dumps(res), flush=True)
            xf.unlink()
            yf.unlink()
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\n{'N':>8} {'wall s':>9} {'cpu s':>9} {'peak RSS MB':>12} {'clusters':>9} {'k*':>8}  finished")
    for r in results:
        if "error" in r:
            print(f"{r['n']:>8} {'-':>9} {'-':>9} {'-':>12} {'-':>9} {'-':>8}  {r['error'][:80]}")
        else:
            print(
                f"{r['n']:>8} {r['wall_s']:>9} {r['cpu_s']:>9} {r['maxrss_mb']:>12} {r['n_clusters']:>9} "
                f"{str(r['k_star']):>8}  "
                + ("yes" if r["finished"] else f"no: in {r['stopped_in']}, {r['pairs_left']} pairs left")
            )


if __name__ == "__main__":
    main()
