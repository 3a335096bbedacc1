"""Builds the workload a `workload:` section describes. Does I/O: a trace is read on construction.

It lives beside the implementations it picks from, so `workload/spec.py` imports none of them.
"""

from __future__ import annotations

from dynamo_tune.workload.base import Workload
from dynamo_tune.workload.command import CommandWorkload
from dynamo_tune.workload.spec import (
    AgenticWorkloadSpec,
    CommandWorkloadSpec,
    DynamoTraceWorkloadSpec,
    TraceWorkloadSpec,
)
from dynamo_tune.workload.workloads import AgenticWorkload, DynamoTraceWorkload, TraceWorkload


def make_workload(
    spec: AgenticWorkloadSpec | TraceWorkloadSpec | DynamoTraceWorkloadSpec | CommandWorkloadSpec,
    *,
    block_size: int,
) -> Workload:
    """The workload `spec` describes; `block_size` is the deployment's KV block size (tokens)."""
    if block_size < 1:
        raise ValueError(f"`block_size >= 1` must hold, but got {block_size=}.")
    match spec:
        case AgenticWorkloadSpec():
            return AgenticWorkload(spec, block_size=block_size)
        case TraceWorkloadSpec():
            return TraceWorkload(spec, block_size=block_size)
        case DynamoTraceWorkloadSpec():
            return DynamoTraceWorkload(spec, block_size=block_size)
        case CommandWorkloadSpec():
            return CommandWorkload(spec)
    raise TypeError(f"unknown workload spec {spec!r}")  # pragma: no cover
