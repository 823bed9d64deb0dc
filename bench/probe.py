#!/usr/bin/env python
"""Benchmark the paper's MLP probe search: tuneprobe's batched torch grid vs scikit-learn's ``MLPClassifier``.

Both sides run the same protocol (PAPER.md section 5) on the same float32 vectors, each in its own subprocess
(so each side's peak RSS is its own, read with ``wait4``, and thread settings do not leak):

* **grid**: hidden sizes ``(h1, h2)`` in ``{32, 64, 128, 256}^2`` x ``alpha`` in ``10^-7 .. 10^0`` = 128
  configurations, at most ``--max-iter`` (1,000) epochs each, trained with seed 0 on train;
* **selection** on the dev split (ties: first in grid order);
* **refit** of the best setting on train with seeds 0-4 (the grid's seed-0 fit is that refit, on both sides),
  test accuracy mean and population std in percent.

sklearn: ``MLPClassifier(hidden_layer_sizes=(h1, h2), alpha=alpha, max_iter=1000, random_state=seed)``, all
other arguments at their defaults (adam, relu, batch ``min(200, n)``, lr 1e-3, tol 1e-4, 10 epochs without
improvement), one fit after another, as the paper ran it. Ours: ``tuneprobe.probes.ProbeSearch`` (the 128
configurations as 16 batched models, one per hidden-size group, spread over the cores; by default with the
random numbers of ``MLPClassifier(random_state=seed)``, ``--ours-rng numpy`` for tuneprobe's own streams).
Both sides get the same number of threads (``--threads``; torch's ``set_num_threads`` and the BLAS/OpenMP
variables).

Vectors: ``tuneprobe.extract(task, model=..., split=..., layers=[layer])`` (cached), default ps-role, the
packaged offline MiniLM, hidden-state layer 6; or ``--reps-dir DIR`` with ``DIR/{train,dev,test}.npy``
(float32 ``[n, dim]``) and ``DIR/{train,dev,test}.labels.txt`` (one label a line), as ``tuneprobe extract
--out DIR/train.npy`` writes them (no model, no corpus needed: for a GPU machine).

``--device cuda`` trains our side on the GPU (the padded layout: the whole grid as one zero-padded network per
layer); the sklearn side always runs on the CPU (``--sklearn-jobs`` processes).

Usage::

    python bench/probe.py                       # the full grid on both sides (sklearn takes a long while)
    python bench/probe.py --subset-configs 8    # a quick check on 8 configurations spread over the grid
    python bench/probe.py --skip-sklearn        # ours only
    python bench/probe.py --sklearn-jobs 2      # sklearn fits over 2 processes (its best use of 2 cores)
    python bench/probe.py --step-cost           # one grid step: CPU time vs its GEMMs alone vs one big sgemm
    python bench/probe.py --reps-dir D --device cuda --sklearn-jobs 16 --threads 16   # GPU vs 16 cores

Output: a table on stdout, and ``bench/out/probe_<task>_l<layer>[_subsetN].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "out"
HIDDEN = (32, 64, 128, 256)
ALPHAS = tuple(float(10.0**e) for e in range(-7, 1))
TARGET_SPEEDUP = 5.0
TARGET_ACC_POINTS = 0.5


def grid(subset: int | None) -> list[tuple[int, int, float]]:
    """The paper's grid in order (h1, h2, alpha ascending); ``subset``: that many, spread over it."""
    full = [(h1, h2, a) for h1 in HIDDEN for h2 in HIDDEN for a in ALPHAS]
    if subset is None or subset >= len(full):
        return full
    idx = sorted({int(round(i)) for i in np.linspace(0, len(full) - 1, subset)})
    return [full[i] for i in idx]


def load_average() -> float:
    return os.getloadavg()[0]


# -----------------------------------------------------------------------------------------------------------
# the two sides (run in child processes)


def side_ours(
    data: dict[str, np.ndarray],
    configs: list,
    seeds: list[int],
    max_iter: int,
    rng: str = "sklearn",
    device: str = "cpu",
    layout: str = "auto",
) -> dict[str, Any]:
    import torch

    from tuneprobe.probes import ProbeSearch

    t0 = time.perf_counter()
    search = ProbeSearch(
        configs=configs, seeds=seeds, max_iter=max_iter, device=device, rng=rng, layout=layout
    )
    r = search.run(data["Xtr"], data["ytr"], data["Xte"], data["yte"], data["Xdev"], data["ydev"])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "layout": layout,
        "wall_s": wall,
        "grid_s": r.timings["grid_s"],
        "refit_s": r.timings["refit_s"],
        "best": [r.best_h1, r.best_h2, r.best_alpha],
        "dev_accuracies": [p.selection_accuracy for p in r.grid],
        "n_iter": [p.n_iter for p in r.grid],
        "not_converged": sum(not p.converged for p in r.grid),
        "test_accuracies": r.test_accuracies,
        "mean": r.mean,
        "std": r.std,
        "n_test_unseen": r.n_test_unseen,
    }


_SK: dict[str, Any] = {}  # the vectors in each sklearn pool process


def _sk_init(data: dict[str, np.ndarray], max_iter: int) -> None:
    _SK.update(data)
    _SK["max_iter"] = max_iter


def _sk_fit(job: tuple[int, int, float, int]) -> dict[str, Any]:
    """One ``MLPClassifier`` fit; returns its dev and test accuracy and epochs (the model stays here)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    warnings.simplefilter("ignore", ConvergenceWarning)
    h1, h2, alpha, seed = job
    t0 = time.perf_counter()
    m = MLPClassifier(hidden_layer_sizes=(h1, h2), alpha=alpha, max_iter=_SK["max_iter"], random_state=seed)
    m.fit(_SK["Xtr"], _SK["ytr"])
    return {
        "dev": float(np.mean(m.predict(_SK["Xdev"]) == _SK["ydev"])),
        "test": 100.0 * float(np.mean(m.predict(_SK["Xte"]) == _SK["yte"])),
        "n_iter": int(m.n_iter_),
        "seconds": time.perf_counter() - t0,
    }


def side_sklearn(
    data: dict[str, np.ndarray], configs: list, seeds: list[int], max_iter: int, jobs: int = 1
) -> dict[str, Any]:
    """The grid, selection and refits with sklearn; ``jobs > 1`` spreads the fits over that many processes."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    t0 = time.perf_counter()
    pool = (
        ProcessPoolExecutor(
            jobs, mp_context=get_context("fork"), initializer=_sk_init, initargs=(data, max_iter)
        )
        if jobs > 1
        else None
    )
    if pool is None:
        _sk_init(data, max_iter)
    run = pool.map if pool is not None else map
    fits: list[dict[str, Any]] = [{} for _ in configs]
    # over processes: largest configurations first (fewer idle processes at the end), results in grid order
    order = sorted(range(len(configs)), key=lambda i: -configs[i][0] * configs[i][1]) if jobs > 1 else None
    order = order or list(range(len(configs)))
    grid_jobs = [(configs[i][0], configs[i][1], configs[i][2], 0) for i in order]
    for done, (i, f) in enumerate(zip(order, run(_sk_fit, grid_jobs), strict=True)):
        fits[i] = f
        h1, h2, a = configs[i]
        print(
            f"  sklearn {done + 1}/{len(configs)} ({h1}, {h2}, {a:g}): {f['n_iter']} epochs, "
            f"dev {f['dev']:.4f}, {f['seconds']:.0f}s (total {time.perf_counter() - t0:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
    grid_s = time.perf_counter() - t0
    dev_acc = [f["dev"] for f in fits]
    b = int(np.argmax(dev_acc))
    h1, h2, a = configs[b]
    t1 = time.perf_counter()
    todo = [s for s in seeds if s != 0]
    refits = dict(zip(todo, run(_sk_fit, [(h1, h2, a, s) for s in todo]), strict=True))
    test = [fits[b]["test"] if s == 0 else refits[s]["test"] for s in seeds]
    refit_s = time.perf_counter() - t1
    if pool is not None:
        pool.shutdown()
    return {
        "wall_s": time.perf_counter() - t0,
        "grid_s": grid_s,
        "refit_s": refit_s,
        "best": [h1, h2, a],
        "dev_accuracies": dev_acc,
        "n_iter": [f["n_iter"] for f in fits],
        "fit_seconds": [f["seconds"] for f in fits] + [refits[s]["seconds"] for s in todo],
        "not_converged": sum(f["n_iter"] >= max_iter for f in fits),
        "test_accuracies": test,
        "mean": float(np.mean(test)),
        "std": float(np.std(test)),
        "n_test_unseen": int(np.sum(~np.isin(data["yte"], np.unique(data["ytr"])))),
        "jobs": jobs,
    }


def worker(side: str, work: Path, args: argparse.Namespace, seeds: list[int]) -> None:
    """Child process: load the vectors from ``work``, run one side, write ``work/<side>.json``."""
    import torch

    torch.set_num_threads(args.threads)
    max_iter = args.max_iter
    data = {k: v for k, v in np.load(work / "data.npz", allow_pickle=False).items()}
    configs = [tuple(c) for c in json.loads((work / "configs.json").read_text())]
    configs = [(int(a), int(b), float(c)) for a, b, c in configs]
    if side == "ours":
        out = side_ours(data, configs, seeds, max_iter, args.ours_rng, args.device, args.ours_layout)
    else:
        out = side_sklearn(data, configs, seeds, max_iter, args.sklearn_jobs)
    ru_self = resource.getrusage(resource.RUSAGE_SELF)
    ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu_s"] = ru_self.ru_utime + ru_self.ru_stime + ru_kids.ru_utime + ru_kids.ru_stime
    out["peak_rss_pool_mb"] = ru_kids.ru_maxrss / 1024
    (work / f"{side}.json").write_text(json.dumps(out))


def run_side(side: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    blas = args.threads if side == "ours" else max(1, args.threads // args.sklearn_jobs)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(blas)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_worker",
        side,
        "--_work",
        str(work),
        "--threads",
        str(args.threads),
        "--max-iter",
        str(args.max_iter),
        "--seeds",
        args.seeds,
        "--sklearn-jobs",
        str(args.sklearn_jobs),
        "--ours-rng",
        args.ours_rng,
        "--ours-layout",
        args.ours_layout,
        "--device",
        args.device,
    ]
    load0 = load_average()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{side} side failed (status {status})")
    out = json.loads((work / f"{side}.json").read_text())
    out["process_wall_s"] = wall
    out["peak_rss_mb"] = ru.ru_maxrss / 1024
    out["load_before"] = load0
    out["load_after"] = load_average()
    return out


# -----------------------------------------------------------------------------------------------------------
# parent


def extract_data(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    data: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    if args.reps_dir is not None:
        from tuneprobe.probes.commands import load_split

        for split, key in (("train", "tr"), ("dev", "dev"), ("test", "te")):
            X, y = load_split(args.reps_dir / f"{split}.npy", None)
            data["X" + key], data["y" + key] = np.ascontiguousarray(X, dtype=np.float32), y.astype(str)
            info[split] = int(len(y))
        info["dim"] = int(data["Xtr"].shape[1])
        info["n_labels_train"] = len(np.unique(data["ytr"]))
        info["reps_dir"] = str(args.reps_dir)
        return data, info
    import tuneprobe

    for split, key in (("train", "tr"), ("dev", "dev"), ("test", "te")):
        rep = tuneprobe.extract(
            args.task,
            model=args.model,
            split=split,
            layers=[args.layer],
            data_dir=args.data_dir,
            progress=False,
        )
        data["X" + key] = np.ascontiguousarray(rep.layer(args.layer), dtype=np.float32)
        data["y" + key] = np.asarray(rep.labels)[np.asarray(rep.y)].astype(str)
        info[split] = int(rep.n_examples)
    info["dim"] = int(data["Xtr"].shape[1])
    info["n_labels_train"] = len(np.unique(data["ytr"]))
    return data, info


def report(res: dict[str, Any]) -> str:
    lines = []
    i = res["info"]
    sk_jobs = res.get("sklearn_jobs", 1)
    lines.append(
        f"{res['task']} ({res['model']}, layer {res['layer']}): train {i['train']} / dev {i['dev']} / test "
        f"{i['test']}, dim {i['dim']}, {i['n_labels_train']} train labels; {res['n_configs']} "
        f"configurations, max_iter {res['max_iter']}, seeds {res['seeds']}; {res['threads']} thread(s) per "
        f"side (sklearn: {sk_jobs} process(es) x {max(1, res['threads'] // sk_jobs)} BLAS thread(s); ours: "
        f"rng={res.get('ours_rng', 'sklearn')}, device {res.get('ours', {}).get('device', 'cpu')}, layout "
        f"{res.get('ours_layout', 'auto')})" + (f"; vectors from {i['reps_dir']}" if "reps_dir" in i else "")
    )
    head = (
        f"{'side':8} {'wall s':>8} {'grid s':>8} {'refit s':>8} {'CPU s':>8} {'peak RSS MB':>12} "
        f"{'mean epochs':>12} {'best (h1, h2, alpha)':>22} {'dev acc':>8} {'test acc %':>16} {'load':>10}"
    )
    lines.append(head)
    for side in ("sklearn", "ours"):
        r = res.get(side)
        if r is None:
            continue
        b = r["best"]
        dev = r["dev_accuracies"][[tuple(c) for c in res["configs"]].index(tuple(b))]
        rss = max(r["peak_rss_mb"], r.get("peak_rss_pool_mb", 0.0))
        lines.append(
            f"{side:8} {r['wall_s']:8.1f} {r['grid_s']:8.1f} {r['refit_s']:8.1f} {r['cpu_s']:8.1f} "
            f"{rss:12.0f} {np.mean(r['n_iter']):12.1f} {f'({b[0]}, {b[1]}, {b[2]:g})':>22} {100 * dev:8.2f} "
            f"{r['mean']:8.2f} ± {r['std']:5.2f} {r['load_before']:4.1f}/{r['load_after']:4.1f}"
        )
    if "sklearn" in res and "ours" in res:
        s, o = res["sklearn"], res["ours"]
        ratio = s["wall_s"] / o["wall_s"]
        if sk_jobs > 1:
            seq = sum(s["fit_seconds"])
            lines.append(
                f"sklearn one fit after another on one core (sum of its {len(s['fit_seconds'])} fit times, "
                f"each measured in a 1-thread process): {seq:.1f}s = {seq / o['wall_s']:.2f}x ours"
            )
        diff = abs(s["mean"] - o["mean"])
        dev_diff = np.abs(np.asarray(s["dev_accuracies"]) - np.asarray(o["dev_accuracies"]))
        lines.append(
            f"speed-up sklearn/ours, wall (whole protocol): {ratio:.2f}x (target >= {TARGET_SPEEDUP:g}x: "
            f"{'met' if ratio >= TARGET_SPEEDUP else 'NOT met'}); grid only "
            f"{s['grid_s'] / o['grid_s']:.2f}x; CPU time {s['cpu_s'] / o['cpu_s']:.2f}x"
        )
        lines.append(
            f"test accuracy difference: {diff:.2f} points (target <= {TARGET_ACC_POINTS}: "
            f"{'met' if diff <= TARGET_ACC_POINTS else 'NOT met'}); per-configuration dev accuracy |diff|: "
            f"mean {100 * dev_diff.mean():.2f}, max {100 * dev_diff.max():.2f} points; epochs per fit: "
            f"sklearn {np.mean(s['n_iter']):.1f}, ours {np.mean(o['n_iter']):.1f}; fits stopped by max_iter: "
            f"sklearn {s['not_converged']}, ours {o['not_converged']}"
        )
    return "\n".join(lines)


def step_cost(n: int = 4285, d: int = 384, k: int = 46, batch: int = 200, reps: int = 5) -> str:
    """CPU cost of one training step of the whole grid in the grouped layout (1 thread, random data of
    ps-role's shape) against the same step's GEMMs alone and against one large sgemm: where the time goes."""
    import torch

    from tuneprobe.probes._train import NetConfig, TrainSettings, _Packed, init_params

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    xb = torch.from_numpy(rng.normal(size=(batch, d)).astype(np.float32))
    yb = torch.from_numpy(rng.integers(0, k, batch))
    cfgs = [NetConfig((h1, h2), a) for h1 in HIDDEN for h2 in HIDDEN for a in ALPHAS]
    params = [
        [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in init_params(d, c.hidden, k, 0)] for c in cfgs
    ]
    packed = _Packed(list(range(len(cfgs))), cfgs, params, None, d, k, torch.device("cpu"))
    flops = 0
    for c in cfgs:  # forward, weight gradients, input gradients of layers 2 and 3
        (h1, h2) = c.hidden
        flops += 2 * batch * (2 * (d * h1 + h1 * h2 + h2 * k) + h1 * h2 + h2 * k)
    gem = []
    for gi, g in enumerate(packed.groups):
        a, widths = g.c1 - g.c0, [d, *g.hidden, k]
        hs = [xb.expand(a, batch, d)] + [torch.rand(a, batch, w) for w in widths[1:-1]]
        gem.append((packed.pv[gi], hs, [torch.rand(a, batch, w) for w in widths[1:]], packed.gv[gi][0]))

    def gemms() -> None:
        for (ws, bs), hs, ds, gws in gem:
            for li, (w, b) in enumerate(zip(ws, bs, strict=True)):
                torch.baddbmm(b.unsqueeze(1), hs[li], w)
                torch.bmm(hs[li].transpose(1, 2), ds[li], out=gws[li])
                if li > 0:
                    torch.bmm(ds[li], w.transpose(1, 2))

    t = [0]

    def step() -> None:
        t[0] += 1
        packed.step(xb, yb, t[0], TrainSettings())

    w_big = torch.randn(d, 15360)
    out = torch.empty(batch, 15360)

    def big() -> None:
        torch.mm(xb, w_big, out=out)

    def cpu(f: Any) -> float:
        f()
        t0 = time.process_time()
        for _ in range(reps):
            f()
        return (time.process_time() - t0) / reps

    full, only, one = (min(cpu(f) for _ in range(3)) for f in (step, gemms, big))
    big_rate = 2 * batch * d * 15360 / one / 1e9
    return (
        f"grouped step, all {len(cfgs)} configurations ({flops / 1e9:.2f} GFLOP): {full * 1e3:.0f} ms CPU = "
        f"{flops / full / 1e9:.1f} GFLOP/s; its GEMMs alone {only * 1e3:.0f} ms = "
        f"{flops / only / 1e9:.1f} GFLOP/s (non-GEMM share {(full - only) / full:.0%}); "
        f"one [{batch}, {d}] x [{d}, 15360] sgemm: {big_rate:.1f} GFLOP/s (1 thread)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="ps-role")
    p.add_argument("--model", default="default")
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--data-dir", default=os.environ.get("TUNEPROBE_DATA"))
    p.add_argument("--subset-configs", type=int, default=None, help="this many configurations (quick checks)")
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument(
        "--ours-rng", default="sklearn", choices=("sklearn", "numpy"), help="random streams of our side"
    )
    p.add_argument(
        "--ours-layout",
        default="auto",
        choices=("auto", "grouped", "padded"),
        help="batched layout of our side",
    )
    p.add_argument("--device", default="cpu", help="our side's device: cpu | cuda (sklearn: always the CPU)")
    p.add_argument(
        "--reps-dir",
        type=Path,
        default=None,
        help="read DIR/{train,dev,test}.npy + .labels.txt, no extraction",
    )
    p.add_argument(
        "--sklearn-jobs",
        type=int,
        default=1,
        help="processes for the sklearn fits (each with threads/jobs BLAS threads)",
    )
    p.add_argument("--out", type=Path, default=None, help="result JSON (default bench/out/probe_...json)")
    p.add_argument(
        "--step-cost", action="store_true", help="only measure one grid step's CPU cost, then exit"
    )
    p.add_argument("--_worker", dest="worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_work", dest="work", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.worker is not None:
        worker(args.worker, args.work, args, seeds)
        return 0
    if args.step_cost:
        print(step_cost())
        return 0

    configs = grid(args.subset_configs)
    data, info = extract_data(args)
    res: dict[str, Any] = {
        "task": args.task if args.reps_dir is None else "vectors",
        "model": args.model if args.reps_dir is None else str(args.reps_dir),
        "layer": args.layer if args.reps_dir is None else "?",
        "n_configs": len(configs),
        "max_iter": args.max_iter,
        "configs": configs,
        "sklearn_jobs": args.sklearn_jobs,
        "ours_rng": args.ours_rng,
        "ours_layout": args.ours_layout,
        "device": args.device,
        "seeds": seeds,
        "threads": args.threads,
        "info": info,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="tuneprobe-bench-probe-") as tmp:
        work = Path(tmp)
        np.savez(work / "data.npz", **data)
        (work / "configs.json").write_text(json.dumps(configs))
        print(f"ours: {len(configs)} configurations ...", file=sys.stderr, flush=True)
        res["ours"] = run_side("ours", work, args)
        print(f"ours: {res['ours']['wall_s']:.1f}s", file=sys.stderr, flush=True)
        if not args.skip_sklearn:
            print(f"sklearn: {len(configs)} configurations ...", file=sys.stderr, flush=True)
            res["sklearn"] = run_side("sklearn", work, args)
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = report(res)
    res["report"] = text
    print(text)
    suffix = f"_subset{len(configs)}" if args.subset_configs else ""
    name = f"{args.reps_dir.name}" if args.reps_dir is not None else f"{args.task}_l{args.layer}"
    dev = "" if args.device == "cpu" else f"_{args.device}"
    out = args.out or DEFAULT_OUT / f"probe_{name}{dev}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
