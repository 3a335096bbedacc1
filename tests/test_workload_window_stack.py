"""When Dynamo's frontend records each metric, checked on the real frontend: the facts the
window rule of `workload/summary.py` is built on (docs/architecture.md, "The measured window").

One streamed chat request, sent twice (the second finds its prompt cached); the frontend's
`/metrics` is read before it, right after its first content chunk and after its end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.spec import MockerSpec
from dynamo_tune.workload.payload import BASE_HEADERS, CHAT_PATH

pytestmark = pytest.mark.integration

SLOW_MOCKER = MockerSpec(speedup_ratio=1.0, block_size=16, num_gpu_blocks=512)
OUTPUT_TOKENS = 24
SERIES = {
    "first_tokens": "dynamo_frontend_time_to_first_token_seconds_count",
    "input_tokens": "dynamo_frontend_input_sequence_tokens_sum",
    "cached_tokens": "dynamo_frontend_cached_tokens_sum",
    "cached_count": "dynamo_frontend_cached_tokens_count",
    "gaps": "dynamo_frontend_inter_token_latency_seconds_count",
}


async def counts(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The frontend's counters of `SERIES`, summed over label sets (absent: 0)."""
    text = (await client.get(f"{url}/metrics")).text
    found = dict.fromkeys(SERIES, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for key, name in SERIES.items():
                if sample.name == name:
                    found[key] += sample.value
    return found


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in SERIES}


async def test_first_token_and_end_counters(stack_factory: Callable[..., LocalStack]) -> None:
    stack = stack_factory(workers=1, mocker=SLOW_MOCKER, prometheus=False)
    url = stack.frontend_url
    words = " ".join(f"w{i % 50}" for i in range(200))
    body: dict[str, Any] = {
        "model": stack.spec.model_name,
        "messages": [{"role": "user", "content": words}],
        "max_tokens": OUTPUT_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    async with httpx.AsyncClient(timeout=30) as client:
        for attempt in ("cold", "cached"):
            before = await counts(client, url)
            usage: dict[str, Any] = {}
            mid: dict[str, float] | None = None
            chunks = 0
            async with client.stream(
                "POST", url + CHAT_PATH, json=body, headers=BASE_HEADERS
            ) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if not line.startswith("data:") or line.endswith("[DONE]"):
                        continue
                    chunk = json.loads(line[5:])
                    if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                        chunks += 1
                        if mid is None:  # the first token has been sent
                            mid = await counts(client, url)
                    usage = chunk.get("usage") or usage
            after = await counts(client, url)
            assert mid is not None and chunks == OUTPUT_TOKENS, attempt
            prompt = usage["prompt_tokens"]
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
            # At the first token: TTFT and the prompt's input tokens; nothing of the end yet.
            assert delta(mid, before) == {
                "first_tokens": 1,
                "input_tokens": prompt,
                "cached_tokens": 0,
                "cached_count": 0,
                "gaps": 0,
            }, attempt
            # At the end: the cached tokens and every inter-token gap at once.
            assert delta(after, mid) == {
                "first_tokens": 0,
                "input_tokens": 0,
                "cached_tokens": cached,
                "cached_count": 1,
                "gaps": OUTPUT_TOKENS - 1,
            }, attempt
            if attempt == "cached":
                assert cached > 0
