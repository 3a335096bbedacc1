"""KVE ceiling on hand-computed cases."""

from __future__ import annotations

import pytest

from dynamo_tune.workload.agentic import agentic_plan
from dynamo_tune.workload.ceiling import kve_ceiling, reusable_tokens
from dynamo_tune.workload.spec import AgenticWorkloadSpec


def test_identical_prompts_reuse_full_blocks_only() -> None:
    # 10 tokens, block 4: the 2 full blocks (8 tokens) are reusable, the partial one never
    prompt = list(range(10))
    assert reusable_tokens([prompt, prompt], 4) == [0, 8]
    assert kve_ceiling([prompt, prompt], 4) == pytest.approx(8 / 20)


def test_prefix_must_match_from_the_start() -> None:
    a = [1, 2, 3, 4, 5, 6, 7, 8]
    b = [9, 9, 9, 9, 5, 6, 7, 8]  # second block equal to a's, but after a different first block
    c = [1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8]
    assert reusable_tokens([a, b, c], 4) == [0, 0, 4]
    assert kve_ceiling([a, b, c], 4) == pytest.approx(4 / 28)


def test_order_matters_and_scan_stops_at_first_miss() -> None:
    short = [1, 2, 3, 4]
    long = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4]
    assert reusable_tokens([short, long], 4) == [0, 4]
    assert reusable_tokens([long, short], 4) == [0, 4]
    # long's third block equals its first, but the chained prefix differs: not reusable
    assert reusable_tokens([long, long], 4) == [0, 12]


def test_empty_and_invalid() -> None:
    assert kve_ceiling([], 16) is None
    assert kve_ceiling([[]], 16) is None
    with pytest.raises(ValueError, match="block_size >= 1"):
        kve_ceiling([[1]], 0)


def test_agentic_ceiling_by_hand() -> None:
    # 2 sessions x 2 turns, block 16: system 32 (2 blocks), context 16, appended 16, output 16.
    spec = AgenticWorkloadSpec.model_validate(
        {
            "kind": "agentic",
            "sessions": 2,
            "turns": 2,
            "system_prompt_tokens": 32,
            "session_context_tokens": 16,
            "appended_tokens": 16,
            "output_tokens": 16,
        }
    )
    plan = agentic_plan(spec)
    # turn 0 prompts: 64 tokens each; s0 reuses nothing, s1 reuses the 32-token system prompt.
    # turn 1 prompts: 64 + 16 (reply) + 16 = 96 tokens each; each reuses its own turn-0 prompt.
    assert [r.prompt_length for r in plan] == [64, 64, 96, 96]
    assert reusable_tokens((r.prompt_tokens for r in plan), 16) == [0, 32, 64, 64]
    assert kve_ceiling((r.prompt_tokens for r in plan), 16) == pytest.approx(160 / 320)
