"""GPU check: every GPU path of tuneprobe, timed against the CPU path in the same run, with agreement checks.

Sections (each on synthetic inputs, so it needs neither the corpora nor the offline model):

- ``extract``: ``tuneprobe.extract`` through ``Encoder.from_model`` with a random 6-layer x 384 BERT (the
  MiniLM shape) on synthetic sentences; max |CPU - CUDA| of the vectors.
- ``finetune``: ``Trainer.train_step`` updates of the same random model on a synthetic word-level task;
  seconds per update, where the parameters live, loss of the first update on each device.
- ``probes``: ``ProbeSearch`` (a grid subset, seeded refits) on a synthetic Gaussian mixture (or on
  ``--reps-dir DIR`` holding ``X_train.npy``, ``y_train.npy``, ``X_test.npy``, ``y_test.npy``); test accuracy
  on each device.
- ``hulls``: the hull-distance matrix of synthetic clusters and point-to-hull distances of test points: the
  compiled CPU solver (numba) against the batched torch solver on CUDA; max relative difference, pairs the
  torch solver left uncertified (re-solved on the CPU).

Without CUDA every section still runs on the CPU (and says that CUDA is absent), so the script can be tested
anywhere with ``--quick``. Each section prints its result as soon as it finishes; a failing section is
reported and the others still run. Results go to ``--out FILE.json`` and, when ``$OUT`` is set, to
``$OUT/gpu_check.json``.

    PYTHONPATH=src python bench/gpu_check.py [--quick] [--sections extract,finetune,probes,hulls]
        [--out FILE.json] [--reps-dir DIR]

Sized to finish in under 5 minutes on one H100 machine (CPU baselines on its 16 cores included); ``--quick``
takes about a minute on a 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

SECTIONS = ("hulls", "extract", "finetune", "probes")


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    _sync()
    t = time.perf_counter()
    out = fn()
    _sync()
    return time.perf_counter() - t, out


def _devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _ratio(res: dict[str, Any], key: str) -> None:
    """``res["speedup"]`` = cpu / cuda of ``res[dev][key]`` when both are there."""
    c, g = res.get("cpu", {}).get(key), res.get("cuda", {}).get(key)
    if c and g:
        res["speedup_cuda_vs_cpu"] = round(c / g, 2)


# ------------------------------------------------------------------------------------------------------------
# synthetic model and task


def _words(n: int) -> list[str]:
    """``n`` distinct lowercase pseudo-words (letters only, so the basic tokenizer keeps them whole)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for i in range(n):
        w, k = "", i
        while True:
            w += letters[k % 26]
            k //= 26
            if k == 0:
                break
        out.append("w" + w)
    return out


def _model(tmp: Path, vocab_words: list[str]) -> tuple[Any, Any]:
    """A random BertModel (6 layers x 384, 12 heads: the MiniLM shape) and a fast tokenizer built from a
    vocab file in ``tmp``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *vocab_words]
    (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(tmp / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
    )
    return BertModel(cfg).eval(), tok


def _split(n_sentences: int, vocab_words: list[str], seed: int = 0) -> Any:
    """A word-level split: random sentences of 8-30 pseudo-words, each word labelled by its first letter
    class (5 labels)."""
    from tuneprobe.tasks.base import Example, Split

    rng = np.random.default_rng(seed)
    sents = [
        tuple(vocab_words[i] for i in rng.integers(0, len(vocab_words), size=rng.integers(8, 31)))
        for _ in range(n_sentences)
    ]
    ex = [
        Example(s, (i,), f"L{ord(w[1]) % 5}", f"s{s}:w{i}")
        for s, words in enumerate(sents)
        for i, w in enumerate(words)
    ]
    return Split(
        task="synthetic-token",
        corpus="synthetic",
        name="train",
        unit_kind="token",
        sentences=sents,
        sentence_ids=[f"s{i}" for i in range(len(sents))],
        examples=ex,
    )


# ------------------------------------------------------------------------------------------------------------
# sections


def section_extract(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from tuneprobe.encoders.extract import extract
    from tuneprobe.encoders.load import Encoder

    words = _words(2000)
    model, tok = _model(tmp, words)
    split = _split(64 if args.quick else 1024, words)
    res: dict[str, Any] = {"sentences": len(split.sentences), "examples": len(split), "layers": [6]}
    outs = {}
    for dev in _devices():
        enc = Encoder.from_model(model, tok, name="random-bert-6x384", device=dev)
        res.setdefault(dev, {})["encoder_device"] = str(enc.device)
        res[dev]["param_device"] = str(next(enc.full_model.parameters()).device)
        kw = {"layers": [6], "device": dev, "cache": False, "progress": False, "batch_size": 64}
        extract(_split(8, words, seed=1), model=enc, **kw)  # warm-up (CUDA context, kernels)
        t, rep = _timed(lambda enc=enc, kw=kw: extract(split, model=enc, **kw))
        outs[dev] = np.asarray(rep.layer(6))
        res[dev]["seconds"] = round(t, 3)
        res[dev]["sentences_per_s"] = round(len(split.sentences) / t, 1)
    if "cuda" in outs:
        res["max_abs_diff_cpu_cuda"] = float(np.abs(outs["cpu"] - outs["cuda"]).max())
        res["max_abs_value"] = float(np.abs(outs["cpu"]).max())
    _ratio(res, "seconds")
    return res


def section_finetune(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import torch

    from tuneprobe.encoders.load import Encoder
    from tuneprobe.finetune import FinetuneConfig, Trainer

    words = _words(2000)
    model, tok = _model(tmp, words)
    split = _split(128 if args.quick else 512, words)
    steps = 3 if args.quick else 10
    res: dict[str, Any] = {"batch_size": 32, "timed_updates": steps}
    for dev in _devices():
        cfg = FinetuneConfig(batch_size=32, max_steps=steps + 1, device=dev, seed=0)
        tr = Trainer(split, Encoder.from_model(model, tok, device="cpu"), cfg, device=dev)
        r: dict[str, Any] = {
            "trainer_device": str(tr.device),
            "param_devices": sorted({str(p.device) for p in tr.params}),
        }
        first = tr.train_step(0)  # untimed warm-up update
        r["loss_update0"] = round(first[0], 5)
        ts = []
        for k in range(1, steps + 1):
            t, _ = _timed(lambda k=k, tr=tr: tr.train_step(k))
            ts.append(t)
        r["seconds_per_update_median"] = round(float(np.median(ts)), 4)
        r["optimizer_state_device"] = sorted(
            {str(v.device) for st in tr.optimizer.state.values() for v in st.values() if torch.is_tensor(v)}
        )
        res[dev] = r
        del tr
    _ratio(res, "seconds_per_update_median")
    return res


def _gaussian_mixture(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 points of ``k`` overlapping Gaussian classes in ``d`` dimensions (fixed class centres;
    the samples drawn with ``seed``)."""
    centers = np.random.default_rng(12345).normal(size=(k, d)).astype(np.float32) * 0.08
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.normal(size=(n, d)).astype(np.float32)
    return X.astype(np.float32), y


def section_probes(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    del tmp
    from tuneprobe.probes import ProbeSearch

    if args.reps_dir:
        d = Path(args.reps_dir)
        Xtr, ytr = np.load(d / "X_train.npy"), np.load(d / "y_train.npy", allow_pickle=False)
        Xte, yte = np.load(d / "X_test.npy"), np.load(d / "y_test.npy", allow_pickle=False)
        source = str(d)
    else:
        n = 1500 if args.quick else 6000
        Xtr, ytr = _gaussian_mixture(n, 384, 10, 0)
        Xte, yte = _gaussian_mixture(n // 4, 384, 10, 1)
        source = "gaussian mixture"
    if args.quick:
        configs = [(32, 32, 1e-4), (256, 256, 1e-2)]
    else:
        configs = [(h, h2, 1e-4) for h in (32, 256, 1024) for h2 in (32, 256)]
    max_iter = 20 if args.quick else 40
    res: dict[str, Any] = {
        "source": source,
        "n_train": len(ytr),
        "dim": int(Xtr.shape[1]),
        "configs": len(configs),
        "max_iter": max_iter,
        "seeds": 2,
    }
    for dev in _devices():
        ps = ProbeSearch(configs=configs, seeds=(0, 1), max_iter=max_iter, device=dev)
        t, out = _timed(lambda ps=ps: ps.run(Xtr, ytr, Xte, yte))
        res[dev] = {
            "seconds": round(t, 3),
            "test_accuracy_mean": round(float(np.mean(out.test_accuracies)), 3),
            "best": [out.best_h1, out.best_h2, out.best_alpha],
        }
    _ratio(res, "seconds")
    return res


def _clusters(n_clusters: int, d: int, seed: int) -> tuple[np.ndarray, Any, np.ndarray]:
    """Synthetic clustered data (cluster sizes 3-400, two clusters per label) and test points."""
    from tuneprobe.directprobe.clustering import Clustering

    rng = np.random.default_rng(seed)
    sizes = np.clip(rng.lognormal(4.0, 1.0, size=n_clusters).astype(int), 3, 400)
    centers = rng.normal(size=(n_clusters, d)) * 1.2
    X = np.concatenate([c + rng.normal(size=(s, d)) for c, s in zip(centers, sizes, strict=True)])
    assign = np.repeat(np.arange(n_clusters), sizes)
    labels = np.arange(n_clusters) // 2
    cl = Clustering(assign, labels, int(labels.max()) + 1)
    test = centers[rng.integers(0, n_clusters, size=200)] + rng.normal(size=(200, d))
    return X.astype(np.float32), cl, test.astype(np.float32)


def section_hulls(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    del tmp
    import torch

    from tuneprobe.directprobe import hulls
    from tuneprobe.directprobe.hulls_torch import TorchSolveStats, solve_pairs_torch

    K = 16 if args.quick else 48
    X, cl, P = _clusters(K, 384, 0)
    if args.quick:
        P = P[:20]
    res: dict[str, Any] = {"n_points": len(X), "dim": 384, "clusters": K, "test_points": len(P)}
    tdev = "cuda" if torch.cuda.is_available() else "cpu"
    key = f"torch_{tdev}"
    Xw, clw, _ = _clusters(4, 8, 1)
    # 1. the torch solver alone (no CPU re-solve), first: it needs no numba. Cold = first call (device and
    # solver libraries start up), then warm.
    order, starts, sizes, mu = hulls._sorted_blocks(np.asarray(X, np.float64), cl)
    Xs = np.asarray(X, np.float64)[order] - mu
    iu, ju = np.nonzero(np.triu(cl.cluster_labels[:, None] != cl.cluster_labels[None, :], 1))
    atol = 1e-9 * float(np.sqrt((Xs * Xs).sum(1).max()))
    t, _ = _timed(lambda: hulls.cluster_distances(Xw, clw, backend="torch", device=tdev))
    res[key] = {"warmup_s": round(t, 2)}
    st = TorchSolveStats()
    t, out = _timed(
        lambda: solve_pairs_torch(Xs, starts, sizes, iu, ju, rtol=1e-4, atol=atol, device=tdev, stats=st)
    )
    res[key]["torch_only_matrix_s"] = round(t, 3)
    res[key]["torch_only_pairs"] = int(len(iu))
    res[key]["torch_only_uncertified_pairs"] = int((~out[3]).sum())
    res[key]["torch_stats"] = {"chunks": st.chunks, "majors": st.majors, "minors": st.minors}
    print(f"    hulls, torch solver alone on {tdev}: {json.dumps(res[key])}", flush=True)
    # 2. the compiled CPU solver (numba; compiled on a fresh machine, about 20 s once)
    t, _ = _timed(lambda: hulls.cluster_distances(Xw, clw, backend="numpy"))
    res["numba_warmup_s"] = round(t, 2)
    t, ref = _timed(lambda: hulls.cluster_distances(X, cl, backend="numpy"))
    res["cpu_numba"] = {"matrix_s": round(t, 3), "pairs": int(len(iu))}
    t, refp = _timed(lambda: hulls.point_hull_distances(P, X, cl, backend="numpy"))
    res["cpu_numba"]["point_hull_s"] = round(t, 3)
    rd = ref.distance[iu, ju]
    ok = out[3] & (rd > 0)
    res[key]["torch_only_max_rel_diff"] = (
        float(np.max(np.abs(out[0][ok] - rd[ok]) / rd[ok])) if ok.any() else 0.0
    )
    # 3. the public API on the torch path (uncertified pairs re-solved on the CPU)
    t, got = _timed(lambda: hulls.cluster_distances(X, cl, backend="torch", device=tdev))
    res[key]["matrix_s"] = round(t, 3)
    t, gotp = _timed(lambda: hulls.point_hull_distances(P, X, cl, backend="torch", device=tdev))
    res[key]["point_hull_s"] = round(t, 3)
    m = np.isfinite(ref.distance) & (ref.distance > 0)
    res[key]["max_rel_diff_matrix"] = float(
        np.max(np.abs(got.distance[m] - ref.distance[m]) / ref.distance[m])
    )
    res[key]["overlaps_numba_torch"] = [int(ref.overlap.sum() // 2), int(got.overlap.sum() // 2)]
    mp = refp > 0
    res[key]["max_rel_diff_point_hull"] = (
        float(np.max(np.abs(gotp[mp] - refp[mp]) / refp[mp])) if mp.any() else 0.0
    )
    res[key]["points_inside_numba_torch"] = [int((refp == 0).sum()), int((gotp == 0).sum())]
    res["speedup_matrix"] = round(res["cpu_numba"]["matrix_s"] / res[key]["matrix_s"], 2)
    res["speedup_point_hull"] = round(res["cpu_numba"]["point_hull_s"] / res[key]["point_hull_s"], 2)
    # 4. nearest-hull prediction (pruned point-to-hull search) on both paths
    try:
        from tuneprobe.directprobe.predict import nearest_hull_predict

        t, pn = _timed(lambda: nearest_hull_predict(X, cl, P, backend="numpy"))
        res["cpu_numba"]["predict_s"] = round(t, 3)
        t, pt = _timed(lambda: nearest_hull_predict(X, cl, P, backend="torch", device=tdev))
        res[key]["predict_s"] = round(t, 3)
        res[key]["predict_same_labels"] = float(np.mean(pn.labels == pt.labels))
    except Exception as e:  # noqa: BLE001 - keep the section's other results
        res["predict_error"] = f"{type(e).__name__}: {e}"
    return res


RUNNERS: dict[str, Callable[[argparse.Namespace, Path], dict[str, Any]]] = {
    "extract": section_extract,
    "finetune": section_finetune,
    "probes": section_probes,
    "hulls": section_hulls,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (about a minute on a 2-core CPU)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--reps-dir", default=None, help="probe section on X_train/y_train/X_test/y_test .npy")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.perf_counter()
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "quick": args.quick,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    else:
        info["note"] = "CUDA is absent: every section runs on the CPU only (no CUDA timings)"
    print("gpu_check:", json.dumps(info), flush=True)
    results: dict[str, Any] = {"info": info, "sections": {}}

    def write() -> None:
        text = json.dumps(results, indent=1, default=str) + "\n"
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "gpu_check.json").write_text(text)

    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    for name in names:
        if name not in RUNNERS:
            ap.error(f"unknown section {name!r}")
    for name in names:
        t = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                r = RUNNERS[name](args, Path(tmp))
            r["section_s"] = round(time.perf_counter() - t, 1)
            results["sections"][name] = r
            print(f"[{name}] {json.dumps(r, default=str)}", flush=True)
        except Exception as e:  # noqa: BLE001 - report the section and go on with the others
            results["sections"][name] = {
                "error": f"{type(e).__name__}: {e}",
                "section_s": time.perf_counter() - t,
            }
            print(f"[{name}] FAILED: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
        write()
    results["total_s"] = round(time.perf_counter() - t0, 1)
    write()
    print(f"gpu_check done in {results['total_s']} s", flush=True)
    return 1 if any("error" in r for r in results["sections"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
