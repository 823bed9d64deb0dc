"""Experiment configuration: a TOML file -> frozen dataclasses, validated with errors that name the file and
the key path (``configs/x.toml: finetune.lr: expected a number, got 'fast'``).

Layout (every table and key is optional unless marked; unknown keys are errors)::

    [run]
    name = "quickstart"            # label of the run (default: the file's stem)
    output = "results/quickstart"  # results directory (default: results/<name>; --results overrides)
    device = "auto"                # auto | cpu | cuda | cuda:N | mps (--device overrides)
    models = ["default"]           # encoders: "default", a model directory or a hub id (required)
    seeds = [0]                    # fine-tuning seeds (each tuned model is one run per seed)
    data_dir = "..."               # corpora (default: $TUNEPROBE_DATA)
    cache_dir = "..."              # representation store (default: $TUNEPROBE_CACHE / platformdirs)
    subsample_seed = 0             # seed of the stratified subsamples (tasks.max_examples)

    [[tasks]]                      # at least one
    name = "ps-role"               # (required) pos, dep, ps-role, ps-fxn, trec50, trec6, jsonl:DIR
    id = "ps-role"                 # name in the results' task column (default: name; must be unique)
    corpus = "streusle"            # default: the task's first corpus
    options = {}                   # task options (dep: base_relation)
    finetune = true                # fine-tune each model on this task (false: only measured)
    splits = ["train", "test"]     # splits measured (default: train and test)
    max_examples = { train = 2000 }  # seeded stratified subsample of a split for every analysis (below)

    [finetune]                     # tuneprobe.finetune.FinetuneConfig fields (the paper's recipe by default):
    epochs, lr, batch_size, warmup, snapshots, max_steps, weight_decay, adam_betas, adam_eps,
    max_grad_norm, pooling, sentence_pooling, sentence_head, max_length, head_init_std, keep_resume

    [extract]
    pooling = "mean"; sentence_pooling = "cls"; batch_size = 64; max_length = <model's>

    [directprobe]
    predict = true                 # a train cell also predicts the test split (intra / 1-NN accuracy)
    min_cluster_size = 1           # passed to run_directprobe_cell
    control_seed = 0               # seed of the label permutation of random-label control cells
    [[directprobe.cells]]          # scopes; the cells run are the union of their products
    tasks = ["ps-role"]            # measured task ids (default: every task)
    checkpoints = "all"            # all | ends (0 and the final update) | final | [0, 10, ...]
    layers = "all"                 # all (1..L) | last | [1, -1, ...] (0 = embeddings, negative from the end)
    splits = ["train"]             # default: every split of the task
    random_control = false         # also run these cells with labels permuted within the split

    [probe]                        # the paper's MLP probe (tuneprobe.probes.ProbeSearch)
    enabled = true; tasks = [...]; checkpoints = "ends"; layers = "last"
    hidden_sizes = [32, 64, 128, 256]; alphas = [1e-7, ..., 1.0]; seeds = [0, 1, 2, 3, 4]
    max_iter = 1000; selection = "dev"   # dev: the task's dev split where it has one, else a hold-out
    holdout_fraction = 0.1; workers = <torch threads>

    [[cross_task]]                 # Table 5: measure `task` on models tuned on other tasks
    task = "ps-fxn"; tuned_on = ["ps-role", "pos"]   # task ids (tuned_on tasks must have finetune = true)
    checkpoints = "ends"; layers = "last"; splits = ["train"]; probe = true; random_control = false

    [analyses]                     # cross-cell analyses, each run wherever its input cells exist
    train_test_similarity = true; similarity_to_original = true; outside_min_change = true
    centroid_paths = true; centroid_paths_layers = [1, -1]; centroid_shift = true
    models_table = true; tasks_table = true

Checkpoint 0 is always the original (pre-trained) model: its jobs are shared by every tuning task, and its
rows have ``tuned_on = ""`` and ``seed = 0``.

Subsampling (``max_examples``): a split larger than the cap is cut to the cap by a stratified draw
(:func:`tuneprobe.experiments.execute.stratified_subsample`: every label keeps ``floor(cap * n_label / n)``
examples, at least 1, and the places left go to the largest remainders; examples are drawn with
``numpy.random.default_rng(subsample_seed)``; the kept examples stay in corpus order). The subsample feeds
extraction, DirectProbe and the probes alike; fine-tuning always uses the whole training split.

Relative paths (``output``, ``data_dir``, ``cache_dir``, model directories, ``jsonl:DIR`` tasks) are resolved
against the current directory.

Output paths cannot escape: ``run.name`` is a plain name (no ``/``, ``\\``, ``.`` or ``..``), ``run.output``
has no ``..`` component, and every file a run writes lies below the output directory (named by job ids and
:func:`tuneprobe.experiments.plan.safe_name`). An absolute ``output`` is the config author's explicit choice
and is allowed (``--dry-run`` prints it); ``--results`` on the command line overrides it unchecked.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path, PureWindowsPath
from typing import Any

from tuneprobe.errors import TuneprobeError

SPLITS = ("train", "dev", "test")
CHECKPOINT_WORDS = ("all", "ends", "final")
LAYER_WORDS = ("all", "last")


class ConfigError(TuneprobeError):
    """An invalid experiment configuration; the message names the file and the key path."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.key_path = path
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {message}")


# ------------------------------------------------------------------------------------------------------------
# dataclasses (frozen: a config is a value; its parts are hashed into job ids)
Checkpoints = str | tuple[int, ...]
Layers = str | tuple[int, ...]


@dataclass(frozen=True)
class TaskSpec:
    """One task of the grid. ``id`` names it in the results; ``max_examples`` maps split -> cap."""

    id: str
    name: str
    corpus: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    finetune: bool = True
    splits: tuple[str, ...] = ("train", "test")
    max_examples: tuple[tuple[str, int], ...] = ()

    def cap(self, split: str) -> int | None:
        """The subsample cap of ``split`` (None = the whole split)."""
        return dict(self.max_examples).get(split)

    def reader(self) -> dict[str, Any]:
        """What identifies the data: name, corpus, options (JSON-ready; hashed into job ids)."""
        return {"name": self.name, "corpus": self.corpus, "options": dict(self.options)}


@dataclass(frozen=True)
class CellScope:
    """A product of DirectProbe cells: tasks x checkpoints x layers x splits (x real/random)."""

    tasks: tuple[str, ...] | None = None
    checkpoints: Checkpoints = "all"
    layers: Layers = "all"
    splits: tuple[str, ...] | None = None
    random_control: bool = False
    tuned_on: tuple[str, ...] | None = None  # None: tuned on the measured task itself


@dataclass(frozen=True)
class DirectProbeSettings:
    predict: bool = True
    min_cluster_size: int = 1
    control_seed: int = 0
    cells: tuple[CellScope, ...] = (CellScope(),)


@dataclass(frozen=True)
class ProbeSettings:
    enabled: bool = True
    tasks: tuple[str, ...] | None = None
    checkpoints: Checkpoints = "ends"
    layers: Layers = "last"
    hidden_sizes: tuple[int, ...] = (32, 64, 128, 256)
    alphas: tuple[float, ...] = tuple(float(10.0**e) for e in range(-7, 1))
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_iter: int = 1000
    selection: str = "dev"
    holdout_fraction: float = 0.1
    workers: int | None = None

    def search_options(self) -> dict[str, Any]:
        """Keyword arguments of ``tuneprobe.probes.ProbeSearch`` (JSON-ready; hashed into job ids)."""
        return {
            "hidden_sizes": list(self.hidden_sizes),
            "alphas": list(self.alphas),
            "seeds": list(self.seeds),
            "max_iter": self.max_iter,
            "holdout_fraction": self.holdout_fraction,
        }


@dataclass(frozen=True)
class CrossTask:
    task: str
    tuned_on: tuple[str, ...]
    checkpoints: Checkpoints = "ends"
    layers: Layers = "last"
    splits: tuple[str, ...] = ("train",)
    probe: bool = True
    random_control: bool = False


@dataclass(frozen=True)
class AnalysesSettings:
    train_test_similarity: bool = True
    similarity_to_original: bool = True
    outside_min_change: bool = True
    centroid_paths: bool = True
    centroid_paths_layers: tuple[int, ...] = (1, -1)
    centroid_shift: bool = True
    models_table: bool = True
    tasks_table: bool = True


@dataclass(frozen=True)
class ExtractSettings:
    pooling: str = "mean"
    sentence_pooling: str = "cls"
    batch_size: int = 64
    max_length: int | None = None

    def options(self) -> dict[str, Any]:
        """JSON-ready; what changes the vectors (batch size only changes float rounding, but is kept)."""
        return {
            "pooling": self.pooling,
            "sentence_pooling": self.sentence_pooling,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
        }


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment (see the module docstring)."""

    name: str
    source: str
    models: tuple[str, ...]
    tasks: tuple[TaskSpec, ...]
    seeds: tuple[int, ...] = (0,)
    output: str = ""
    device: str = "auto"
    data_dir: str | None = None
    cache_dir: str | None = None
    subsample_seed: int = 0
    finetune: tuple[tuple[str, Any], ...] = ()
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    directprobe: DirectProbeSettings = field(default_factory=DirectProbeSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    cross_task: tuple[CrossTask, ...] = ()
    analyses: AnalysesSettings = field(default_factory=AnalysesSettings)
    raw: str = ""  # the TOML text as read (written to run.json)

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def finetune_settings(self) -> dict[str, Any]:
        """The ``[finetune]`` table as given (FinetuneConfig keyword arguments, without seed and device)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.finetune}

    def finetune_config(self, seed: int, device: str | None = None) -> Any:
        """A ``tuneprobe.finetune.FinetuneConfig`` for one run."""
        from tuneprobe.finetune.config import FinetuneConfig

        return FinetuneConfig(**self.finetune_settings(), seed=seed, device=device or self.device)

    def with_overrides(self, *, output: str | None = None, device: str | None = None) -> ExperimentConfig:
        """A copy with the command line's ``--results`` / ``--device`` applied."""
        from dataclasses import replace

        if device is not None and not _valid_device(device):
            raise ConfigError(
                self.source, "--device", f"expected auto, cpu, cuda, cuda:N or mps, got {device!r}"
            )
        return replace(self, output=output or self.output, device=device or self.device)


# ------------------------------------------------------------------------------------------------------------
# reading and validation
class _Reader:
    """Typed access to one TOML table that remembers its key path and rejects unknown keys."""

    def __init__(self, source: str, table: Mapping[str, Any], path: str) -> None:
        self.source = source
        self.table = table
        self.path = path
        self.seen: set[str] = set()

    def where(self, key: str | None = None) -> str:
        if key is None:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.source, self.where(key), message)

    def has(self, key: str) -> bool:
        return key in self.table

    def get(self, key: str, kind: str, default: Any = None, required: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if required:
                raise self.fail(key, f"required key missing (expected {kind})")
            return default
        return _check(self, key, self.table[key], kind)

    def sub(self, key: str) -> _Reader:
        self.seen.add(key)
        value = self.table.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a table, got {_show(value)}")
        return _Reader(self.source, value, self.where(key))

    def subs(self, key: str) -> list[_Reader]:
        self.seen.add(key)
        value = self.table.get(key, [])
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.fail(key, f"expected an array of tables ([[{self.where(key)}]]), got {_show(value)}")
        return [_Reader(self.source, v, f"{self.where(key)}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            valid = ", ".join(sorted(self.seen)) or "none"
            raise self.fail(
                unknown[0], f"unknown key {unknown[0]!r} in [{self.path or 'top level'}]; valid keys: {valid}"
            )


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _check(r: _Reader, key: str, value: Any, kind: str) -> Any:
    """Validate ``value`` against ``kind``: str, int, float, bool, optional types (``int?``), lists
    (``[int]``, ``[str]``, ``[float]``), ``checkpoints``, ``layers``, ``snapshots``, ``any``."""
    if kind.endswith("?"):
        return None if value is None else _check(r, key, value, kind[:-1])
    if kind == "any":
        return value
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise r.fail(key, f"expected a non-empty string, got {_show(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise r.fail(key, f"expected true or false, got {_show(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise r.fail(key, f"expected an integer, got {_show(value)}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise r.fail(key, f"expected a number, got {_show(value)}")
        return float(value)
    if kind.startswith("["):
        inner = kind[1:-1]
        if not isinstance(value, list):
            raise r.fail(key, f"expected an array of {inner}, got {_show(value)}")
        return tuple(_check(r, f"{key}[{i}]", v, inner) for i, v in enumerate(value))
    if kind == "checkpoints":
        if isinstance(value, str):
            if value not in CHECKPOINT_WORDS:
                raise r.fail(key, f"expected one of {', '.join(CHECKPOINT_WORDS)} or a list of update counts")
            return value
        steps = _check(r, key, value, "[int]")
        if not steps or any(s < 0 for s in steps):
            raise r.fail(key, "expected a non-empty list of update counts >= 0")
        return tuple(sorted(set(steps)))
    if kind == "layers":
        if isinstance(value, str):
            if value not in LAYER_WORDS:
                raise r.fail(key, f"expected one of {', '.join(LAYER_WORDS)} or a list of layer indices")
            return value
        layers = _check(r, key, value, "[int]")
        if not layers:
            raise r.fail(key, "expected a non-empty list of layer indices")
        return tuple(dict.fromkeys(layers))
    if kind == "snapshots":
        if isinstance(value, str):
            return value
        steps = _check(r, key, value, "[int]")
        return tuple(steps)
    raise AssertionError(kind)


def _splits(r: _Reader, key: str, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    value = r.get(key, "[str]?", default)
    if value is None:
        return None
    if not value:
        raise r.fail(key, "expected a non-empty list of splits")
    for i, s in enumerate(value):
        if s not in SPLITS:
            raise r.fail(f"{key}[{i}]", f"unknown split {s!r}; expected one of {', '.join(SPLITS)}")
    return tuple(dict.fromkeys(value))


def _positive(r: _Reader, key: str, value: int | None, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise r.fail(key, f"must be >= {minimum}, got {value}")


# FinetuneConfig fields settable from [finetune], with their kinds
_FINETUNE_KEYS: dict[str, str] = {
    "epochs": "int?",
    "lr": "float",
    "batch_size": "int",
    "warmup": "float",
    "snapshots": "snapshots",
    "max_steps": "int?",
    "weight_decay": "float",
    "adam_betas": "[float]",
    "adam_eps": "float",
    "max_grad_norm": "float?",
    "pooling": "str",
    "sentence_pooling": "str",
    "sentence_head": "str",
    "max_length": "int?",
    "head_init_std": "float?",
    "keep_resume": "str",
}


def _read_finetune(r: _Reader) -> tuple[tuple[str, Any], ...]:
    from tuneprobe.finetune.config import FinetuneConfig, parse_snapshots

    out: dict[str, Any] = {}
    for key, kind in _FINETUNE_KEYS.items():
        if r.has(key):
            out[key] = r.get(key, kind)
    r.done()
    if "adam_betas" in out and len(out["adam_betas"]) != 2:
        raise r.fail("adam_betas", "expected two numbers [beta1, beta2]")
    for key, allowed in (
        ("pooling", ("mean", "first", "last")),
        ("sentence_pooling", ("cls", "mean")),
        ("sentence_head", ("linear", "pooler")),
        ("keep_resume", ("last", "all")),
    ):
        if key in out and out[key] not in allowed:
            raise r.fail(key, f"expected one of {', '.join(allowed)}, got {out[key]!r}")
    if "snapshots" in out:
        try:
            parse_snapshots(out["snapshots"], 10**6)
        except TuneprobeError as exc:
            raise r.fail("snapshots", str(exc)) from None
    try:
        FinetuneConfig(**out)
    except TuneprobeError as exc:
        bad = next((k for k in out if k.replace("_", " ") in str(exc) or k in str(exc)), None)
        raise r.fail(bad, str(exc)) from None
    return tuple(sorted(out.items()))


def _read_scope(r: _Reader, default_checkpoints: str = "all", default_layers: str = "all") -> CellScope:
    scope = CellScope(
        tasks=r.get("tasks", "[str]?"),
        checkpoints=r.get("checkpoints", "checkpoints", default_checkpoints),
        layers=r.get("layers", "layers", default_layers),
        splits=_splits(r, "splits", None),
        random_control=r.get("random_control", "bool", False),
    )
    r.done()
    return scope


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment TOML file. Raises :class:`ConfigError` (file + key path + what)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"cannot be read ({exc})") from None
    return parse_config(text, source=source, default_name=path.stem)


def parse_config(text: str, source: str = "<config>", default_name: str = "experiment") -> ExperimentConfig:
    """Validate the TOML ``text`` (see the module docstring); ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML ({exc})") from None
    top = _Reader(source, data, "")

    run = top.sub("run")
    name = run.get("name", "str", default_name)
    models = run.get("models", "[str]", required=True)
    if not models:
        raise run.fail("models", "expected at least one model")
    if len(set(models)) != len(models):
        raise run.fail("models", "models must be distinct")
    seeds = run.get("seeds", "[int]", (0,))
    if not seeds or len(set(seeds)) != len(seeds):
        raise run.fail("seeds", "expected a non-empty list of distinct seeds")
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise run.fail("name", f"expected a plain name (no '/', '\\', '.' or '..'), got {name!r}")
    output = run.get("output", "str", f"results/{name}")
    if ".." in Path(output).parts or ".." in PureWindowsPath(output).parts:
        raise run.fail(
            "output", f"{output!r} leaves its directory ('..'); a config's output may not escape it"
        )
    device = run.get("device", "str", "auto")
    if not _valid_device(device):
        raise run.fail("device", f"expected auto, cpu, cuda, cuda:N or mps, got {device!r}")
    data_dir = run.get("data_dir", "str?")
    cache_dir = run.get("cache_dir", "str?")
    subsample_seed = run.get("subsample_seed", "int", 0)
    run.done()

    tasks: list[TaskSpec] = []
    task_readers = top.subs("tasks")
    if not task_readers:
        raise top.fail("tasks", "expected at least one [[tasks]] table")
    for tr in task_readers:
        tname = tr.get("name", "str", required=True)
        options = tr.get("options", "any", {})
        if not isinstance(options, Mapping):
            raise tr.fail("options", f"expected a table of task options, got {_show(options)}")
        for k, v in options.items():
            if not isinstance(v, str | int | float | bool):
                raise tr.fail(f"options.{k}", f"expected a string, number or boolean, got {_show(v)}")
        caps = tr.get("max_examples", "any", {})
        if not isinstance(caps, Mapping):
            raise tr.fail("max_examples", f"expected a table split -> count, got {_show(caps)}")
        for k, v in caps.items():
            if k not in SPLITS:
                raise tr.fail(
                    f"max_examples.{k}", f"unknown split {k!r}; expected one of {', '.join(SPLITS)}"
                )
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise tr.fail(f"max_examples.{k}", f"expected an integer >= 2, got {_show(v)}")
        spec = TaskSpec(
            id=tr.get("id", "str", tname),
            name=tname,
            corpus=tr.get("corpus", "str?"),
            options=tuple(sorted(options.items())),
            finetune=tr.get("finetune", "bool", True),
            splits=_splits(tr, "splits", ("train", "test")) or ("train", "test"),
            max_examples=tuple(sorted(caps.items())),
        )
        if "train" not in spec.splits:
            raise tr.fail("splits", "the train split is always needed (fine-tuning, probes, DirectProbe)")
        tr.done()
        if any(t.id == spec.id for t in tasks):
            raise tr.fail("id", f"duplicate task id {spec.id!r}; give one of them another id")
        tasks.append(spec)
    ids = [t.id for t in tasks]

    def check_tasks(r: _Reader, key: str, values: Sequence[str] | None, tuned: bool = False) -> None:
        for i, v in enumerate(values or ()):
            if v not in ids:
                raise r.fail(f"{key}[{i}]", f"unknown task id {v!r}; tasks: {', '.join(ids)}")
            if tuned and not next(t for t in tasks if t.id == v).finetune:
                raise r.fail(f"{key}[{i}]", f"task {v!r} has finetune = false, so nothing is tuned on it")

    finetune = _read_finetune(top.sub("finetune"))

    er = top.sub("extract")
    extract = ExtractSettings(
        pooling=er.get("pooling", "str", "mean"),
        sentence_pooling=er.get("sentence_pooling", "str", "cls"),
        batch_size=er.get("batch_size", "int", 64),
        max_length=er.get("max_length", "int?"),
    )
    if extract.pooling not in ("mean", "first", "last"):
        raise er.fail("pooling", f"expected mean, first or last, got {extract.pooling!r}")
    if extract.sentence_pooling not in ("cls", "mean"):
        raise er.fail("sentence_pooling", f"expected cls or mean, got {extract.sentence_pooling!r}")
    _positive(er, "batch_size", extract.batch_size)
    _positive(er, "max_length", extract.max_length, 8)
    er.done()

    dr = top.sub("directprobe")
    scopes = []
    cell_readers = dr.subs("cells")
    for cr in cell_readers:
        scope = _read_scope(cr)
        check_tasks(cr, "tasks", scope.tasks)
        scopes.append(scope)
    directprobe = DirectProbeSettings(
        predict=dr.get("predict", "bool", True),
        min_cluster_size=dr.get("min_cluster_size", "int", 1),
        control_seed=dr.get("control_seed", "int", 0),
        cells=tuple(scopes) if cell_readers else (CellScope(),),
    )
    _positive(dr, "min_cluster_size", directprobe.min_cluster_size)
    dr.done()

    pr = top.sub("probe")
    defaults = ProbeSettings()
    probe = ProbeSettings(
        enabled=pr.get("enabled", "bool", True),
        tasks=pr.get("tasks", "[str]?"),
        checkpoints=pr.get("checkpoints", "checkpoints", "ends"),
        layers=pr.get("layers", "layers", "last"),
        hidden_sizes=pr.get("hidden_sizes", "[int]", defaults.hidden_sizes),
        alphas=pr.get("alphas", "[float]", defaults.alphas),
        seeds=pr.get("seeds", "[int]", defaults.seeds),
        max_iter=pr.get("max_iter", "int", 1000),
        selection=pr.get("selection", "str", "dev"),
        holdout_fraction=pr.get("holdout_fraction", "float", 0.1),
        workers=pr.get("workers", "int?"),
    )
    check_tasks(pr, "tasks", probe.tasks)
    for key in ("hidden_sizes", "alphas", "seeds"):
        if not getattr(probe, key):
            raise pr.fail(key, "expected a non-empty list")
    if any(h < 1 for h in probe.hidden_sizes):
        raise pr.fail("hidden_sizes", "hidden sizes must be >= 1")
    if any(a < 0 for a in probe.alphas):
        raise pr.fail("alphas", "alphas must be >= 0")
    _positive(pr, "max_iter", probe.max_iter)
    _positive(pr, "workers", probe.workers)
    if probe.selection not in ("dev", "holdout"):
        raise pr.fail("selection", f"expected dev or holdout, got {probe.selection!r}")
    if not 0 < probe.holdout_fraction < 1:
        raise pr.fail("holdout_fraction", f"expected a fraction in (0, 1), got {probe.holdout_fraction}")
    pr.done()

    cross = []
    for xr in top.subs("cross_task"):
        item = CrossTask(
            task=xr.get("task", "str", required=True),
            tuned_on=xr.get("tuned_on", "[str]", required=True),
            checkpoints=xr.get("checkpoints", "checkpoints", "ends"),
            layers=xr.get("layers", "layers", "last"),
            splits=_splits(xr, "splits", ("train",)) or ("train",),
            probe=xr.get("probe", "bool", True),
            random_control=xr.get("random_control", "bool", False),
        )
        xr.done()
        check_tasks(xr, "task", [item.task])
        check_tasks(xr, "tuned_on", item.tuned_on, tuned=True)
        if not item.tuned_on:
            raise xr.fail("tuned_on", "expected at least one task id")
        if item.task in item.tuned_on:
            raise xr.fail(
                "tuned_on", f"{item.task!r} tuned on itself is the ordinary grid, not a cross-task run"
            )
        missing = [s for s in item.splits if s not in config_task_splits(tasks, item.task)]
        if missing:
            raise xr.fail("splits", f"task {item.task!r} does not measure split(s) {', '.join(missing)}")
        cross.append(item)

    ar = top.sub("analyses")
    analyses = AnalysesSettings(
        **{
            f.name: ar.get(f.name, "[int]" if f.name == "centroid_paths_layers" else "bool", f.default)
            for f in fields(AnalysesSettings)
        }
    )
    ar.done()
    top.done()
    return ExperimentConfig(
        name=name,
        source=source,
        models=tuple(models),
        tasks=tuple(tasks),
        seeds=tuple(seeds),
        output=output,
        device=device,
        data_dir=data_dir,
        cache_dir=cache_dir,
        subsample_seed=subsample_seed,
        finetune=finetune,
        extract=extract,
        directprobe=directprobe,
        probe=probe,
        cross_task=tuple(cross),
        analyses=analyses,
        raw=text,
    )


def _valid_device(device: str) -> bool:
    return device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit())


def config_task_splits(tasks: Sequence[TaskSpec], task_id: str) -> tuple[str, ...]:
    """The measured splits of the task ``task_id``."""
    return next(t.splits for t in tasks if t.id == task_id)
