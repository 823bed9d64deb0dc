"""Benchmark: the cost of tuneprobe's fine-tuning step against a bare training loop on the same batches.

Ours: ``Trainer.train_step(k)``, everything one update of ``tuneprobe finetune`` does: assemble the batch from
the precomputed alignment (numpy), set the scheduled lr, forward, pool like extraction, head, cross-entropy,
backward, Adam step, zero the gradients, read loss and accuracy back.

Bare: the minimum any fine-tuning loop must do with the same model and the same head math, on the same
batches already assembled as tensors (built before the clock starts): ``model(ids, mask)`` -> one sparse
pooling product -> ``nn.Linear`` -> cross-entropy -> backward -> ``Adam.step`` -> ``zero_grad``.

Both run in the same process on their own copy of the model, in train mode (dropout on), one update of each
alternating (ABBA order) so that load changes hit both alike. Reports the median seconds per update of each
side, their ratio (target: ours / bare <= 1.10) and the ratio of the summed times.

    python bench/finetune.py [--task ps-role] [--model default] [--steps 8] [--threads 1]

Results are also written to ``bench/out/finetune.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import torch
from torch import nn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="ps-role")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--steps", type=int, default=8, help="timed updates per side")
    ap.add_argument("--warmup-steps", type=int, default=1, help="untimed updates per side first")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(Path(__file__).with_name("out") / "finetune.json"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from tuneprobe.finetune import FinetuneConfig, Trainer
    from tuneprobe.tasks import get_task

    split = get_task(args.task, data_dir=args.data_dir, corpus=args.corpus).load("train")
    cfg = FinetuneConfig(batch_size=args.batch_size, epochs=1, device=args.device)
    ours = Trainer(split, args.model, cfg, device=args.device)
    dev = ours.device

    # the bare loop: its own copy of the same weights, a plain linear head, the same batches as tensors
    model = copy.deepcopy(ours.base).to(dev).train()
    head = nn.Linear(ours.head.classifier.in_features, ours.head.classifier.out_features).to(dev)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=cfg.lr)
    n = args.warmup_steps + args.steps
    batches = [ours.data.batch(ours.batch_sentences(k)).to(dev) for k in range(n)]
    width = ours.head.n_parts * ours.encoder.hidden_size

    def bare_step(k: int) -> None:
        b = batches[k]
        hidden = model(input_ids=b.input_ids, attention_mask=b.attention_mask).last_hidden_state
        vec = torch.sparse.mm(b.pooler, hidden.reshape(-1, hidden.shape[-1])).reshape(b.n_examples, width)
        loss = nn.functional.cross_entropy(head(vec), b.labels, ignore_index=-1)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def timed(fn, k: int) -> float:
        t = time.perf_counter()
        fn(k)
        return time.perf_counter() - t

    t_ours: list[float] = []
    t_bare: list[float] = []
    for k in range(n):
        first, second = (ours.train_step, bare_step) if k % 2 == 0 else (bare_step, ours.train_step)
        a, b = timed(first, k), timed(second, k)
        to, tb = (a, b) if k % 2 == 0 else (b, a)
        if k >= args.warmup_steps:
            t_ours.append(to)
            t_bare.append(tb)
        print(
            f"update {k}: ours {to:.3f}s  bare {tb:.3f}s  ({batches[k].input_ids.shape[0]} seqs x "
            f"{batches[k].input_ids.shape[1]} tokens, {batches[k].n_examples} examples)",
            flush=True,
        )

    med_o, med_b = statistics.median(t_ours), statistics.median(t_bare)
    ratio = med_o / med_b
    ratio_sum = sum(t_ours) / sum(t_bare)
    pair = statistics.median(o / b for o, b in zip(t_ours, t_bare, strict=True))
    result = {
        "task": args.task,
        "model": args.model,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "ours_median_s": med_o,
        "bare_median_s": med_b,
        "ratio_median": ratio,
        "ratio_sum": ratio_sum,
        "ratio_pairwise_median": pair,
        "ours_s": t_ours,
        "bare_s": t_bare,
    }
    print(f"\nbaseline (bare fwd+bwd+Adam): {med_b:.3f} s/update (median of {args.steps})")
    print(f"ours (Trainer.train_step):    {med_o:.3f} s/update")
    print(
        f"ratio ours/bare: median {ratio:.3f}, summed {ratio_sum:.3f}, pairwise median {pair:.3f} "
        f"(target <= 1.10: {'PASS' if ratio <= 1.10 else 'FAIL'})"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
