"""Size and speed of the explorer page (issue 6): page bytes and the time of a snapshot-slider step in
Chromium.

Three ways to get a page:

- ``--page FILE``: an existing page;
- ``--results DIR --task T``: build it with ``tuneprobe explore DIR --task T --out FILE`` as a fresh process,
  timed (wall, and the child's user + system CPU time);
- ``--synthetic``: a ps-role-sized synthetic series (default 4,285 fitted + 457 held-out points, 46 labels
  with a skewed label distribution, 384 dims, 7 layers x 11 snapshots), built in this process with the
  real page code (PCA, Mapper, nearest-hull predictions). Its DirectProbe cells are *not* fitted: every label
  is one cluster (clusters = label ids) and the label distances are centroid distances, which is enough to
  exercise the page (the page cost depends on the number of points, nodes and labels, not on the values).

The page is opened in headless Chromium (Debian's ``/usr/bin/chromium`` through the ``playwright``
package, no browser download) at 1400 x 900. After a warm-up pass over every snapshot of the shown layer
(decoding happens on first use; ``--cold`` skips it), the slider is moved ``--steps`` times (back and forth
over every snapshot, default 22). One step is timed in the page with ``performance.now()``: from just before
the slider's ``input`` event is dispatched until the next animation frame after the update has run, plus a
zero-delay task (so the frame's rendering work is counted too). The script prints the page size, the build
times, and the median and max step time, the per-view split of the synchronous part
(``window.tuneprobeExplorer.state.timings``), and writes ``bench/out/explore.json``.

Usage::

    python bench/explore.py --synthetic [--keep /tmp/explore-synthetic.html]
    python bench/explore.py --results results/psrole-explorer --task ps-role
    python bench/explore.py --page results/psrole-explorer/explore/ps-role.html [--layer 6] [--steps 30]
        [--basis umap] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def synthetic_series(
    n: int = 4285,
    n_held: int = 457,
    n_labels: int = 46,
    dim: int = 384,
    steps: tuple[int, ...] = tuple(range(0, 21, 2)),
    layers: tuple[int, ...] = tuple(range(7)),
    seed: int = 0,
):
    """A ps-role-sized :class:`tuneprobe.explore.data.Series` (module docstring): label clouds that separate
    more with every snapshot and layer; sentences of 8 words from a 2,000-word vocabulary."""
    from tuneprobe.explore.data import HeldOut, Series, SnapshotLayer
    from tuneprobe.geometry.cells import CellKey, DirectProbeCell

    rng = np.random.default_rng(seed)
    share = 1.0 / np.arange(1, n_labels + 1) ** 1.1
    share /= share.sum()
    y = np.sort(rng.choice(n_labels, size=n, p=share))
    y[:n_labels] = np.arange(n_labels)  # every label present
    hy = rng.choice(n_labels, size=n_held, p=share)
    labels = [f"p.Label{k}" for k in range(n_labels)]
    vocab = [f"w{k}" for k in range(2000)]
    base, hbase = rng.normal(size=(n, dim)), rng.normal(size=(n_held, dim))
    direction = rng.normal(size=(n_labels, dim)) * 0.3
    cells, held_X = {}, {}
    for si, step in enumerate(steps):
        for layer in layers:
            scale = 0.5 + 0.2 * si + 0.3 * layer
            X = (base + direction[y] * scale).astype(np.float32)
            H = (hbase + direction[hy] * scale).astype(np.float32)
            C = np.stack([X[y == k].mean(axis=0) for k in range(n_labels)]).astype(np.float64)
            D = np.sqrt(((C[:, None] - C[None]) ** 2).sum(-1))
            off = D + np.diag(np.full(n_labels, np.inf))
            counts = np.bincount(y, minlength=n_labels)
            cell = DirectProbeCell(
                key=CellKey("synthetic", "synthetic", step, layer, "synthetic", "train"),
                labels=labels,
                n_points=n,
                n_clusters=n_labels,
                is_linear=True,
                clusters=y.copy(),
                label_distance=D,
                label_distance_min=D,
                outside_min=off.min(axis=1),
                inside_mean=np.zeros(n_labels),
                inside_max=np.zeros(n_labels),
                n_points_label=counts,
                n_clusters_label=np.ones(n_labels, dtype=np.int64),
                centroids=C,
                effective_dimension=dim,
                predictions={},
                seconds={},
                dim=dim,
            )
            cells[(step, layer)] = SnapshotLayer(X, cell)
            held_X[(step, layer)] = H
    held = HeldOut(
        split="test",
        y=hy.astype(np.int64),
        example_ids=[f"test{j}" for j in range(n_held)],
        sentences=[tuple(rng.choice(vocab, size=8)) for _ in range(n_held)],
        sentence=np.arange(n_held, dtype=np.int64),
        units=[(int(rng.integers(8)),) for _ in range(n_held)],
        X=held_X,
    )
    return Series(
        task="synthetic-ps-role",
        split="train",
        model="synthetic",
        tuned_on="synthetic-ps-role",
        seed=0,
        labels=labels,
        y=y.astype(np.int64),
        example_ids=[f"ex{k}" for k in range(n)],
        sentences=[tuple(rng.choice(vocab, size=8)) for _ in range(n)],
        sentence=np.arange(n, dtype=np.int64),
        units=[(int(rng.integers(8)),) for _ in range(n)],
        steps=list(steps),
        layers=list(layers),
        cells=cells,
        held_out=held,
    )


def build_synthetic(out: Path) -> dict:
    """Write the synthetic page to ``out``; returns build seconds (wall, this process's CPU)."""
    from tuneprobe.explore.page import write_explorer

    t0, c0 = time.perf_counter(), time.process_time()
    series = synthetic_series()
    t1, c1 = time.perf_counter(), time.process_time()
    info = write_explorer(series, out, log=lambda s: print(s, file=sys.stderr) if "layer 0:" in s else None)
    return {
        "series_wall_s": t1 - t0,
        "series_cpu_s": c1 - c0,
        "page_wall_s": time.perf_counter() - t1,
        "page_cpu_s": time.process_time() - c1,
        "n_points": info["n_points"],
    }


def build_results(results: str, task: str, out: Path) -> dict:
    """``tuneprobe explore RESULTS --task T --out OUT`` as a fresh process: wall and CPU seconds."""
    exe = shutil.which("tuneprobe") or "tuneprobe"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([exe, "explore", results, "--task", task, "--out", str(out)], check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"explore_wall_s": wall, "explore_cpu_s": cpu}


STEP_JS = """async ([n, warm, layer, basis]) => {
  const E = window.tuneprobeExplorer, S = E.state, D = E.data, el = document.getElementById('step');
  if (basis !== null) { const b = document.getElementById('basis');
    b.value = basis; b.dispatchEvent(new Event('change')); }
  if (layer !== null) { const ls = document.getElementById('layer');
    ls.value = String(D.layers.indexOf(layer)); ls.dispatchEvent(new Event('change')); }
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const m = D.steps.length, seq = [];
  for (let i = 0; seq.length < n; i++) { const k = i % (2 * m - 2); seq.push(k < m ? k : 2 * m - 2 - k); }
  if (warm) for (let k = 0; k < m; k++) {
    el.value = String(k); el.dispatchEvent(new Event('input')); await frame(); }
  await frame();
  const times = [], sync = [];
  for (const k of seq) {
    const before = S.timings.length;
    const t0 = performance.now();
    el.value = String(k); el.dispatchEvent(new Event('input'));
    await frame();
    times.push(performance.now() - t0);
    sync.push(S.timings.slice(before));
  }
  return { times: times, sync: sync, layer: D.layers[S.li], basis: S.basis, n_snapshots: m };
}"""


def measure(
    page_path: Path,
    steps: int,
    layer: int | None,
    warm: bool,
    screenshot: Path | None,
    basis: str | None = None,
) -> dict:
    """Open the page in headless Chromium and time ``steps`` slider steps (module docstring)."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"], timeout=120_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(300_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.wait_for_selector("#mapper svg .node")
            load_s = time.perf_counter() - t0
            res = page.evaluate(STEP_JS, [steps, warm, layer, basis])
            if screenshot:
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    views: dict[str, list[float]] = {}
    for entries in res["sync"]:
        for t in entries:
            for k, v in t.items():
                if k not in ("step", "layer") and isinstance(v, int | float):
                    views.setdefault(k, []).append(v)
    return {
        "load_s": load_s,
        "layer": res["layer"],
        "basis": res["basis"],
        "n_snapshots": res["n_snapshots"],
        "step_ms": res["times"],
        "median_ms": statistics.median(res["times"]),
        "max_ms": max(res["times"]),
        "sync_median_ms": {k: statistics.median(v) for k, v in views.items()},
        "console_errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--page", type=Path, help="an existing explorer page")
    src.add_argument("--results", help="a results directory: build the page with `tuneprobe explore`")
    src.add_argument("--synthetic", action="store_true", help="build a ps-role-sized synthetic page")
    ap.add_argument("--task", default="ps-role", help="with --results: the task")
    ap.add_argument(
        "--keep", type=Path, help="where to write a built page (default: bench/out/explore-*.html)"
    )
    ap.add_argument("--steps", type=int, default=22, help="timed slider steps (>= 20)")
    ap.add_argument("--layer", type=int, default=None, help="layer to step through (default: the page's)")
    ap.add_argument("--basis", choices=["fixed", "own", "umap"], help="projection (default: the page's)")
    ap.add_argument("--cold", action="store_true", help="no warm-up pass (first visits decode data)")
    ap.add_argument("--json", type=Path, default=OUT / "explore.json")
    a = ap.parse_args()

    OUT.mkdir(exist_ok=True)
    report: dict = {"argv": sys.argv[1:], "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if a.page:
        page = a.page
    elif a.synthetic:
        page = a.keep or OUT / "explore-synthetic.html"
        report["build"] = build_synthetic(page)
    else:
        page = a.keep or OUT / f"explore-{a.task}.html"
        report["build"] = build_results(a.results, a.task, page)
    report["page"] = str(page)
    report["bytes"] = page.stat().st_size
    report["browser"] = measure(page, a.steps, a.layer, not a.cold, OUT / "explore-screenshot.png", a.basis)
    report["load_average"] = os.getloadavg()
    a.json.write_text(json.dumps(report, indent=1))
    b = report["browser"]
    print(f"page: {page}  {report['bytes'] / 1e6:.1f} MB ({report['bytes']:,} bytes)")
    for k, v in report.get("build", {}).items():
        print(f"build {k}: {v:.1f}" if isinstance(v, float) else f"build {k}: {v}")
    print(
        f"opened in {b['load_s']:.1f} s; layer {b['layer']}, {b['basis']} projection, "
        f"{b['n_snapshots']} snapshots"
    )
    print(
        f"slider step ({len(b['step_ms'])} steps, until the next frame): median {b['median_ms']:.1f} ms, "
        f"max {b['max_ms']:.1f} ms"
    )
    print(
        "synchronous part, median ms per view: "
        + ", ".join(f"{k} {v:.1f}" for k, v in b["sync_median_ms"].items())
    )
    print(f"load average {report['load_average'][0]:.1f}; console errors: {len(b['console_errors'])}")
    for e in b["console_errors"][:5]:
        print("  " + e)


if __name__ == "__main__":
    main()
