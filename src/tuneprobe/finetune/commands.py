"""``tuneprobe finetune``: fine-tune an encoder on a task with a snapshot schedule (resumable)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from tuneprobe.cli_options import CorpusOption, DataDirOption, TaskOptionsOption


def default_out(task: str, model: str, seed: int) -> Path:
    """``runs/finetune/<task>-<model>-seed<seed>`` with path-unsafe characters replaced."""
    name = Path(model.rstrip("/")).name or model
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{task}-{name}-seed{seed}")
    return Path("runs") / "finetune" / safe


def register(app: typer.Typer) -> None:
    """Add the ``finetune`` command to the CLI."""

    @app.command("finetune")
    def finetune_cmd(
        task: Annotated[
            str, typer.Argument(help="task name, e.g. pos, dep, ps-role, ps-fxn, trec50, jsonl:DIR")
        ],
        model: Annotated[
            str, typer.Option("--model", "-m", help="'default', a model directory or a hub id")
        ] = "default",
        corpus: CorpusOption = None,
        out: Annotated[
            Path | None, typer.Option(help="run directory (default: runs/finetune/<task>-<model>-seed<seed>)")
        ] = None,
        epochs: Annotated[
            int | None, typer.Option(help="epochs (default: 10, or 3 for models with >= 12 layers)")
        ] = None,
        lr: Annotated[float, typer.Option(help="peak learning rate (Adam)")] = 3e-4,
        batch_size: Annotated[int, typer.Option(help="sentences per update")] = 32,
        warmup: Annotated[float, typer.Option(help="warm-up fraction of all updates (ceil)")] = 0.1,
        seed: Annotated[int, typer.Option(help="seed of python/numpy/torch and of the data order")] = 0,
        snapshots: Annotated[
            str | None,
            typer.Option(help="'0,10,50' | 'log:K' | 'every:N' | 'paper' (default: every ceil(total/20))"),
        ] = None,
        max_steps: Annotated[int | None, typer.Option(help="total updates (overrides --epochs)")] = None,
        device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps")] = "auto",
        data_dir: DataDirOption = None,
        weight_decay: Annotated[
            float, typer.Option(help="Adam L2 weight decay (paper: UNCONFIRMED, 0)")
        ] = 0.0,
        max_grad_norm: Annotated[
            float | None, typer.Option(help="clip the gradient norm (default: no clipping)")
        ] = None,
        pooling: Annotated[str, typer.Option(help="subword->word pooling: mean|first|last")] = "mean",
        sentence_pooling: Annotated[str, typer.Option(help="sentence units: cls|mean")] = "cls",
        sentence_head: Annotated[str, typer.Option(help="sentence units: linear|pooler")] = "linear",
        max_length: Annotated[
            int | None, typer.Option(help="window length in tokens (default: the model's)")
        ] = None,
        keep_resume: Annotated[
            str, typer.Option(help="optimizer/RNG state in the 'last' snapshot only, or in 'all'")
        ] = "last",
        option: TaskOptionsOption = None,
        resume: Annotated[bool, typer.Option(help="continue a matching run found in --out")] = True,
        overwrite: Annotated[bool, typer.Option(help="replace a different run found in --out")] = False,
        progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
        threads: Annotated[
            int | None, typer.Option(help="torch CPU threads (default: torch's; 1 is best on a busy CPU)")
        ] = None,
    ) -> None:
        """Fine-tune MODEL on TASK end to end (a linear head per unit kind; the paper's recipe by default),
        saving snapshots that `tuneprobe extract --model <snapshot dir>` reads like any model directory."""
        from tuneprobe.encoders.commands import parse_options
        from tuneprobe.finetune.config import FinetuneConfig
        from tuneprobe.finetune.train import finetune

        cfg = FinetuneConfig(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            warmup=warmup,
            seed=seed,
            snapshots=snapshots,
            max_steps=max_steps,
            device=device,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
            pooling=pooling,
            sentence_pooling=sentence_pooling,
            sentence_head=sentence_head,
            max_length=max_length,
            keep_resume=keep_resume,
        )
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        run_dir = out if out is not None else default_out(task, model, seed)
        res = finetune(
            task,
            model=model,
            out=run_dir,
            config=cfg,
            corpus=corpus,
            data_dir=data_dir,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            **parse_options(option),
        )
        how = f"resumed from update {res.resumed_from}" if res.resumed_from is not None else "fresh run"
        loss = "n/a" if res.final_loss is None else f"{res.final_loss:.4f}"
        typer.echo(
            f"{task}: {res.total_steps} updates ({res.steps_per_epoch}/epoch, warm-up {res.warmup_steps}), "
            f"{how}, final loss {loss}, {res.seconds:.1f}s"
        )
        typer.echo(f"log: {res.log_path}")
        for s in res.snapshots:
            typer.echo(f"snapshot {s.step:>6}: {s.path}")
