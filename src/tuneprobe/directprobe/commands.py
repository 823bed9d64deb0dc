"""``tuneprobe directprobe``: cluster a labelled representation, measure hull distances, optionally predict.

Two ways to give the training points:

    tuneprobe directprobe --reps X.npy [--labels X.labels.txt] --out DIR \
        [--predict-reps T.npy --predict-labels T.labels.txt]
    tuneprobe directprobe TASK --model M --layer L --split train [--predict-split test] --out DIR

``.npy`` files hold float ``[n, dim]`` matrices; a label file has one label name a line, in row order
(default: ``<stem>.labels.txt`` beside the ``.npy``, as written by ``tuneprobe extract --out``). Label ids are
the sorted distinct training label names. Predict labels unseen in training count as errors.

Output in ``DIR`` (each file written atomically; reruns give identical files except the timings in
summary.json):

- ``clusters.txt``: the cluster id of every input row, one a line, in input order (-1 for rows the clustering
  dropped).
- ``distances.csv``: ``label_a,label_b,distance,min_distance,n_cluster_pairs`` for every label pair a < b
  (sorted names); ``distance`` is the mean hull distance over cluster pairs (PAPER.md §6.6), ``nan`` when
  undefined (strict).
- ``cluster_distances.csv``: ``cluster_a,cluster_b,label_a,label_b,distance,lower_bound,converged`` per
  cluster pair.
- ``labels.csv``: ``label,n_points,n_clusters,min_distance,inside_mean,inside_max``.
- ``summary.json``: ``n_points``, ``n_labels``, ``n_clusters``, ``is_linear``, ``seconds_cluster``,
  ``seconds_distances``, ``seconds_predict``, the profile and its options, dropped clusters and affected
  labels, solver tolerances and convergence counts, global statistics; with prediction also
  ``intra_accuracy``, ``nn_accuracy`` (1-NN baseline), ``n_predict`` and ``n_predict_unseen``.
- ``predictions.txt`` (with prediction): the predicted label name of every predict row.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from tuneprobe.cli_options import CacheDirOption, DataDirOption, TaskOptionsOption
from tuneprobe.directprobe.clustering import Clustering
from tuneprobe.errors import DataFormatError, DataNotFoundError, UnknownNameError

__all__ = ["register", "run_directprobe", "read_points", "read_labels"]


# ----------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------


def _default_labels_path(reps: Path) -> Path:
    stem = reps.with_suffix("") if reps.suffix == ".npy" else reps
    return stem.with_name(stem.name + ".labels.txt")


def read_points(path: Path) -> np.ndarray:
    """float ``[n, dim]`` matrix from a ``.npy`` file; raises DataNotFoundError / DataFormatError."""
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file")
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataFormatError(path, None, f"not a .npy array ({exc})") from None
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.floating):
        raise DataFormatError(path, None, f"expected a float [n, dim] matrix, got {X.dtype} {X.shape}")
    if X.shape[0] == 0:
        raise DataFormatError(path, None, "the matrix has no rows")
    bad = ~np.isfinite(X).all(1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataFormatError(
            path, None, f"{rows.size} row(s) contain NaN or Inf (first: row {int(rows[0])}, 0-based)"
        )
    return X


def read_labels(path: Path, n_rows: int, reps: Path) -> list[str]:
    """One label name per line (``n_rows`` lines); raises DataNotFoundError / DataFormatError with the
    line."""
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file (labels for {reps}; pass --labels)")
    try:
        names = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, f"not UTF-8 text ({exc})") from None
    for i, name in enumerate(names, start=1):
        if not name.strip():
            raise DataFormatError(path, i, "expected a label name, got an empty line")
    if len(names) != n_rows:
        raise DataFormatError(
            path, None, f"{len(names)} labels but {reps.name} has {n_rows} rows (expected one label per row)"
        )
    return [n.strip() for n in names]


# ----------------------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------------------


def _num(v: float) -> str:
    """Deterministic text for a float (``nan`` for NaN)."""
    v = float(v)
    return "nan" if math.isnan(v) else repr(v)


def _csv_text(header: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    return str(obj)


def _write(path: Path, text: str) -> None:
    """Atomic write (temporary file + replace), then the usual permissions (the temporary file is 0600)."""
    import os

    from tuneprobe.store.arrays import atomic_write_text

    atomic_write_text(path, text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


# ----------------------------------------------------------------------------------------------------------
# the pipeline
# ----------------------------------------------------------------------------------------------------------


def _fit_clustering(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    *,
    search: str,
    duplicate_policy: str,
    legacy_forward_loop: bool,
    progress: bool,
    max_seconds: float | None = None,
) -> Clustering:
    """``DirectProbe(...).fit`` via :func:`tuneprobe.directprobe.measure.fit_clustering` (tests may replace
    this function)."""
    from tuneprobe.directprobe.measure import fit_clustering

    return fit_clustering(
        X,
        y,
        names,
        search=search,
        duplicate_policy=duplicate_policy,
        legacy_forward_loop=legacy_forward_loop,
        progress=progress,
        max_seconds=max_seconds,
    )


def run_directprobe(
    X: np.ndarray,
    labels: list[str],
    out: Path,
    *,
    X_predict: np.ndarray | None = None,
    labels_predict: list[str] | None = None,
    profile: str = "strict",
    min_cluster_size: int | None = None,
    undefined: str | None = None,
    same_label: bool = False,
    search: str = "auto",
    duplicate_policy: str = "keep",
    legacy_forward_loop: bool = False,
    rtol: float = 1e-4,
    backend: str = "auto",
    device: str | None = "auto",
    progress: bool = True,
    meta: dict[str, Any] | None = None,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """Cluster ``X`` (``[n, d]``) with its label names (``[n]``), write every output file into ``out``, and
    return
    the summary. ``X_predict`` (``[m, d]``) with ``labels_predict`` (``[m]``) adds nearest-hull prediction."""
    from tuneprobe.directprobe.hulls import resolve_backend
    from tuneprobe.directprobe.measure import measure, predict_split
    from tuneprobe.directprobe.metrics import PROFILES

    if profile not in PROFILES:
        raise UnknownNameError(f"--profile {profile!r}: expected one of {sorted(PROFILES)}")
    opts = PROFILES[profile]
    mcs = int(str(opts["min_cluster_size"])) if min_cluster_size is None else int(min_cluster_size)
    und = str(opts["undefined"]) if undefined is None else undefined
    if und not in ("nan", "zero"):
        raise UnknownNameError(f"--undefined {und!r}: expected 'nan' or 'zero'")
    if mcs < 1:
        raise UnknownNameError(f"--min-cluster-size must be >= 1, got {mcs}")
    if X_predict is not None and X_predict.shape[1] != X.shape[1]:
        raise DataFormatError(
            "--predict-reps",
            None,
            f"dimension {X_predict.shape[1]} differs from the training dimension {X.shape[1]}",
        )
    names = sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    y = np.array([index[n] for n in labels], dtype=np.int64)
    m = measure(
        X,
        y,
        names,
        fit=_fit_clustering,
        min_cluster_size=mcs,
        undefined=und,
        same_label=same_label,
        search=search,
        duplicate_policy=duplicate_policy,
        legacy_forward_loop=legacy_forward_loop,
        rtol=rtol,
        backend=backend,
        device=device,
        progress=progress,
        max_seconds=max_seconds,
    )
    clustering, pdist, stats = m.clustering, m.pair_distances, m.statistics
    seconds_cluster, seconds_distances = m.seconds_cluster, m.seconds_distances

    # ---- files (the directory only now: a rejected input leaves nothing behind)
    out.mkdir(parents=True, exist_ok=True)
    assign = np.asarray(clustering.assignment, dtype=np.int64)
    _write(out / "clusters.txt", "".join(f"{int(c)}\n" for c in assign))
    ld = stats.distances
    iu, ju = np.triu_indices(len(names), 1)
    _write(
        out / "distances.csv",
        _csv_text(
            ["label_a", "label_b", "distance", "min_distance", "n_cluster_pairs"],
            [
                [names[i], names[j], _num(ld.mean[i, j]), _num(ld.min[i, j]), int(ld.n_pairs[i, j])]
                for i, j in zip(iu, ju, strict=True)
            ],
        ),
    )
    lab = np.asarray(clustering.cluster_labels, dtype=np.int64)
    K = clustering.n_clusters
    ci, cj = np.triu_indices(K, 1)
    crow = [
        [
            int(a),
            int(b),
            names[lab[a]],
            names[lab[b]],
            _num(pdist.distance[a, b]),
            _num(pdist.lower[a, b]),
            str(bool(pdist.converged[a, b])).lower(),
        ]
        for a, b in zip(ci, cj, strict=True)
        if not math.isnan(pdist.distance[a, b])
    ]
    _write(
        out / "cluster_distances.csv",
        _csv_text(
            ["cluster_a", "cluster_b", "label_a", "label_b", "distance", "lower_bound", "converged"], crow
        ),
    )
    _write(
        out / "labels.csv",
        _csv_text(
            ["label", "n_points", "n_clusters", "min_distance", "inside_mean", "inside_max"],
            [
                [
                    names[i],
                    int(stats.n_points[i]),
                    int(stats.n_clusters[i]),
                    _num(ld.outside_min[i]),
                    _num(stats.inside_mean[i]),
                    _num(stats.inside_max[i]),
                ]
                for i in range(len(names))
            ],
        ),
    )

    iu_k = np.triu_indices(K, 1)
    computed = ~np.isnan(pdist.distance[iu_k])
    summary: dict[str, Any] = {
        "n_points": int(X.shape[0]),
        "dim": int(X.shape[1]),
        "n_labels": len(names),
        "n_clusters": int(K),
        "is_linear": bool(clustering.is_linear),
        "finished": bool(clustering.finished),
        "profile": profile,
        "min_cluster_size": mcs,
        "undefined": und,
        "n_clusters_dropped": int(ld.dropped_clusters.size),
        "affected_labels": ld.affected_labels,
        "distance_solver": {
            "method": "wolfe-min-norm-point",
            "rtol": rtol,
            "atol": pdist.atol,
            "backend": backend,
            "solver": resolve_backend(backend, device),
            "n_cluster_pairs": int(computed.sum()),
            "n_unconverged": int((~pdist.converged[iu_k] & computed).sum()),
            "n_overlapping": int((pdist.overlap[iu_k] & computed).sum()),
            "same_label": same_label,
        },
        "statistics": stats.summary,
        "clustering_stats": clustering.stats,
        "seconds_cluster": round(seconds_cluster, 4),
        "seconds_distances": round(seconds_distances, 4),
        "seconds_predict": 0.0,
    }
    if not clustering.finished:
        summary["max_seconds"] = max_seconds
        summary["stopped_in"] = clustering.stats.get("stopped_in")
        summary["pairs_left"] = clustering.stats.get("pairs_left")
    if meta:
        summary["input"] = meta

    if X_predict is not None:
        if labels_predict is None or len(labels_predict) != X_predict.shape[0]:
            raise DataFormatError("--predict-labels", None, "expected one label per predict row")
        yp = np.array([index.get(n, -1) for n in labels_predict], dtype=np.int64)
        sp = predict_split(m, X_predict, yp, rtol=rtol, backend=backend, device=device, progress=progress)
        pred = sp.hull
        summary["seconds_predict"] = round(sp.seconds, 4)
        summary["intra_accuracy"] = sp.intra_accuracy
        summary["nn_accuracy"] = sp.nn_accuracy
        summary["n_predict"] = int(X_predict.shape[0])
        summary["n_predict_unseen"] = int((yp < 0).sum())
        summary["predict_unseen_labels"] = sorted({n for n in labels_predict if n not in index})
        summary["n_predict_ties"] = int((pred.n_tied > 1).sum())
        summary["n_predict_pairs_solved"] = pred.n_solved
        summary["n_predict_unconverged"] = pred.n_unconverged
        _write(out / "predictions.txt", "".join(names[int(i)] + "\n" for i in pred.labels))
    _write(out / "summary.json", json.dumps(_jsonable(summary), indent=2, sort_keys=False) + "\n")
    return summary


def register(app: typer.Typer) -> None:
    """Add ``tuneprobe directprobe`` to ``app``."""

    @app.command("directprobe")
    def directprobe_cmd(
        task: Annotated[
            str | None, typer.Argument(help="task name (cached representations); omit with --reps")
        ] = None,
        out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("directprobe-out"),
        reps: Annotated[
            Path | None, typer.Option("--reps", help="training vectors, a float (n x dim) .npy matrix")
        ] = None,
        labels: Annotated[
            Path | None, typer.Option("--labels", help="label file (default <stem>.labels.txt)")
        ] = None,
        predict_reps: Annotated[
            Path | None, typer.Option("--predict-reps", help="vectors to predict, .npy")
        ] = None,
        predict_labels: Annotated[
            Path | None, typer.Option("--predict-labels", help="their label file")
        ] = None,
        model: Annotated[
            str, typer.Option("--model", "-m", help="with TASK: 'default', a directory or hub id")
        ] = "default",
        layer: Annotated[
            int, typer.Option("--layer", help="with TASK: hidden-state index (negative from the end)")
        ] = -1,
        split: Annotated[str, typer.Option("--split", "-s", help="with TASK: split to cluster")] = "train",
        predict_split: Annotated[
            str | None, typer.Option("--predict-split", help="with TASK: split to predict")
        ] = None,
        corpus: Annotated[
            str | None, typer.Option(help="with TASK: corpus (default: the task's first)")
        ] = None,
        data_dir: DataDirOption = None,
        cache_dir: CacheDirOption = None,
        option: TaskOptionsOption = None,
        profile: Annotated[str, typer.Option(help="strict (default) | reference (PAPER.md 6.7)")] = "strict",
        min_cluster_size: Annotated[
            int | None,
            typer.Option(help="drop clusters with fewer points before distances (strict 1, reference 6)"),
        ] = None,
        undefined: Annotated[
            str | None, typer.Option(help="undefined entries: nan (strict) | zero (reference)")
        ] = None,
        same_label: Annotated[bool, typer.Option(help="also measure same-label cluster pairs")] = False,
        search: Annotated[str, typer.Option(help="clustering search: auto | naive")] = "auto",
        duplicate_policy: Annotated[str, typer.Option(help="keep | drop | error")] = "keep",
        legacy_forward_loop: Annotated[
            bool, typer.Option(help="reproduce the pre-2022 forward loop")
        ] = False,
        rtol: Annotated[float, typer.Option(help="relative tolerance of the hull distances")] = 1e-4,
        backend: Annotated[
            str, typer.Option(help="hull geometry solver: auto (torch on CUDA when present) | numpy | torch")
        ] = "auto",
        device: Annotated[
            str, typer.Option(help="device of the hull geometry: auto (CUDA when present) | cpu | cuda[:N]")
        ] = "auto",
        progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
        max_seconds: Annotated[
            float | None,
            typer.Option(
                help="time budget of the clustering in seconds; when it runs out, the finest clean partition "
                "reached is measured and marked finished=false in summary.json"
            ),
        ] = None,
    ) -> None:
        """DirectProbe: clusters, hull distances, per-label statistics and (optionally) nearest-hull
        accuracy."""
        meta: dict[str, Any] = {}
        if max_seconds is not None and not max_seconds > 0:
            raise typer.BadParameter(f"must be positive, got {max_seconds:g}", param_hint="--max-seconds")
        if (task is None) == (reps is None):
            raise UnknownNameError("give either a TASK (cached representations) or --reps FILE.npy, not both")
        Xp: np.ndarray | None = None
        names_p: list[str] | None = None
        if reps is not None:
            if predict_split is not None:
                raise UnknownNameError("--predict-split needs a TASK; with --reps use --predict-reps")
            X = read_points(reps)
            names = read_labels(labels or _default_labels_path(reps), X.shape[0], reps)
            meta = {"reps": str(reps)}
            if predict_reps is not None:
                Xp = read_points(predict_reps)
                names_p = read_labels(
                    predict_labels or _default_labels_path(predict_reps), Xp.shape[0], predict_reps
                )
                meta["predict_reps"] = str(predict_reps)
            elif predict_labels is not None:
                raise UnknownNameError("--predict-labels needs --predict-reps")
        else:
            assert task is not None
            if predict_reps is not None or labels is not None or predict_labels is not None:
                raise UnknownNameError(
                    "with a TASK, use --split/--predict-split (not --labels/--predict-reps)"
                )
            from tuneprobe.encoders.commands import parse_options

            opts: dict[str, object] = dict(parse_options(option))
            if corpus is not None:
                opts["corpus"] = corpus
            X, names, info = _extract_layer(task, model, split, layer, data_dir, cache_dir, progress, opts)
            meta = {"task": task, "model": model, "layer": layer, "split": split, **info}
            if predict_split is not None:
                Xp, names_p, _ = _extract_layer(
                    task, model, predict_split, layer, data_dir, cache_dir, progress, opts
                )
                meta["predict_split"] = predict_split
        summary = run_directprobe(
            X,
            names,
            out,
            X_predict=Xp,
            labels_predict=names_p,
            profile=profile,
            min_cluster_size=min_cluster_size,
            undefined=undefined,
            same_label=same_label,
            search=search,
            duplicate_policy=duplicate_policy,
            legacy_forward_loop=legacy_forward_loop,
            rtol=rtol,
            backend=backend,
            device=device,
            progress=progress,
            meta=meta,
            max_seconds=max_seconds,
        )
        line = (
            f"{summary['n_points']} points, {summary['n_labels']} labels, {summary['n_clusters']} clusters "
            f"({'linear' if summary['is_linear'] else 'not linear'})"
        )
        if "intra_accuracy" in summary:
            line += f"; intra-accuracy {summary['intra_accuracy']:.4f} (1-NN {summary['nn_accuracy']:.4f})"
        typer.echo(line)
        if not summary["finished"]:
            left = summary["pairs_left"]
            typer.echo(
                f"warning: the clustering ran out of its {max_seconds:g} s budget in phase "
                f"{summary['stopped_in']!r}"
                + (f" with {left:,} same-label cluster pairs undecided" if left is not None else "")
                + "; these clusters are clean but finer than DirectProbe's result "
                "(summary.json: finished=false)",
                err=True,
            )
        typer.echo(f"wrote {out}")


def _extract_layer(
    task: str,
    model: str,
    split: str,
    layer: int,
    data_dir: Path | None,
    cache_dir: Path | None,
    progress: bool,
    opts: dict[str, object],
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """One layer of cached representations: (X ``[n, dim]``, label name per row, meta)."""
    import tuneprobe

    rep = tuneprobe.extract(
        task,
        model=model,
        split=split,
        layers=[layer],
        data_dir=data_dir,
        cache_dir=cache_dir,
        progress=progress,
        **opts,
    )
    X = np.asarray(rep.X[0] if len(rep.layers) == 1 else rep.layer(layer), dtype=np.float64)
    if not np.isfinite(X).all():
        raise DataFormatError(f"{task}/{split}", None, "representations contain NaN or Inf")
    names = [rep.labels[int(i)] for i in rep.y]
    info = {k: rep.meta.get(k) for k in ("corpus", "unit", "pooling", "cache_key") if k in rep.meta}
    info["layers"] = list(rep.layers)
    return X, names, info
