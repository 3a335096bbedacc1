"""The KVE ceiling: the best KV efficiency any router could reach with unlimited cache. Pure.

Prompts are taken in arrival order. A prompt's leading full blocks of `block_size` tokens
count as reusable when the same block-aligned prefix (the same tokens from position 0 up to
that block's end) appeared in an earlier prompt; the scan stops at the first block not seen.
Partial trailing blocks are never reusable (KV caches hold whole blocks).

    ceiling = sum(reusable blocks * block_size) / sum(prompt tokens)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def reusable_tokens(prompts: Iterable[Sequence[int]], block_size: int) -> list[int]:
    """For each prompt (in arrival order), the tokens of its already-seen block prefix."""
    if block_size < 1:
        raise ValueError(f"`block_size >= 1` must hold, but got {block_size=}.")
    seen: set[int] = set()
    result: list[int] = []
    for prompt in prompts:
        key = 0
        reused = 0
        matching = True
        for start in range(0, len(prompt) - block_size + 1, block_size):
            # A chained key names the whole prefix up to this block, not the block alone.
            key = hash((key, tuple(prompt[start : start + block_size])))
            if matching and key in seen:
                reused += block_size
            else:
                matching = False
                seen.add(key)
        result.append(reused)
    return result


def kve_ceiling(prompts: Iterable[Sequence[int]], block_size: int) -> float | None:
    """sum(reusable tokens) / sum(prompt tokens); None when there are no prompt tokens."""
    prompts = list(prompts)
    total = sum(len(p) for p in prompts)
    if total == 0:
        return None
    return sum(reusable_tokens(prompts, block_size)) / total
