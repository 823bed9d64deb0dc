"""Fine-tuning with snapshots: task heads trained end to end with the encoder, the paper's recipe as defaults.

>>> from tuneprobe.finetune import FinetuneConfig, finetune
>>> res = finetune("ps-role", out="runs/ps-role", config=FinetuneConfig(snapshots="every:10"))
>>> res.snapshot_dirs          # loadable HF model directories: tuneprobe.extract(task, model=str(dir))

See :mod:`tuneprobe.finetune.train` (run layout, determinism, resume), :mod:`tuneprobe.finetune.snapshot`
(snapshot layout) and :mod:`tuneprobe.finetune.config` (settings, lr and snapshot schedules). Names are
imported lazily, so ``import tuneprobe.finetune`` (e.g. by the CLI) does not load torch.
"""

from __future__ import annotations

from tuneprobe._lazy import lazy_exports

_EXPORTS = {
    "FinetuneConfig": "tuneprobe.finetune.config",
    "lr_factor": "tuneprobe.finetune.config",
    "parse_snapshots": "tuneprobe.finetune.config",
    "warmup_steps": "tuneprobe.finetune.config",
    "SnapshotInfo": "tuneprobe.finetune.snapshot",
    "list_snapshots": "tuneprobe.finetune.snapshot",
    "load_head_state": "tuneprobe.finetune.snapshot",
    "snapshot_path": "tuneprobe.finetune.snapshot",
    "FinetuneResult": "tuneprobe.finetune.train",
    "Trainer": "tuneprobe.finetune.train",
    "epoch_order": "tuneprobe.finetune.train",
    "finetune": "tuneprobe.finetune.train",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
