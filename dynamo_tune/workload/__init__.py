"""The workload side of a trial: generated or replayed load, measured per request.

Public names: the `Workload` protocol, `WorkloadReport`, `PrefixHints`, the study file's
`WorkloadSpec` union and `make_workload` (from `factory`, beside the implementations), the
workload classes, the pure generators and the trace readers.

The pure names are imported here; the workload classes and `make_workload` (modules that do
I/O: the HTTP client, processes) on first use, so importing the package or a spec-level
module (the study file's schema imports `dynamo_tune.workload.spec`) loads no implementation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dynamo_tune.workload.agentic import agentic_plan
from dynamo_tune.workload.base import Workload
from dynamo_tune.workload.ceiling import kve_ceiling, reusable_tokens
from dynamo_tune.workload.dynamo_replay import dynamo_trace_plan
from dynamo_tune.workload.dynamo_trace import read_dynamo_trace
from dynamo_tune.workload.hint_fields import hint_fields
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.plan import Message, PlannedRequest
from dynamo_tune.workload.result import RequestOutcome, WorkloadReport
from dynamo_tune.workload.spec import (
    AgenticWorkloadSpec,
    CommandWorkloadSpec,
    DynamoTraceWorkloadSpec,
    TraceWorkloadSpec,
    WarmupSpec,
    WorkloadSpec,
)
from dynamo_tune.workload.trace import read_trace, trace_plan
from dynamo_tune.workload.window import WindowSpec

if TYPE_CHECKING:
    from dynamo_tune.workload.command import CommandWorkload
    from dynamo_tune.workload.factory import make_workload
    from dynamo_tune.workload.workloads import AgenticWorkload, DynamoTraceWorkload, TraceWorkload

_DOES_IO = {
    "AgenticWorkload": "workloads",
    "CommandWorkload": "command",
    "DynamoTraceWorkload": "workloads",
    "TraceWorkload": "workloads",
    "make_workload": "factory",
}
"""Public name -> the module (under `dynamo_tune.workload`) it lives in, for the names whose
modules do I/O: imported on first use by `__getattr__`."""

__all__ = [
    "AgenticWorkload",
    "AgenticWorkloadSpec",
    "CommandWorkload",
    "CommandWorkloadSpec",
    "DynamoTraceWorkload",
    "DynamoTraceWorkloadSpec",
    "Message",
    "PlannedRequest",
    "PrefixHints",
    "RequestOutcome",
    "TraceWorkload",
    "TraceWorkloadSpec",
    "WarmupSpec",
    "WindowSpec",
    "Workload",
    "WorkloadReport",
    "WorkloadSpec",
    "agentic_plan",
    "dynamo_trace_plan",
    "hint_fields",
    "kve_ceiling",
    "make_workload",
    "read_dynamo_trace",
    "read_trace",
    "reusable_tokens",
    "trace_plan",
]


def __getattr__(name: str) -> Any:
    if name not in _DOES_IO:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_DOES_IO[name]}"), name)
