"""Benchmark of ``tuneprobe.extract`` on real sentences.

Part 1, throughput (same model object, same sentences, same batches, same thread count):

- *bare*: ``model(input_ids=..., attention_mask=..., output_hidden_states=True)`` over pre-built, padded
  batches (tokenisation and batch building are done before the clock starts);
- *ours*: the full ``tuneprobe.extract`` on that split and that model with an empty cache directory (tokenise,
  align, plan, forward, pool every requested layer, write the store's memmap, checksum, commit), model already
  loaded in both cases.

Runs alternate (bare, ours, bare, ours, ...) and the best of ``--repeat`` is reported for each, with the ratio
ours/bare in throughput (target >= 0.90), in wall time and in process CPU time (the latter is far less noisy
when other jobs share the CPUs).

Part 2, cache: ``tuneprobe extract TASK --model M --split S`` run twice as fresh processes on an empty cache
(first = cold: load split and model, extract, commit; second = cache hit); reports both wall times, the ratio
(target >= 20x) and the peak RSS of each via ``/usr/bin/time -v`` when available.

Usage::

    TUNEPROBE_DATA=../shared/data python bench/extract.py [--task ps-role] [--split train] [--model default]
        [--batch-size 64] [--threads N] [--repeat 2] [--limit N] [--skip-throughput] [--skip-cache]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def bare_loop(enc, batches_ids: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(wall, CPU) seconds of the bare forward loop over pre-built (input_ids, attention_mask) batches."""
    import torch

    dev = enc.device
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for ids, mask in batches_ids:
            enc.model(
                input_ids=torch.from_numpy(ids).to(dev),
                attention_mask=torch.from_numpy(mask).to(dev),
                output_hidden_states=True,
            )
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def build_batches(enc, split, batch_size: int, max_length: int | None) -> tuple[list, int, int]:
    """The exact batches ``extract`` runs: list of (input_ids, mask) int64 ``[B, T]``, n sequences, n
    tokens."""
    from tuneprobe.encoders.align import align
    from tuneprobe.encoders.extract import plan_batches

    used = sorted({e.sentence for e in split.examples})
    limit = min(max_length, enc.max_length) if max_length else enc.max_length
    al = align([split.sentences[i] for i in used], enc.tokenizer, limit, enc.prefix, enc.suffix)
    pad = enc.tokenizer.pad_token_id or 0
    seg_len = al.segment_lengths
    out = []
    n_tok = 0
    for sents in plan_batches(al, batch_size):
        segs = np.concatenate([np.arange(al.segment_offset[s], al.segment_offset[s + 1]) for s in sents])
        lens = seg_len[segs]
        T = int(lens.max())
        ids = np.full((len(segs), T), pad, dtype=np.int64)
        mask = np.arange(T)[None, :] < lens[:, None]
        ids[mask] = np.concatenate([al.segments[s] for s in segs])
        out.append((ids, mask.astype(np.int64)))
        n_tok += int(lens.sum())
    return out, len(seg_len), n_tok


def throughput(args: argparse.Namespace) -> None:
    import torch

    import tuneprobe.store.keys as keys
    from tuneprobe import extract
    from tuneprobe.encoders.load import load_encoder
    from tuneprobe.tasks import get_task

    torch.set_num_threads(args.threads)
    split = get_task(args.task, data_dir=args.data_dir).load(args.split)
    if args.limit:
        keep = sorted({e.sentence for e in split.examples})[: args.limit]
        keep_set = set(keep)
        split.examples = [e for e in split.examples if e.sentence in keep_set]
    enc = load_encoder(args.model, device=args.device)
    batches, n_seq, n_tok = build_batches(enc, split, args.batch_size, None)
    print(
        f"throughput: {args.task}/{args.split}, {len(split)} examples in {n_seq} sequences, {n_tok} tokens, "
        f"{len(batches)} batches of <= {args.batch_size}; model {args.model} ({enc.n_layers} layers, "
        f"H {enc.hidden_size}) on {enc.device}, torch threads {torch.get_num_threads()}"
    )
    bare_loop(enc, batches[-2:])  # warm-up (allocator, kernels)
    bare_t, ours_t, bare_c, ours_c = [], [], [], []
    for r in range(args.repeat):
        wall, cpu = bare_loop(enc, batches)
        bare_t.append(wall)
        bare_c.append(cpu)
        cache = Path(tempfile.mkdtemp(prefix="tp-bench-cache-"))
        keys._memo.clear()  # the weights hash is recomputed, as in a fresh process
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            rep = extract(split, enc, cache_dir=cache, batch_size=args.batch_size, progress=False)
            ours_t.append(time.perf_counter() - t0)
            ours_c.append(time.process_time() - c0)
            assert not rep.meta["from_cache"]
            shape = rep.X.shape
            del rep
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        print(
            f"  run {r + 1}: bare {bare_t[-1]:.2f}s wall / {bare_c[-1]:.2f}s CPU, "
            f"ours {ours_t[-1]:.2f}s wall / {ours_c[-1]:.2f}s CPU (X {shape})"
        )
    b, o = min(bare_t), min(ours_t)
    print(
        f"bare loop: {b:.2f}s ({n_seq / b:.1f} seq/s, {n_tok / b:.0f} tok/s); ours: {o:.2f}s "
        f"({n_seq / o:.1f} seq/s); ours/bare throughput = {b / o:.3f} (target >= 0.90); "
        f"medians bare {statistics.median(bare_t):.2f}s, ours {statistics.median(ours_t):.2f}s"
    )
    bc, oc = min(bare_c), min(ours_c)
    print(
        f"CPU time (process, all threads; robust on a shared machine): bare {bc:.2f}s, ours {oc:.2f}s, "
        f"ours/bare throughput = {bc / oc:.3f}"
    )


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int | None, str]:
    """(wall seconds, peak RSS in KiB or None, stdout) of one subprocess."""
    timev = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [timev, "-v", *cmd] if timev else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, int(m.group(1)) if m else None, proc.stdout


def cache_speedup(args: argparse.Namespace) -> None:
    cache = Path(tempfile.mkdtemp(prefix="tp-bench-cache-"))
    env = dict(os.environ, TUNEPROBE_CACHE=str(cache), OMP_NUM_THREADS=str(args.threads))
    if args.data_dir:
        env["TUNEPROBE_DATA"] = str(args.data_dir)
    exe = shutil.which("tuneprobe") or str(Path(sys.executable).with_name("tuneprobe"))
    cmd = [
        exe,
        "extract",
        args.task,
        "--model",
        args.model,
        "--split",
        args.split,
        "--no-progress",
        "--batch-size",
        str(args.batch_size),
        "--device",
        args.device,
    ]
    try:
        first, rss1, out1 = _timed(cmd, env)
        second, rss2, out2 = _timed(cmd, env)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"cache: `{' '.join(cmd[1:])}`")
    print("  first : " + out1.strip().replace("\n", "\n          "))
    print("  second: " + out2.strip().replace("\n", "\n          "))

    def mib(k: int | None) -> str:
        return f"{k / 1024:.0f} MiB" if k else "n/a"

    print(
        f"first (cold) {first:.2f}s, peak RSS {mib(rss1)}; "
        f"second (cached) {second:.2f}s, peak RSS {mib(rss2)}; "
        f"speed-up {first / second:.1f}x (target >= 20x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="ps-role")
    p.add_argument("--split", default="train")
    p.add_argument("--model", default="default")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="only the first N example-bearing sentences")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-cache", action="store_true")
    args = p.parse_args()
    if not args.skip_throughput:
        throughput(args)
    if not args.skip_cache:
        cache_speedup(args)


if __name__ == "__main__":
    main()
