"""The local stack end to end: real frontend, mocker workers and Prometheus."""

from __future__ import annotations

import httpx
import pytest

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.vocab import text

pytestmark = pytest.mark.integration


async def chat(client: httpx.AsyncClient, url: str, model: str, content: str) -> dict:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usage: dict = {}
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        import json

        async for line in response.aiter_lines():
            if line.startswith("data:") and line != "data: [DONE]":
                chunk = json.loads(line.removeprefix("data:"))
                usage = chunk.get("usage") or usage
    return usage


async def test_repeat_prompt_hits_cache(local_stack: LocalStack) -> None:
    ep = local_stack.endpoints()
    prompt = text(range(1000, 1200))
    async with httpx.AsyncClient(timeout=30) as client:
        first = await chat(client, ep.frontend_url, ep.model, prompt)
        second = await chat(client, ep.frontend_url, ep.model, prompt)
    assert first["prompt_tokens"] == 200
    assert second["prompt_tokens_details"]["cached_tokens"] > 0
