"""The tiny model's vocabulary: words `w0 … w{VOCAB_SIZE-1}`, one token per word. Pure.

The local stack's generated tokenizer (a `tokenizers` WordLevel model with a whitespace
pre-tokenizer) maps word `w<i>` to token id `i + len(SPECIAL_TOKENS)`; its chat template
joins the messages' contents with single spaces and adds nothing else, so a prompt's token
count is exactly its number of words. Workload generators build prompts from these words.
"""

from __future__ import annotations

from collections.abc import Iterable

VOCAB_SIZE = 16384
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")


def word(i: int) -> str:
    """The word for vocabulary index `i` (0 <= i < VOCAB_SIZE)."""
    if not 0 <= i < VOCAB_SIZE:
        raise ValueError(f"`0 <= i < {VOCAB_SIZE}` must hold, but got {i=}.")
    return f"w{i}"


def text(indices: Iterable[int]) -> str:
    """Space-joined words for `indices`: one token per index on the tiny model."""
    return " ".join(word(i) for i in indices)
