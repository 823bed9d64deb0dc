"""``tuneprobe probe``: the paper's MLP probe protocol on plain files.

Input: float32 ``[n, dim]`` ``.npy`` matrices (as written by ``tuneprobe extract --out``) and label files with
one label name a line in row order (default: ``<stem>.labels.txt`` beside each ``.npy``). A dev split is used
for selection when given, otherwise a stratified 10 % hold-out of train.

Output in ``--out DIR`` (each file written atomically): ``rows.csv`` (tidy rows: model, checkpoint, layer,
task, split, analysis, metric, value, seed), ``grid.csv`` (one line per configuration: h1, h2, alpha,
selection accuracy, epochs, converged, final training loss) and ``summary.json``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from tuneprobe.errors import DataFormatError, DataNotFoundError, UnknownNameError


def _labels_path(reps: Path, labels: Path | None) -> Path:
    if labels is not None:
        return labels
    stem = reps.with_suffix("") if reps.suffix == ".npy" else reps
    return stem.with_name(stem.name + ".labels.txt")


def load_split(reps: Path, labels: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``X [n, dim]`` from ``reps`` (.npy) and ``y [n]`` label names from the labels file."""
    lab = _labels_path(reps, labels)
    for p in (reps, lab):
        if not p.is_file():
            raise DataNotFoundError(f"{p}: no such file")
    try:
        X = np.load(reps, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataFormatError(reps, None, f"not a .npy array ({exc})") from None
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.floating):
        raise DataFormatError(reps, None, f"expected a float [n, dim] matrix, got {X.dtype} {X.shape}")
    names = lab.read_text(encoding="utf-8").splitlines()
    for i, name in enumerate(names, start=1):
        if not name.strip():
            raise DataFormatError(lab, i, "expected a label name, got an empty line")
    if len(names) != X.shape[0]:
        raise DataFormatError(lab, len(names), f"expected {X.shape[0]} labels (one per row of {reps.name})")
    return np.asarray(X, dtype=np.float32), np.asarray([n.strip() for n in names])


def _numbers(text: str, kind: type, option: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UnknownNameError(f"{option} {text!r}: expected comma-separated numbers") from None
    if not values:
        raise UnknownNameError(f"{option}: expected at least one value")
    return values


def _csv(rows: list[dict[str, object]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r[k] is None else r[k] for k in fields})
    return buf.getvalue()


def register(app: typer.Typer) -> None:
    """Add ``tuneprobe probe`` to ``app``."""

    @app.command("probe")
    def probe_cmd(
        reps: Annotated[Path, typer.Option("--reps", help="train vectors, float32 [n, dim] .npy")],
        test_reps: Annotated[Path, typer.Option("--test-reps", help="test vectors .npy")],
        out: Annotated[Path, typer.Option("--out", help="output directory")],
        labels: Annotated[Path | None, typer.Option(help="train labels (default <stem>.labels.txt)")] = None,
        test_labels: Annotated[Path | None, typer.Option(help="test labels")] = None,
        dev_reps: Annotated[Path | None, typer.Option(help="dev vectors .npy (selection set)")] = None,
        dev_labels: Annotated[Path | None, typer.Option(help="dev labels")] = None,
        hidden_sizes: Annotated[
            str, typer.Option(help="h1 and h2 values, comma-separated")
        ] = "32,64,128,256",
        alphas: Annotated[
            str, typer.Option(help="L2 weights, comma-separated")
        ] = "1e-7,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1,1",
        max_iter: Annotated[int, typer.Option(help="epochs per fit, at most")] = 1000,
        seeds: Annotated[str, typer.Option(help="refit seeds, comma-separated")] = "0,1,2,3,4",
        device: Annotated[str, typer.Option(help="auto|cpu|cuda")] = "auto",
        threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's)")] = None,
        model: Annotated[str, typer.Option(help="model name for the result rows")] = "",
        task: Annotated[str, typer.Option(help="task name for the result rows")] = "",
        layer: Annotated[int | None, typer.Option(help="layer for the result rows")] = None,
        checkpoint: Annotated[str | None, typer.Option(help="checkpoint for the result rows")] = None,
        progress: Annotated[bool, typer.Option(help="report progress every 50 epochs")] = True,
    ) -> None:
        """Grid-search the paper's MLP probe (128 configurations, batched), refit 5 seeds, test accuracy."""
        import torch

        from tuneprobe.probes.search import ProbeSearch
        from tuneprobe.store.arrays import atomic_write_text

        if (dev_reps is None) and (dev_labels is not None):
            raise UnknownNameError("--dev-labels needs --dev-reps")
        seed_list = _numbers(seeds, int, "--seeds")
        sizes = _numbers(hidden_sizes, int, "--hidden-sizes")
        alpha_list = _numbers(alphas, float, "--alphas")
        if threads is not None:
            torch.set_num_threads(threads)
        Xtr, ytr = load_split(reps, labels)
        Xte, yte = load_split(test_reps, test_labels)
        Xd, yd = load_split(dev_reps, dev_labels) if dev_reps is not None else (None, None)
        for path, X in ((test_reps, Xte), (dev_reps, Xd)):
            if X is not None and X.shape[1] != Xtr.shape[1]:
                raise DataFormatError(path, None, f"dim {X.shape[1]} differs from train's {Xtr.shape[1]}")

        def report(phase: str, epoch: int, active: int) -> None:
            if epoch % 50 == 0:
                typer.echo(f"{phase}: epoch {epoch}, {active} configurations still training", err=True)

        search = ProbeSearch(
            hidden_sizes=sizes,
            alphas=alpha_list,
            max_iter=max_iter,
            seeds=seed_list,
            device=None if device == "auto" else device,
            progress=report if progress else None,
        )
        t0 = time.perf_counter()
        result = search.run(Xtr, ytr, Xte, yte, Xd, yd)
        seconds = time.perf_counter() - t0
        out.mkdir(parents=True, exist_ok=True)
        rows = result.rows(model=model, checkpoint=checkpoint, layer=layer, task=task, split="test")
        fields = ["model", "checkpoint", "layer", "task", "split", "analysis", "metric", "value", "seed"]
        atomic_write_text(out / "rows.csv", _csv(rows, fields))
        grid_rows = [vars(p) for p in result.grid]
        atomic_write_text(out / "grid.csv", _csv(grid_rows, list(grid_rows[0])))
        summary = {
            "mean": result.mean,
            "std": result.std,
            "test_accuracies": result.test_accuracies,
            "seeds": result.seeds,
            "best": {"h1": result.best_h1, "h2": result.best_h2, "alpha": result.best_alpha},
            "selection": result.selection,
            "n_test": result.n_test,
            "n_test_unseen": result.n_test_unseen,
            "unseen_labels": result.unseen_labels,
            "n_classes": result.n_classes,
            "seconds": seconds,
            "timings": result.timings,
        }
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        typer.echo(f"test accuracy {result.summary()}")
        typer.echo(f"{seconds:.1f}s; wrote {out / 'rows.csv'}, grid.csv, summary.json")
