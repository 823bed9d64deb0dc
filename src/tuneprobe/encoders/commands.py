"""``tuneprobe extract``: compute (or fetch from the cache) the per-layer vectors of one task split.

Exporting: ``--out FILE.npy [--layer L]`` writes one layer as float32 ``[n_examples, dim]`` to FILE.npy, and
beside it ``FILE.labels.txt`` (the gold label name of each row, one a line, same row order) and
``FILE.ids.txt`` (the example id of each row). ``--layer`` defaults to the last extracted layer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tuneprobe.cli_options import CacheDirOption, CorpusOption, DataDirOption, TaskOptionsOption
from tuneprobe.errors import UnknownNameError


def parse_layers(text: str | None) -> list[int] | None:
    """``None``/``all`` -> None (all layers); ``1-6`` -> [1..6]; ``0,3,-1`` -> [0, 3, -1]; combinations
    allowed."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        try:
            if "-" in part[1:]:
                a, b = part[0] + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1]
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise UnknownNameError(
                f"--layers {text!r}: expected e.g. 'all', '1-6', '0,3,6' or '-1'"
            ) from None
    return out


def parse_options(items: list[str] | None) -> dict[str, str]:
    """``["key=value", ...]`` -> dict (task options such as ``base_relation=true``)."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise UnknownNameError(f"--option {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out


def export_layer(rep: object, layer: int, out: Path) -> tuple[Path, Path, Path]:
    """Write ``rep.layer(layer)`` to ``out`` (.npy) plus ``<stem>.labels.txt`` and ``<stem>.ids.txt``;
    atomic."""
    import numpy as np

    from tuneprobe.store.arrays import atomic_write_text, sweep_stale_temps, temp_prefix

    out = out if out.suffix == ".npy" else out.with_name(out.name + ".npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    X = rep.layer(layer)  # type: ignore[attr-defined]
    sweep_stale_temps(out)  # temporaries of killed exports of this path
    tmp = out.with_name(f"{temp_prefix(out)}tmp.npy")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(X, dtype=np.float32))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    stem = out.with_suffix("")
    labels_path = stem.with_name(stem.name + ".labels.txt")
    ids_path = stem.with_name(stem.name + ".ids.txt")
    names = rep.labels  # type: ignore[attr-defined]
    atomic_write_text(labels_path, "".join(names[int(i)] + "\n" for i in rep.y))  # type: ignore[attr-defined]
    atomic_write_text(ids_path, "".join(f"{i}\n" for i in rep.example_ids))  # type: ignore[attr-defined]
    return out, labels_path, ids_path


def register(app: typer.Typer) -> None:
    """Add the ``extract`` command to the CLI."""

    @app.command("extract")
    def extract_cmd(
        task: Annotated[
            str, typer.Argument(help="task name, e.g. pos, dep, ps-role, ps-fxn, trec50, jsonl:DIR")
        ],
        model: Annotated[
            str, typer.Option("--model", "-m", help="'default', a model directory or a hub id")
        ] = "default",
        split: Annotated[str, typer.Option("--split", "-s", help="split name")] = "train",
        corpus: CorpusOption = None,
        layers: Annotated[str | None, typer.Option(help="'all' (default), '1-6', '0,3,6', '-1'")] = None,
        pooling: Annotated[str, typer.Option(help="subword->word pooling: mean|first|last")] = "mean",
        sentence_pooling: Annotated[str, typer.Option(help="sentence units: cls|mean")] = "cls",
        device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
        batch_size: Annotated[int, typer.Option(help="sequences per forward pass")] = 64,
        max_length: Annotated[
            int | None, typer.Option(help="window length in tokens (default: the model's)")
        ] = None,
        data_dir: DataDirOption = None,
        cache_dir: CacheDirOption = None,
        option: TaskOptionsOption = None,
        out: Annotated[
            Path | None, typer.Option(help="export one layer as FILE.npy (+ .labels.txt, .ids.txt)")
        ] = None,
        layer: Annotated[
            int | None, typer.Option(help="layer to export with --out (default: the last)")
        ] = None,
        verify: Annotated[bool, typer.Option(help="verify cache checksums on load")] = True,
        progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
        trust_remote_code: Annotated[bool, typer.Option(help="allow custom model code from the hub")] = False,
    ) -> None:
        """Extract per-layer vectors of a task split (cached; a rerun loads them in well under a second)."""
        from tuneprobe.encoders.extract import extract

        opts: dict[str, object] = dict(parse_options(option))
        if corpus is not None:
            opts["corpus"] = corpus
        rep = extract(
            task,
            model=model,
            split=split,
            layers=parse_layers(layers),
            pooling=pooling,
            sentence_pooling=sentence_pooling,
            device=device,
            batch_size=batch_size,
            data_dir=data_dir,
            cache_dir=cache_dir,
            verify=verify,
            max_length=max_length,
            progress=progress,
            trust_remote_code=trust_remote_code,
            **opts,
        )
        m = rep.meta
        src = "cache" if m.get("from_cache") else "computed"
        typer.echo(
            f"{m['task']} / {m['corpus']} / {m['split']}: X {tuple(rep.X.shape)} float32 "
            f"(layers {rep.layers[0]}..{rep.layers[-1]} x {rep.n_examples} examples x {rep.dim}), "
            f"{len(rep.labels)} labels"
        )
        typer.echo(f"{src} in {m['seconds']:.2f}s; cached at {m.get('cache_file')}")
        if out is not None:
            which = rep.layers[-1] if layer is None else layer
            paths = export_layer(rep, which, out)
            typer.echo(f"layer {which} -> {paths[0]} (labels: {paths[1].name}, ids: {paths[2].name})")
        elif layer is not None:
            raise UnknownNameError("--layer selects the layer to export and needs --out")
