"""Replays a request plan in Dynamo's virtual time. Does I/O: a temporary file, Dynamo's replay.

`replay_plan` writes the plan as an agentic_mooncake trace (`trace_writer`), runs
`dynamo.replay.run_trace_replay` in this process (the real KV router and the mocker's engine
model, in simulated time: milliseconds of wall time for hundreds of requests) and returns
`ReplayResult`: per-request records matched back to plan indices, the workload report over the
study's measured window and its core metrics (`replay_metrics`). Only the router knobs the
replay simulates reach it (`deploy/router_flags.py`, `replay_simulates`); round-robin and kv
are the only modes it can simulate (others: ValueError). kv-mode replays break ties at random
(no seed): average a few.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.metrics import DynamoCoreMetrics
from dynamo_tune.screen.kv_router_args import kv_router_kwargs, replay_router_mode
from dynamo_tune.screen.replay_metrics import (
    ReplayedRequest,
    core_of,
    parse_requests,
    window_report,
)
from dynamo_tune.screen.trace_writer import MODEL_NAME, ReplayTrace, plan_trace
from dynamo_tune.workload.plan import PlannedRequest
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.window import WindowSpec

FULL_WINDOW = WindowSpec()
"""Every request measured (`window: {mode: full}`)."""


@dataclass(frozen=True)
class ReplayResult:
    """One replay: per-request results (plan order), the window's report and core metrics,
    Dynamo's own summary.

    `report` and `metrics` cover the measured window (`replay_plan(window=...)`); `summary` is
    Dynamo's summary over every request (times in ms there, e.g. `p95_ttft_ms`, and
    `prefix_cache_reused_ratio`); `simulated_s` the simulated duration (s), `wall_s` Dynamo's
    own run time (s).
    """

    requests: tuple[ReplayedRequest, ...]
    report: WorkloadReport
    metrics: DynamoCoreMetrics
    summary: dict[str, Any]
    simulated_s: float
    wall_s: float


def engine_args(
    *, block_size: int, num_gpu_blocks: int, speedup_ratio: float, **more: Any
) -> dict[str, Any]:
    """The replay's `extra_engine_args`: the mocker engine's arguments (names as
    `python -m dynamo.mocker` takes them, e.g. `max_num_seqs`, `planner_profile_data`)."""
    return {
        "engine": {
            "num_gpu_blocks": num_gpu_blocks,
            "block_size": block_size,
            "speedup_ratio": speedup_ratio,
            **more,
        }
    }


def check_engine(engine: Mapping[str, Any]) -> None:
    """ValueError with Dynamo's own message unless Dynamo accepts `engine` (`engine_args`)."""
    from dynamo.mocker.config import normalize_mocker_config

    normalize_mocker_config(dict(engine))


class Replayer:
    """Replays plans on one engine model. Each plan's trace is written once (to a temporary
    folder that lives until `close()`), so repeated replays of a plan cost only Dynamo's own
    run; `replay_many` runs a configuration's repeats on `threads` threads (Dynamo's replay
    releases the GIL for most of its run)."""

    def __init__(self, engine: Mapping[str, Any], workers: int, *, threads: int = 2) -> None:
        self.engine = dict(engine)
        self.block_size = int(self.engine["engine"]["block_size"])
        self.workers = workers
        self._folder = tempfile.TemporaryDirectory(prefix="dynamo-tune-replay-")
        self._traces: dict[
            tuple[int, int | None], tuple[Sequence[PlannedRequest], Path, ReplayTrace]
        ] = {}
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="replay")

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the threads and delete the written traces."""
        self._pool.shutdown(wait=True)
        self._folder.cleanup()

    def _trace(
        self, plan: Sequence[PlannedRequest], in_flight_limit: int | None
    ) -> tuple[Path, ReplayTrace]:
        key = (id(plan), in_flight_limit)
        if key not in self._traces:  # the plan is held, so its id stays its own
            trace = plan_trace(plan, block_size=self.block_size, in_flight_limit=in_flight_limit)
            path = Path(self._folder.name) / f"plan{len(self._traces)}.agentic.jsonl"
            path.write_text(trace.jsonl(), encoding="utf-8")
            self._traces[key] = (plan, path, trace)
        _, path, trace = self._traces[key]
        return path, trace

    def replay(
        self,
        plan: Sequence[PlannedRequest],
        *,
        router: RouterConfig,
        in_flight_limit: int | None,
        window: WindowSpec = FULL_WINDOW,
        max_failure_ratio: float = 1.0,
    ) -> ReplayResult:
        """Replay `plan` with `router`; metrics over `window` (see `replay_plan`)."""
        from dynamo._core import KvRouterConfig  # Dynamo's Rust core: loaded only to replay
        from dynamo.replay import run_trace_replay

        mode = replay_router_mode(router.mode)  # refuses a mode the replay cannot simulate
        path, trace = self._trace(plan, in_flight_limit)
        router_config = KvRouterConfig(**kv_router_kwargs(router)) if mode == "kv_router" else None
        result = run_trace_replay(
            [str(path)],
            replay_mode="offline",
            extra_engine_args=self.engine,
            router_config=router_config,
            num_workers=self.workers,
            router_mode=mode,
            trace_block_size=self.block_size,
            trace_format="agentic_mooncake",
            agentic_lanes=1,
            execution_model=MODEL_NAME,
            capture_per_request=True,
        )
        summary = result.summary
        requests = parse_requests(result.per_request or [], trace.index_of())
        closed_loop = all(r.offset_s is None for r in plan if not r.after)
        report = window_report(
            requests, window, closed_loop=closed_loop, max_failure_ratio=max_failure_ratio
        )
        return ReplayResult(
            requests=requests,
            report=report,
            metrics=core_of(report),
            summary=dict(summary),
            simulated_s=float(summary.get("duration_ms", 0.0)) / 1000.0,
            wall_s=float(summary.get("wall_time_ms", 0.0)) / 1000.0,
        )

    def replay_many(
        self,
        plan: Sequence[PlannedRequest],
        repeats: int,
        *,
        router: RouterConfig,
        in_flight_limit: int | None,
        window: WindowSpec = FULL_WINDOW,
        max_failure_ratio: float = 1.0,
    ) -> list[ReplayResult]:
        """`repeats` replays of the same configuration, on the thread pool."""
        self._trace(plan, in_flight_limit)  # written once, before the threads read it
        futures = [
            self._pool.submit(
                self.replay,
                plan,
                router=router,
                in_flight_limit=in_flight_limit,
                window=window,
                max_failure_ratio=max_failure_ratio,
            )
            for _ in range(repeats)
        ]
        return [f.result() for f in futures]


def replay_plan(
    plan: Sequence[PlannedRequest],
    *,
    engine: Mapping[str, Any],
    workers: int,
    router: RouterConfig,
    in_flight_limit: int | None,
    window: WindowSpec = FULL_WINDOW,
    max_failure_ratio: float = 1.0,
) -> ReplayResult:
    """Replay `plan` once on `workers` mocker workers with `router`; metrics over `window`.

    `engine` is `engine_args(...)` (its block size is the trace's block size too);
    `in_flight_limit` is the runner's request semaphore; `window` the study's measured window,
    applied on the replay's clock as on a live run's.
    """
    with Replayer(engine, workers, threads=1) as replayer:
        return replayer.replay(
            plan,
            router=router,
            in_flight_limit=in_flight_limit,
            window=window,
            max_failure_ratio=max_failure_ratio,
        )
