"""Tiny random BERT models and a small word-piece vocabulary for fast, offline tests (no hub access)."""

from __future__ import annotations

from pathlib import Path

from tuneprobe.tasks.base import Example, Split

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "a",
    "dog",
    "runs",
    "in",
    "house",
    "big",
    "red",
    ".",
    ",",
    "?",
    "what",
    "is",
    "who",
    "un",
    "##believ",
    "##able",
    "play",
    "##ing",
    "##ed",
    "##s",
    "quick",
    "##ly",
    "jump",
    "over",
    "lazy",
    "fox",
    "brown",
    "over",
    "##er",
    "to",
    "of",
    "and",
]


def write_vocab(directory: Path) -> Path:
    """Write ``vocab.txt`` (distinct tokens, one a line) into ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []
    for tok in VOCAB:
        if tok not in seen:
            seen.append(tok)
    path = directory / "vocab.txt"
    path.write_text("\n".join(seen) + "\n")
    return path


def make_tiny(
    directory: Path, max_position_embeddings: int = 64, seed: int = 0, layers: int = 2, hidden: int = 16
):
    """A random ``BertModel`` (eval mode) and a ``BertTokenizerFast`` built from a small vocab in
    ``directory``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = write_vocab(directory)
    tok = BertTokenizerFast.from_pretrained(vocab.parent, do_lower_case=True)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=max_position_embeddings,
    )
    model = BertModel(cfg).eval()
    return model, tok


def save_tiny(directory: Path, **kwargs) -> Path:
    """Save a tiny model + tokenizer as a model directory (safetensors) and return the directory."""
    model, tok = make_tiny(directory, **kwargs)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


SENTENCES: list[tuple[str, ...]] = [
    ("The", "cat", "sat", "on", "the", "mat", "."),
    ("A", "dog", "unbelievable", "playing", "runs", "."),
    ("What", "is", "a", "quickly", "jumped", "fox", "?"),
    ("big", "red", "house"),
]


def token_split(sentences=SENTENCES, name: str = "train") -> Split:
    """A token-unit split: every word of every sentence, labelled by its length parity."""
    ex = [
        Example(s, (i,), "even" if len(w) % 2 == 0 else "odd", f"s{s}:w{i}")
        for s, words in enumerate(sentences)
        for i, w in enumerate(words)
    ]
    return Split(
        task="toy-token",
        corpus="toy",
        name=name,
        unit_kind="token",
        sentences=list(sentences),
        sentence_ids=[f"s{i}" for i in range(len(sentences))],
        examples=ex,
    )


def pair_split(sentences=SENTENCES) -> Split:
    """A pair-unit split: (i, i+1) pairs and one reversed pair per sentence."""
    ex = []
    for s, words in enumerate(sentences):
        for i in range(len(words) - 1):
            ex.append(Example(s, (i + 1, i), "next", f"s{s}:p{i}"))
        ex.append(Example(s, (0, len(words) - 1), "far", f"s{s}:far"))
    return Split(
        task="toy-pair",
        corpus="toy",
        name="train",
        unit_kind="pair",
        sentences=list(sentences),
        sentence_ids=[f"s{i}" for i in range(len(sentences))],
        examples=ex,
    )


def sentence_split(sentences=SENTENCES) -> Split:
    """A sentence-unit split: one example per sentence."""
    ex = [Example(s, (), "q" if words[-1] == "?" else "s", f"s{s}") for s, words in enumerate(sentences)]
    return Split(
        task="toy-sent",
        corpus="toy",
        name="train",
        unit_kind="sentence",
        sentences=list(sentences),
        sentence_ids=[f"s{i}" for i in range(len(sentences))],
        examples=ex,
    )
