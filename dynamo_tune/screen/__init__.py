"""Screening in virtual time: a request plan replayed by Dynamo's own router simulation. Pure.

`trace_writer` writes a plan as a replay trace, `kv_router_args` maps `RouterConfig` to the
replay's `KvRouterConfig` (one table), `replay_metrics` turns per-request results into the
core metrics over the study's measured window, `replay` runs Dynamo's replay in-process
(the only module here that does I/O; it loads Dynamo's core only when called).
"""

from __future__ import annotations

from dynamo_tune.screen.kv_router_args import (
    KV_ROUTER_ARGS,
    REPLAY_ROUTER_MODES,
    kv_router_kwargs,
    replay_router_mode,
)
from dynamo_tune.screen.replay_metrics import (
    ReplayedRequest,
    core_of,
    parse_requests,
    window_report,
)
from dynamo_tune.screen.trace_writer import ReplayTrace, plan_trace

__all__ = [
    "KV_ROUTER_ARGS",
    "REPLAY_ROUTER_MODES",
    "ReplayTrace",
    "ReplayedRequest",
    "core_of",
    "kv_router_kwargs",
    "parse_requests",
    "plan_trace",
    "replay_router_mode",
    "window_report",
]
