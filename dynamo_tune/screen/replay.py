"""Replays a request plan in Dynamo's virtual time. Does I/O: a temporary file, Dynamo's replay.

`replay_plan` writes the plan as an agentic_mooncake trace (`trace_writer`), runs
`dynamo.replay.run_trace_replay` in this process (the real KV router and the mocker's engine
model, in simulated time: milliseconds of wall time for hundreds of requests) and returns
`ReplayResult`: per-request records matched back to plan indices and the core metrics over the
chosen requests (`replay_metrics`). Only the router knobs the replay simulates reach it
(`deploy/router_flags.py`, `replay_simulates`); round-robin and kv are the only modes it can
simulate (others: ValueError). kv-mode replays break ties at random (no seed): average a few.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.metrics import DynamoCoreMetrics
from dynamo_tune.screen.kv_router_args import kv_router_kwargs, replay_router_mode
from dynamo_tune.screen.replay_metrics import ReplayedRequest, core_metrics, parse_requests
from dynamo_tune.screen.trace_writer import MODEL_NAME, plan_trace
from dynamo_tune.workload.plan import PlannedRequest


@dataclass(frozen=True)
class ReplayResult:
    """One replay: per-request results (plan order), core metrics, Dynamo's own summary.

    `metrics` covers the requests chosen by `replay_plan(window=...)`; `summary` is Dynamo's
    summary over every request (times in ms there, e.g. `p95_ttft_ms`, and
    `prefix_cache_reused_ratio`); `simulated_s` the simulated duration (s), `wall_s` Dynamo's
    own run time (s).
    """

    requests: tuple[ReplayedRequest, ...]
    metrics: DynamoCoreMetrics
    summary: dict[str, Any]
    simulated_s: float
    wall_s: float


def replay_plan(
    plan: Sequence[PlannedRequest],
    *,
    block_size: int,
    num_gpu_blocks: int,
    speedup_ratio: float,
    workers: int,
    router: RouterConfig,
    in_flight_limit: int | None,
    window: Iterable[int] | None = None,
) -> ReplayResult:
    """Replay `plan` on `workers` mocker workers with `router`; metrics over `window`.

    `block_size` (tokens per KV block), `num_gpu_blocks` (KV blocks per worker) and
    `speedup_ratio` are the mocker's engine arguments, as on the local stack;
    `in_flight_limit` is the runner's request semaphore; `window` the plan indices the
    metrics cover (None: every request).
    """
    from dynamo._core import KvRouterConfig  # Dynamo's Rust core: loaded only to replay
    from dynamo.replay import run_trace_replay

    mode = replay_router_mode(router.mode)  # refuses a mode the replay cannot simulate
    trace = plan_trace(plan, block_size=block_size, in_flight_limit=in_flight_limit)
    engine = {
        "engine": {
            "num_gpu_blocks": num_gpu_blocks,
            "block_size": block_size,
            "speedup_ratio": speedup_ratio,
        }
    }
    router_config = KvRouterConfig(**kv_router_kwargs(router)) if mode == "kv_router" else None
    with tempfile.TemporaryDirectory(prefix="dynamo-tune-replay-") as folder:
        path = Path(folder) / "plan.agentic.jsonl"
        path.write_text(trace.jsonl(), encoding="utf-8")
        report = run_trace_replay(
            [str(path)],
            replay_mode="offline",
            extra_engine_args=engine,
            router_config=router_config,
            num_workers=workers,
            router_mode=mode,
            trace_block_size=block_size,
            trace_format="agentic_mooncake",
            agentic_lanes=1,
            execution_model=MODEL_NAME,
            capture_per_request=True,
        )
    summary = report.summary
    requests = parse_requests(report.per_request or [], trace.index_of())
    return ReplayResult(
        requests=requests,
        metrics=core_metrics(requests, window),
        summary=dict(summary),
        simulated_s=float(summary.get("duration_ms", 0.0)) / 1000.0,
        wall_s=float(summary.get("wall_time_ms", 0.0)) / 1000.0,
    )
