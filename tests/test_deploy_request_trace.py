"""Capturing the local stack's traffic: `deployment.request_trace` / `stack up --request-trace`.

The integration test starts the real stack with the capture on, sends chats with session ids,
restarts the frontend in the middle (a trial's `apply`), stops the stack and reads the capture
back with `read_dynamo_trace`: every request is there, with what its response said.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from dynamo_tune.cli.stack_cmd import build_spec, register
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.local_commands import dynamo_env, frontend_env
from dynamo_tune.deploy.local_processes import StackProcesses
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import (
    ExternalDeploymentSpec,
    FrontendBuckets,
    LocalDeploymentSpec,
)
from dynamo_tune.errors import DeploymentError
from dynamo_tune.vocab import text
from dynamo_tune.workload.dynamo_trace import read_dynamo_trace
from dynamo_tune.workload.trace_summary import summarize_trace

SAMPLE = Path(__file__).parent / "fixtures" / "traces" / "dynamo-request-trace-sample.jsonl"


def test_frontend_env_turns_the_capture_on_only_when_asked(tmp_path: Path) -> None:
    users = {"DYN_REQUEST_TRACE": "1", "DYN_REQUEST_TRACE_OUTPUT_PATH": "/elsewhere"}
    base = dynamo_env(users, tmp_path / "discovery")  # a user's own variables never pass
    assert not [k for k in frontend_env(base, FrontendBuckets()) if "REQUEST_TRACE" in k]
    env = frontend_env(base, FrontendBuckets(), tmp_path / "t.jsonl")
    assert {k: v for k, v in env.items() if "REQUEST_TRACE" in k} == {
        "DYN_REQUEST_TRACE": "1",
        "DYN_REQUEST_TRACE_SINKS": "jsonl",
        "DYN_REQUEST_TRACE_OUTPUT_PATH": str(tmp_path / "t.jsonl"),
        "DYN_REQUEST_TRACE_FILE_FORMAT": "jsonl",
    }


def test_request_trace_is_a_local_setting() -> None:
    assert LocalDeploymentSpec(request_trace=Path("c.jsonl")).request_trace == Path("c.jsonl")
    assert LocalDeploymentSpec().request_trace is None
    with pytest.raises(ValidationError, match="request_trace"):
        ExternalDeploymentSpec.model_validate(
            {"kind": "external", "frontend_url": "http://x", "model": "m", "request_trace": "c"}
        )


def test_stack_up_flag_sets_the_capture() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["stack", "up", "--request-trace", "capture.jsonl"])
    assert build_spec(args).request_trace == Path("capture.jsonl")
    assert build_spec(parser.parse_args(["stack", "up"])).request_trace is None


def test_capture_file_is_prepared_absolute_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.jsonl").write_text("earlier\n")
    for given, expected in [
        (Path("new/deep/c.jsonl"), tmp_path / "new" / "deep" / "c.jsonl"),
        (Path("old.jsonl"), tmp_path / "old.jsonl"),
    ]:
        procs = StackProcesses(LocalDeploymentSpec(request_trace=given), "python", {})
        procs.open_request_trace()
        assert procs.request_trace == expected and expected.is_file()
    assert (tmp_path / "old.jsonl").read_text() == "earlier\n"  # appended to, never truncated
    procs = StackProcesses(LocalDeploymentSpec(request_trace=tmp_path), "python", {})
    with pytest.raises(DeploymentError, match="is a folder"):
        procs.open_request_trace()
    procs = StackProcesses(LocalDeploymentSpec(), "python", {})
    procs.open_request_trace()
    assert procs.request_trace is None


async def _chat(client: httpx.AsyncClient, url: str, session: str, prompt: str) -> dict[str, Any]:
    """One streamed chat with a session id; its `usage`."""
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usage: dict[str, Any] = {}
    headers = {"X-Dynamo-Session-ID": session}
    async with client.stream(
        "POST", f"{url}/v1/chat/completions", json=body, headers=headers
    ) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data:") and line.strip() != "data: [DONE]":
                usage = json.loads(line.removeprefix("data:")).get("usage") or usage
    return usage


@pytest.mark.integration
async def test_capture_keeps_every_request_across_a_frontend_restart(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    capture = tmp_path / "captures" / "traffic.jsonl"
    capture.parent.mkdir()
    earlier = SAMPLE.read_text().splitlines()[0].replace('"model":"tiny"', '"model":"earlier"')
    capture.write_text(earlier + "\n")  # an earlier capture in the same file is kept
    stack = stack_factory(request_trace=capture)
    assert stack.request_trace == capture
    sent: dict[str, list[dict[str, Any]]] = defaultdict(list)  # session -> usages, in order
    url = stack.frontend_url
    async with httpx.AsyncClient(timeout=30) as client:

        async def turn(session: str, first_word: int, words: int) -> None:
            sent[session].append(await _chat(client, url, session, text(range(first_word, words))))

        for turn_words in (40, 70):  # the second turn repeats the first's prefix
            for s in range(3):
                await turn(f"sess-{s}", 1000 * s, 1000 * s + turn_words)
        applied = await stack.apply(RouterConfig(mode="round-robin"))
        assert applied.restarted == ["frontend"]  # records buffered by the old one survive
        await turn("sess-0", 0, 90)
        await turn("sess-3", 3000, 3020)
    await stack.stop()  # the frontend flushes its last records on SIGTERM

    assert [r.model for r in read_dynamo_trace(capture).records].count("earlier") == 1
    read = read_dynamo_trace(capture, ["tiny"])
    ours = read.records
    assert len(ours) == 8 and read.skipped_models == {"earlier": 1}
    assert {r.session_id for r in ours} == {"sess-0", "sess-1", "sess-2", "sess-3"}
    for session, usages in sent.items():
        records = [r for r in ours if r.session_id == session]  # by arrival
        assert [r.input_tokens for r in records] == [u["prompt_tokens"] for u in usages]
        assert [r.input_length for r in records] == [u["prompt_tokens"] for u in usages]
    assert [len(sent[f"sess-{s}"]) for s in range(4)] == [3, 2, 2, 1]
    assert sum(u["prompt_tokens"] for us in sent.values() for u in us) == 3 * 40 + 3 * 70 + 90 + 20
    summary = summarize_trace(read)
    assert (summary.requests, summary.sessions, summary.hashed_tokens) == (8, 4, 440)
    # 40-word first turns share nothing; each 70-word second turn repeats its first turn's 2
    # full blocks of 16, the 90-word third turn the second turn's 4; sess-3 is new.
    assert summary.reusable_tokens == 3 * 32 + 64
