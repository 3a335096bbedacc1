"""The workload side of a trial: generated or replayed load, measured per request.

Public names: the `Workload` protocol, `WorkloadReport`, `PrefixHints`, the study file's
`WorkloadSpec` union and `make_workload` (from `factory`, beside the implementations), the
workload classes, and the pure generators.
"""

from dynamo_tune.workload.agentic import agentic_plan
from dynamo_tune.workload.base import Workload
from dynamo_tune.workload.ceiling import kve_ceiling, reusable_tokens
from dynamo_tune.workload.command import CommandWorkload
from dynamo_tune.workload.factory import make_workload
from dynamo_tune.workload.hint_fields import hint_fields
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.plan import Message, PlannedRequest
from dynamo_tune.workload.report import RequestOutcome, WorkloadReport
from dynamo_tune.workload.spec import (
    AgenticWorkloadSpec,
    CommandWorkloadSpec,
    TraceWorkloadSpec,
    WarmupSpec,
    WorkloadSpec,
)
from dynamo_tune.workload.trace import read_trace, trace_plan
from dynamo_tune.workload.workloads import AgenticWorkload, TraceWorkload

__all__ = [
    "AgenticWorkload",
    "AgenticWorkloadSpec",
    "CommandWorkload",
    "CommandWorkloadSpec",
    "Message",
    "PlannedRequest",
    "PrefixHints",
    "RequestOutcome",
    "TraceWorkload",
    "TraceWorkloadSpec",
    "WarmupSpec",
    "Workload",
    "WorkloadReport",
    "WorkloadSpec",
    "agentic_plan",
    "hint_fields",
    "kve_ceiling",
    "make_workload",
    "read_trace",
    "reusable_tokens",
    "trace_plan",
]
