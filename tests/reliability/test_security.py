"""Safe loading: no remote code without the flag, no pickle, data parsed as data, outputs kept in their
directory.

``tuneprobe explore --serve`` (issue 7: "binds to 127.0.0.1 only"):
``test_explore_serve_binds_localhost_only``.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

SRC = Path(__file__).parents[2] / "src" / "tuneprobe"


# ------------------------------------------------------------------------------------------------------------
# remote code


def _model_with_custom_code(root: Path, tiny: object, marker: Path) -> Path:
    """A tiny BERT directory whose config asks for custom code (``auto_map``); importing that code creates
    ``marker``."""
    d = tiny.save_tiny(root)  # type: ignore[attr-defined]
    code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    code += "from transformers import BertConfig, BertModel\n"
    code += "class EvilConfig(BertConfig):\n    model_type = 'bert'\n"
    code += "class EvilModel(BertModel):\n    config_class = EvilConfig\n"
    (d / "evil.py").write_text(code)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def test_remote_code_runs_only_with_the_flag(tmp_path: Path, tiny: object) -> None:
    from tuneprobe.encoders.load import load_encoder, load_encoder_dir

    marker = tmp_path / "marker"
    d = _model_with_custom_code(tmp_path / "m", tiny, marker)
    for load in (lambda: load_encoder(str(d), device="cpu"), lambda: load_encoder_dir(d, device="cpu")):
        try:
            enc = load()
        except Exception as exc:  # refusing is as good as ignoring the custom code
            assert "trust_remote_code" in str(exc), exc
        else:
            assert type(enc.full_model).__name__ == "BertModel"
        assert not marker.exists()
    # the same directory with the explicit flag runs the custom code: the test above can fail
    load_encoder_dir(d, device="cpu", trust_remote_code=True)
    assert marker.read_text() == "ran"


def test_cli_and_finetune_never_trust_remote_code_by_default(
    tmp_path: Path, tiny: object, h: SimpleNamespace, token_split_small: object
) -> None:
    from tuneprobe.finetune import FinetuneConfig, finetune

    marker = tmp_path / "marker"
    d = _model_with_custom_code(tmp_path / "m", tiny, marker)
    task = h.write_task(tmp_path / "task", h.length_label)
    code, out = h.cli(
        ["extract", f"jsonl:{task}", "--model", d, "--cache-dir", tmp_path / "c", "--device", "cpu"]
        + ["--no-progress"]
    )
    assert code == 0, out
    assert not marker.exists()
    cfg = FinetuneConfig(batch_size=4, max_steps=1, snapshots="0", device="cpu")
    finetune(token_split_small, model=str(d), out=tmp_path / "ft", config=cfg, progress=False)
    assert not marker.exists()
    # the finetune command has no way to turn it on; extract has an explicit, default-off flag
    from typer.main import get_command

    from tuneprobe.cli import app

    cmds = get_command(app).commands  # type: ignore[attr-defined]
    assert not any("trust" in p.name for p in cmds["finetune"].params)
    flag = next(p for p in cmds["extract"].params if p.name == "trust_remote_code")
    assert flag.default is False


def test_config_cannot_ask_for_remote_code(tmp_path: Path, tiny_dir: Path, task_dirs, tiny_toml) -> None:
    from tuneprobe.experiments.config import ConfigError, parse_config

    text = tiny_toml(tiny_dir, *task_dirs, tmp_path / "o", tmp_path / "c", run="trust_remote_code = true")
    with pytest.raises(ConfigError, match="unknown key 'trust_remote_code'"):
        parse_config(text, source="x.toml")


# ------------------------------------------------------------------------------------------------------------
# pickle


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_weights_are_never_unpickled(tmp_path: Path, tiny: object) -> None:
    """A model directory whose weights are a ``pytorch_model.bin`` carrying a pickle payload: loading it is
    refused or done with ``torch.load(weights_only=True)``; the payload never runs."""
    from tuneprobe.encoders.load import load_encoder_dir
    from tuneprobe.errors import TuneprobeError
    from tuneprobe.finetune.snapshot import load_model_state

    d = tiny.save_tiny(tmp_path / "m")  # type: ignore[attr-defined]
    (d / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    with open(d / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"embeddings.word_embeddings.weight": _Payload(marker)}, fh)
    with pytest.raises(TuneprobeError):
        load_encoder_dir(d, device="cpu")
    with pytest.raises(TuneprobeError, match="no safetensors weights"):
        load_model_state(d)  # snapshots are read from safetensors only
    assert not marker.exists()


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            base = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            out.append((f"{base}.{name}" if base else name, node))
    return out


def _kw(call: ast.Call, name: str) -> object:
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


def test_source_has_no_unsafe_loader_or_eval() -> None:
    """Every loader in the package, read from its syntax tree: ``torch.load`` only with
    ``weights_only=True``; no ``pickle``/``marshal``/``dill`` loads, no ``yaml.load``, no ``eval``/``exec``;
    ``np.load`` never with ``allow_pickle=True`` (numpy's default is False); HF ``from_pretrained`` never
    with a literal ``trust_remote_code=True``."""
    problems: list[str] = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30
    for path in files:
        for name, call in _calls(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(SRC.parent)}:{call.lineno}: {name}"
            if name == "torch.load" and _kw(call, "weights_only") is not True:
                problems.append(where + " without weights_only=True")
            if name in {"pickle.load", "pickle.loads", "marshal.loads", "dill.load", "yaml.load"}:
                problems.append(where)
            if name in {"eval", "exec", "builtins.eval", "builtins.exec"} and not isinstance(
                call.func, ast.Attribute
            ):
                problems.append(where)
            if name in {"np.load", "numpy.load"} and _kw(call, "allow_pickle") is True:
                problems.append(where + " with allow_pickle=True")
            if name.endswith("from_pretrained") and _kw(call, "trust_remote_code") is True:
                problems.append(where + " with trust_remote_code=True")
    assert problems == []


def test_checkpoints_are_safetensors_only(tmp_path: Path, tiny_dir: Path, token_split_small: object) -> None:
    """A resumable fine-tuning run writes weights, head, optimizer and RNG state as safetensors and the rest
    as JSON/CSV/text: no pickle-based file anywhere in it."""
    from safetensors import safe_open

    from tuneprobe.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(batch_size=4, max_steps=2, snapshots="0,1,2", device="cpu", keep_resume="all")
    res = finetune(token_split_small, model=str(tiny_dir), out=tmp_path / "ft", config=cfg, progress=False)
    files = [p for p in res.out.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert suffixes <= {".safetensors", ".json", ".csv", ".txt", ""}, suffixes
    assert not [p for p in files if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]
    tensors = [p for p in files if p.suffix == ".safetensors"]
    assert {p.name for p in tensors} >= {"model.safetensors", "optimizer.safetensors", "rng.safetensors"}
    for p in tensors:
        with safe_open(p, "pt") as fh:  # each is a valid safetensors file
            fh.keys()
    for p in files:
        assert not p.read_bytes().startswith(b"\x80"), p  # no pickle stream (protocol 2+) under any name


# ------------------------------------------------------------------------------------------------------------
# data parsed as data


def test_task_files_and_configs_are_data(
    tmp_path: Path, tiny_dir: Path, task_dirs, tiny_toml, h: SimpleNamespace
) -> None:
    """Code-looking strings in a task file and a config stay strings: nothing is evaluated."""
    from tuneprobe.experiments.config import parse_config
    from tuneprobe.tasks import get_task

    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    d = tmp_path / "task"
    d.mkdir()
    rec = {"words": ["the", payload], "unit": [1], "label": payload, "id": "{{7*7}}"}
    (d / "train.jsonl").write_text(json.dumps(rec) + "\n")
    split = get_task(f"jsonl:{d}").load("train")
    ex = split.examples[0]
    assert ex.label == payload and split.sentences[0][1] == payload and ex.id == "{{7*7}}"
    text = tiny_toml(tiny_dir, *task_dirs, tmp_path / "o", tmp_path / "c")
    cfg = parse_config(text.replace('"lengths"', json.dumps(payload)), source="x.toml")
    assert cfg.tasks[0].id == payload and cfg.cross_task[0].tuned_on == (payload,)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------------------
# output paths


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ('name = "../../escaped"', "run.name"),
        ('name = ".."', "run.name"),
        ('output = "results/../../escaped"', "run.output"),
        ('output = "../escaped"', "run.output"),
        ('output = "..\\\\escaped"', "run.output"),
    ],
)
def test_config_output_cannot_escape(
    edit: str, key: str, tmp_path: Path, tiny_dir: Path, task_dirs, tiny_toml, h: SimpleNamespace
) -> None:
    text = tiny_toml(tiny_dir, *task_dirs, "OUT", tmp_path / "cache")
    text = re.sub(r'output = "OUT"\n', "", text)
    text = (
        text.replace('name = "tiny"', edit)
        if edit.startswith("name")
        else text.replace("[run]\n", f"[run]\n{edit}\n")
    )
    cfg = tmp_path / "work" / "x.toml"
    cfg.parent.mkdir()
    cfg.write_text(text)
    cwd = os.getcwd()
    os.chdir(cfg.parent)
    try:
        code, out = h.cli(["run", cfg, "--dry-run"])
    finally:
        os.chdir(cwd)
    assert code == 2 and f"x.toml: {key}: " in out, out
    assert "may not escape" in out or "plain name" in out, out
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_every_planned_file_lies_below_the_results_directory(
    tmp_path: Path, tiny_dir: Path, task_dirs, tiny_toml
) -> None:
    """Task ids, model names and seeds with path syntax cannot move a job's files out of the results
    directory (job files are named by hashes and :func:`safe_name`)."""
    from tuneprobe.experiments.config import parse_config
    from tuneprobe.experiments.execute import RunContext
    from tuneprobe.experiments.plan import build_plan, finetune_run_dir
    from tuneprobe.experiments.runner import job_rows_path

    text = tiny_toml(tiny_dir, *task_dirs, tmp_path / "out", tmp_path / "cache")
    text = text.replace('id = "lengths"', 'id = "../../../tmp/x"').replace('"lengths"', '"../../../tmp/x"')
    text = text.replace('id = "kinds"', 'id = "/etc/kinds"').replace('"kinds"', '"/etc/kinds"')
    cfg = parse_config(text, source="x.toml")
    plan = build_plan(cfg)
    ctx = RunContext(results=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), device="cpu")
    root = (tmp_path / "out").resolve()
    paths = [job_rows_path(ctx.results, j) for j in plan.jobs]
    paths += [ctx.cell_path(j.id) for j in plan.jobs if j.kind == "directprobe"]
    paths += [root / finetune_run_dir(j) for j in plan.jobs if j.kind == "finetune"]
    assert len(paths) > len(plan.jobs)
    for p in paths:
        assert Path(os.path.normpath(p)).resolve().is_relative_to(root), p


# ------------------------------------------------------------------------------------------------------------
# the explorer


def test_explore_serve_binds_localhost_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 7: ``tuneprobe explore --serve`` binds to 127.0.0.1 only. The command offers no option that
    changes the host, and the server it starts (the real ``http.server`` socket) listens on 127.0.0.1."""
    from typer.main import get_command

    from tuneprobe.cli import app
    from tuneprobe.explore import commands as explore_commands

    cmd = get_command(app).commands["explore"]  # type: ignore[attr-defined]
    opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert "--serve" in opts
    assert not any("host" in o or "bind" in o for o in opts), opts

    server = explore_commands.serve(Path.cwd())
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
