"""The local stack end to end: real frontend, mocker workers and Prometheus."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_stack_helpers import events_applied, wait_events_applied_above

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.prometheus import PrometheusNotFound
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.deploy.stack_state import pid_alive
from dynamo_tune.errors import DeploymentError
from dynamo_tune.vocab import text

pytestmark = pytest.mark.integration


async def chat(
    client: httpx.AsyncClient, url: str, model: str, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """One streamed chat completion; returns its `usage`."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usage: dict[str, Any] = {}
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data:") and line.strip() != "data: [DONE]":
                usage = json.loads(line.removeprefix("data:")).get("usage") or usage
    return usage


def user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


async def test_repeat_prompt_hits_cache(local_stack: LocalStack) -> None:
    ep = local_stack.endpoints()
    prompt = text(range(1000, 1200))
    async with httpx.AsyncClient(timeout=30) as client:
        before = await events_applied(client, ep.metrics_urls[0])
        first = await chat(client, ep.frontend_url, ep.model, user(prompt))
        # the kv router sends the repeat to the worker holding its blocks once it has applied
        # that worker's KV events; before that, either of the 2 workers may get it
        await wait_events_applied_above(client, ep.metrics_urls[0], before, timeout_s=10)
        second = await chat(client, ep.frontend_url, ep.model, user(prompt))
    assert first["prompt_tokens"] == 200
    assert second["prompt_tokens_details"]["cached_tokens"] > 0


async def test_prompt_tokens_equal_words_across_messages(local_stack: LocalStack) -> None:
    ep = local_stack.endpoints()
    messages = [
        {"role": "system", "content": text(range(50))},
        {"role": "user", "content": text(range(7000, 7033))},
        {"role": "assistant", "content": text(range(9000, 9010))},
        {
            "role": "user",
            "content": [{"type": "text", "text": "w1"}, {"type": "text", "text": "w2"}],
        },
    ]
    async with httpx.AsyncClient(timeout=30) as client:
        usage = await chat(client, ep.frontend_url, ep.model, messages)
    assert usage["prompt_tokens"] == 50 + 33 + 10 + 2


async def test_prometheus_scrapes_frontend_and_every_worker(local_stack: LocalStack) -> None:
    ep = local_stack.endpoints()
    assert ep.prometheus_url is not None and len(ep.metrics_urls) == 3
    async with httpx.AsyncClient(timeout=10) as client:
        body = (await client.get(f"{ep.prometheus_url}/api/v1/targets")).json()
    health = {t["scrapeUrl"]: t["health"] for t in body["data"]["activeTargets"]}
    assert health == {url: "up" for url in ep.metrics_urls}


async def test_frontend_uses_fine_histogram_buckets(local_stack: LocalStack) -> None:
    ep = local_stack.endpoints()
    async with httpx.AsyncClient(timeout=30) as client:
        await chat(client, ep.frontend_url, ep.model, user(text(range(20))))
        metrics = (await client.get(ep.metrics_urls[0])).text
    ttft = [m for m in metrics.splitlines() if m.startswith("dynamo_frontend_time_to_first_token")]
    buckets = [m for m in ttft if "_bucket{" in m]
    # Dynamo's default layout has 19 buckets; 160 requested (a few merge when rounded).
    assert len(buckets) > 0.9 * local_stack.spec.buckets.ttft_count


async def test_apply_restarts_and_stop_leaves_nothing(
    stack_factory: Callable[..., LocalStack],
) -> None:
    stack = stack_factory(isolation="restart")
    ep = stack.endpoints()
    prompt = user(text(range(300, 400)))
    async with httpx.AsyncClient(timeout=30) as client:
        await chat(client, ep.frontend_url, ep.model, prompt)
        pids_before = stack.pids()

        applied = await stack.apply(RouterConfig(mode="round-robin"))
        args = cmdline(stack.pids()["frontend"])
        assert args[args.index("--router-mode") + 1] == "round-robin"
        assert set(applied.restarted) == {"frontend", "worker-0", "worker-1"}
        assert applied.restart_seconds > 0
        # Workers restarted: the repeat prompt finds cold caches.
        cold = await chat(client, ep.frontend_url, ep.model, prompt)
        assert cold["prompt_tokens_details"]["cached_tokens"] == 0

        applied = await stack.apply(RouterConfig(mode="kv", temperature=0.5))
        args = cmdline(stack.pids()["frontend"])
        assert args[args.index("--router-mode") + 1] == "kv"
        assert args[args.index("--router-temperature") + 1] == "0.5"
        assert (
            applied.frontend_args
            == cmdline(stack.pids()["frontend"])[-len(applied.frontend_args) :]
        )

        frontend_pid = stack.pids()["frontend"]
        applied = await stack.apply(RouterConfig(mode="kv", temperature=0.5))
        assert applied.restarted == ["worker-0", "worker-1"]  # same flags: frontend kept
        assert stack.pids()["frontend"] == frontend_pid
        assert (await chat(client, ep.frontend_url, ep.model, prompt))["prompt_tokens"] == 100

        await stack.apply(RouterConfig(mode="kv", block_size=32))  # workers follow the router
        for name in ("worker-0", "worker-1"):
            args = cmdline(stack.pids()[name])
            assert args[args.index("--block-size") + 1] == "32"
        args = cmdline(stack.pids()["frontend"])
        assert args[args.index("--kv-cache-block-size") + 1] == "32"
        warm = await chat(client, ep.frontend_url, ep.model, prompt)
        warm = await chat(client, ep.frontend_url, ep.model, prompt)
        assert warm["prompt_tokens_details"]["cached_tokens"] == 96  # 3 blocks of 32

    all_pids = {**pids_before, **stack.pids()}
    assert set(all_pids) == {"frontend", "worker-0", "worker-1", "prometheus", "zmq-broker"}
    await stack.stop()
    assert not [name for name, pid in {**pids_before, **all_pids}.items() if pid_alive(pid)]
    assert not [pid for pid in pids_before.values() if pid_alive(pid)]


async def test_dead_worker_is_reported_with_its_log(
    stack_factory: Callable[..., LocalStack],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus binary: "auto" goes without
    stack = stack_factory(prometheus="auto")
    assert stack.endpoints().prometheus_url is None
    assert "scrape backend" in stack.notice
    victim = stack.pids()["worker-1"]
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(DeploymentError, match=r"worker-1 \(pid \d+\) exited with code -9"):
        await stack.wait_ready(5.0)
    with pytest.raises(DeploymentError, match="worker-1"):
        stack.check_alive()
    await stack.reset()  # restarting the workers heals the stack
    stack.check_alive()
    assert stack.pids()["worker-1"] != victim


async def test_required_prometheus_missing_fails_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    stack = LocalStack(LocalDeploymentSpec(prometheus=True, run_dir=tmp_path / "run"))
    with pytest.raises(PrometheusNotFound, match="apt-get install -y prometheus"):
        await stack.start()
    assert stack.pids() == {}


async def test_a_killed_prometheus_is_started_again_by_the_next_apply(
    stack_factory: Callable[..., LocalStack],
) -> None:
    """Found by the fault-injection soak: a SIGKILL-ed Prometheus stayed dead, so every
    later trial of the run failed as a measurement fault until the failure guard stopped it."""
    stack = stack_factory()
    ep = stack.endpoints()
    victim = stack.pids()["prometheus"]
    os.kill(victim, signal.SIGKILL)
    async with httpx.AsyncClient(timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            for _ in range(50):  # until the port is closed
                await client.get(f"{ep.prometheus_url}/-/ready")
                await asyncio.sleep(0.1)
        await stack.apply(stack.router)
        assert stack.pids()["prometheus"] not in (victim, None)
        assert stack.endpoints().prometheus_url == ep.prometheus_url  # the same port
        body = (await client.get(f"{ep.prometheus_url}/api/v1/targets")).json()
    health = {t["scrapeUrl"]: t["health"] for t in body["data"]["activeTargets"]}
    assert health == {url: "up" for url in stack.endpoints().metrics_urls}


async def test_prometheus_killed_while_a_restart_waits_for_its_scrapes_is_a_fault(
    tmp_path: Path,
) -> None:
    """Found by the fault-injection soak: the wait ran out its 20 s and failed the trial as a
    plain `NotReady` (not retried), although the deployment, not the configuration, broke."""
    import time

    from dynamo_tune.deploy.prometheus import PrometheusServer
    from dynamo_tune.errors import DeploymentFault

    server = PrometheusServer(tmp_path / "prometheus", {"127.0.0.1:9": "frontend"}, 1.0)
    server.start()
    try:
        await server.wait_ready()
        assert server.process is not None and server.process.pid is not None
        os.kill(server.process.pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(DeploymentFault, match=r"prometheus \(pid \d+\) exited with code -9"):
            await server.wait_scraped_after(["127.0.0.1:9"], time.time())
        assert time.monotonic() - started < 5  # at once, not after the 20 s wait
    finally:
        server.stop()
