"""The words of a hashed block on replay: the same hash, the same words. Pure.

A trace names prompt blocks by hash, never by text; a replay turns each distinct hash into
one block of words drawn from a stream seeded by (seed, stream name, hash), so requests that
shared a block share it again and distinct blocks stay distinct. Used by the Mooncake
(`trace`) and Dynamo (`dynamo_replay`) replays, each with its own stream name.
"""

from __future__ import annotations

import random

from dynamo_tune.workload.agentic import random_words


class BlockWords:
    """The words of each hash's block: drawn once per (hash, block size), then reused."""

    def __init__(self, seed: int, stream: str) -> None:
        self.seed = seed
        self.stream = stream
        self._blocks: dict[tuple[int, int], tuple[int, ...]] = {}

    def block(self, hash_id: int, size: int) -> tuple[int, ...]:
        """`size` vocabulary indices (one word = one token) for `hash_id`."""
        key = (hash_id, size)
        if key not in self._blocks:
            rng = random.Random(f"{self.seed}:{self.stream}:{hash_id}")
            self._blocks[key] = random_words(rng, size)
        return self._blocks[key]
