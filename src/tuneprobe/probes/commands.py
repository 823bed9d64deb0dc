"""``tuneprobe probe``: the paper's MLP probe protocol (PAPER.md section 5) on a task or on plain files.

Two inputs:

- ``tuneprobe probe TASK --model M [--snapshot S] [--layer L]``: train / dev / test vectors of hidden-state
  layer L (default: the last) from the representation store (extracted once, then cached); M / S name an
  original model or a fine-tuning snapshot (:func:`tuneprobe.probes.task.resolve_model`).
- ``tuneprobe probe --reps TRAIN.npy --test-reps TEST.npy [--dev-reps DEV.npy]``: float32 ``[n, dim]``
  matrices (as written by ``tuneprobe extract --out``) and label files with one label name a line in row order
  (default: ``<stem>.labels.txt`` beside each ``.npy``); TASK, ``--model``, ``--layer`` etc. then only label
  the result rows.

A dev split is used for selection when there is one, otherwise a stratified 10 % hold-out of train.

Output in ``--out DIR`` (each file written atomically): ``rows.csv`` and ``rows.parquet`` (tidy rows with the
columns of :data:`tuneprobe.experiments.results.ROW_COLUMNS`, analysis ``probe``), ``grid.csv`` (one line per
configuration: h1, h2, alpha, selection accuracy, epochs, converged, final training loss) and
``summary.json``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from tuneprobe.cli_options import CacheDirOption, CorpusOption, DataDirOption, TaskOptionsOption
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
    if X.shape[0] == 0:
        raise DataFormatError(reps, None, "the matrix has no rows (an empty split)")
    bad = np.flatnonzero(~np.isfinite(X).all(1))
    if bad.size:
        raise DataFormatError(
            reps, None, f"{bad.size} row(s) contain NaN or Inf (first: row {int(bad[0])}, 0-based)"
        )
    try:
        names = lab.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(lab, None, f"not UTF-8 text ({exc})") from None
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


class _Bar:
    """One tqdm bar per phase (``grid``, ``refit``) counting finished configurations, with the current epoch;
    ``__call__(phase, epoch, active)`` is :class:`ProbeSearch`'s progress callback (its first call of a phase
    gives the phase's number of configurations)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.phase: str | None = None
        self.bar = None

    def __call__(self, phase: str, epoch: int, active: int) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.total = active
            self.bar = tqdm(total=active, desc=f"probe {phase}", unit="config", leave=False)
        assert self.bar is not None
        self.bar.update(self.total - active - self.bar.n)
        self.bar.set_postfix(epoch=epoch, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def default_out(task: str, model: str, tuned_on: str, checkpoint: int, layer: int) -> Path:
    """``runs/probe/<task>-<model>[-<tuned_on>-step<checkpoint>]-l<layer>`` (unsafe characters: ``_``)."""
    name = Path(model.rstrip("/")).name or model
    tuned = f"-{tuned_on}-step{checkpoint}" if tuned_on else ""
    return Path("runs") / "probe" / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{task}-{name}{tuned}-l{layer}")


def write_outputs(out: Path, result: object, rows: list[dict[str, object]], extra: dict[str, object]) -> None:
    """``rows.csv``, ``rows.parquet``, ``grid.csv`` and ``summary.json`` in ``out`` (atomically)."""
    from tuneprobe.experiments.results import write_rows
    from tuneprobe.store.arrays import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    write_rows(rows, out / "rows.csv")
    write_rows(rows, out / "rows.parquet")
    grid_rows = [vars(p) for p in result.grid]  # type: ignore[attr-defined]
    atomic_write_text(out / "grid.csv", _csv(grid_rows, list(grid_rows[0])))
    r = result
    summary = {
        "mean": r.mean,  # type: ignore[attr-defined]
        "std": r.std,  # type: ignore[attr-defined]
        "test_accuracies": r.test_accuracies,  # type: ignore[attr-defined]
        "seeds": r.seeds,  # type: ignore[attr-defined]
        "best": {"h1": r.best_h1, "h2": r.best_h2, "alpha": r.best_alpha},  # type: ignore[attr-defined]
        "selection": r.selection,  # type: ignore[attr-defined]
        "n_test": r.n_test,  # type: ignore[attr-defined]
        "n_test_unseen": r.n_test_unseen,  # type: ignore[attr-defined]
        "unseen_labels": r.unseen_labels,  # type: ignore[attr-defined]
        "n_classes": r.n_classes,  # type: ignore[attr-defined]
        "timings": r.timings,  # type: ignore[attr-defined]
        **extra,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")


def register(app: typer.Typer) -> None:
    """Add ``tuneprobe probe`` to ``app``."""

    @app.command("probe")
    def probe_cmd(
        task: Annotated[
            str | None,
            typer.Argument(
                help="task name (pos, dep, ps-role, ps-fxn, trec50, jsonl:DIR); with --reps only a row label"
            ),
        ] = None,
        model: Annotated[
            str,
            typer.Option(
                "--model", "-m", help="'default', a model directory, a snapshot directory or a run directory"
            ),
        ] = "default",
        snapshot: Annotated[
            str | None,
            typer.Option(help="update count or 'last' (--model: a run directory), or a snapshot directory"),
        ] = None,
        layer: Annotated[
            int | None, typer.Option(help="hidden-state layer (default: the last; 0 = embeddings)")
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="output directory (default: runs/probe/<task>-<model>...-l<layer>)"),
        ] = None,
        corpus: CorpusOption = None,
        data_dir: DataDirOption = None,
        cache_dir: CacheDirOption = None,
        option: TaskOptionsOption = None,
        pooling: Annotated[str, typer.Option(help="subword->word pooling: mean|first|last")] = "mean",
        sentence_pooling: Annotated[str, typer.Option(help="sentence units: cls|mean")] = "cls",
        reps: Annotated[
            Path | None, typer.Option("--reps", help="train vectors, float32 [n, dim] .npy (file mode)")
        ] = None,
        test_reps: Annotated[Path | None, typer.Option("--test-reps", help="test vectors .npy")] = None,
        labels: Annotated[Path | None, typer.Option(help="train labels (default <stem>.labels.txt)")] = None,
        test_labels: Annotated[Path | None, typer.Option(help="test labels")] = None,
        dev_reps: Annotated[Path | None, typer.Option(help="dev vectors .npy (selection set)")] = None,
        dev_labels: Annotated[Path | None, typer.Option(help="dev labels")] = None,
        tuned_on: Annotated[str, typer.Option(help="file mode: tuned_on for the result rows")] = "",
        checkpoint: Annotated[int, typer.Option(help="file mode: checkpoint for the result rows")] = 0,
        finetune_seed: Annotated[int, typer.Option(help="file mode: seed column of the result rows")] = 0,
        hidden_sizes: Annotated[
            str, typer.Option(help="h1 and h2 values, comma-separated")
        ] = "32,64,128,256",
        alphas: Annotated[
            str, typer.Option(help="L2 weights, comma-separated")
        ] = "1e-7,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1,1",
        max_iter: Annotated[int, typer.Option(help="epochs per fit, at most")] = 1000,
        seeds: Annotated[str, typer.Option(help="refit seeds, comma-separated")] = "0,1,2,3,4",
        device: Annotated[str, typer.Option(help="probe training: auto|cpu|cuda")] = "auto",
        extract_device: Annotated[str, typer.Option(help="extraction: auto|cpu|cuda|mps")] = "auto",
        threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's)")] = None,
        progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    ) -> None:
        """Grid-search the paper's MLP probe (128 configurations, batched) on TASK's layer-L vectors of
        MODEL (or on --reps files), select on dev, refit 5 seeds, write tidy rows of test accuracy."""
        import torch

        from tuneprobe.probes.search import ProbeSearch

        seed_list = _numbers(seeds, int, "--seeds")
        sizes = _numbers(hidden_sizes, int, "--hidden-sizes")
        alpha_list = _numbers(alphas, float, "--alphas")
        if threads is not None:
            torch.set_num_threads(threads)
        bar = _Bar(progress)
        search_opts = {
            "hidden_sizes": sizes,
            "alphas": alpha_list,
            "max_iter": max_iter,
            "seeds": seed_list,
            "device": None if device == "auto" else device,
            "progress": bar,
        }
        t0 = time.perf_counter()
        if reps is None:
            if task is None:
                raise UnknownNameError("give a TASK (vectors from the store) or --reps/--test-reps (files)")
            if test_reps is not None or dev_reps is not None:
                raise UnknownNameError("--test-reps/--dev-reps need --reps")
            from tuneprobe.encoders.commands import parse_options
            from tuneprobe.probes.task import probe_task

            try:
                tp = probe_task(
                    task,
                    model,
                    snapshot,
                    layer,
                    corpus=corpus,
                    data_dir=data_dir,
                    cache_dir=cache_dir,
                    pooling=pooling,
                    sentence_pooling=sentence_pooling,
                    extract_device=extract_device,
                    task_options=parse_options(option),
                    extract_progress=progress,
                    log=lambda line: typer.echo(line, err=True),
                    **search_opts,
                )
            finally:
                bar.close()
            result, rows = tp.result, tp.rows
            ref = tp.ref
            out_dir = out or default_out(task, ref.model, ref.tuned_on, ref.checkpoint, tp.layer)
            extra: dict[str, object] = {
                "task": task,
                "model": ref.model,
                "source": ref.source,
                "tuned_on": ref.tuned_on,
                "checkpoint": ref.checkpoint,
                "layer": tp.layer,
                "splits": tp.splits,
                "extract_seconds": tp.extract_seconds,
            }
        else:
            if test_reps is None:
                raise UnknownNameError("--reps needs --test-reps")
            if snapshot is not None:
                raise UnknownNameError("--snapshot applies to TASK mode, not to --reps files")
            if out is None:
                raise UnknownNameError("--reps needs --out DIR")
            if (dev_reps is None) and (dev_labels is not None):
                raise UnknownNameError("--dev-labels needs --dev-reps")
            Xtr, ytr = load_split(reps, labels)
            Xte, yte = load_split(test_reps, test_labels)
            Xd, yd = load_split(dev_reps, dev_labels) if dev_reps is not None else (None, None)
            for path, X in ((test_reps, Xte), (dev_reps, Xd)):
                if X is not None and X.shape[1] != Xtr.shape[1]:
                    raise DataFormatError(path, None, f"dim {X.shape[1]} differs from train's {Xtr.shape[1]}")
            try:
                result = ProbeSearch(**search_opts).run(Xtr, ytr, Xte, yte, Xd, yd)  # type: ignore[arg-type]
            finally:
                bar.close()
            rows = result.rows(
                model=model,
                tuned_on=tuned_on,
                checkpoint=checkpoint,
                layer=-1 if layer is None else layer,
                task=task or "",
                seed=finetune_seed,
            )
            out_dir = out
            extra = {"task": task or "", "model": model, "layer": layer, "reps": str(reps)}
        seconds = time.perf_counter() - t0
        write_outputs(out_dir, result, rows, {**extra, "seconds": seconds})
        typer.echo(f"test accuracy {result.summary()}")
        typer.echo(f"{seconds:.1f}s; wrote {out_dir / 'rows.csv'}, rows.parquet, grid.csv, summary.json")
