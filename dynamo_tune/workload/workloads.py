"""The HTTP-driven workloads: agentic sessions, Mooncake and Dynamo trace replay. Does I/O: via
the runner, and a trace is read on construction.

Each builds its request plan once (pure) at construction, with its KVE ceiling, and sends
it on every `run`; nothing loop-bound is kept between runs.
"""

from __future__ import annotations

import logging

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import SpecError
from dynamo_tune.workload.agentic import agentic_plan
from dynamo_tune.workload.ceiling import kve_ceiling
from dynamo_tune.workload.dynamo_replay import dynamo_trace_plan
from dynamo_tune.workload.dynamo_trace import TraceRead, read_dynamo_trace, select
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.plan import PlannedRequest
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.runner import RunSettings, run_plan
from dynamo_tune.workload.spec import (
    AgenticWorkloadSpec,
    DynamoTraceWorkloadSpec,
    TraceWorkloadSpec,
)
from dynamo_tune.workload.trace import read_trace, trace_plan

log = logging.getLogger(__name__)


def skipped_text(read: TraceRead) -> str:
    """What the reader left out, e.g. "3 request_start events, 5 requests of model other";
    "" when nothing."""
    parts = [f"{n} {kind} events" for kind, n in sorted(read.skipped_events.items())]
    parts += [f"{n} requests of model {m}" for m, n in sorted(read.skipped_models.items())]
    return ", ".join(parts)


class PlannedWorkload:
    """A fixed request plan sent with given settings (the common part of both workloads)."""

    def __init__(self, plan: list[PlannedRequest], settings: RunSettings, block_size: int) -> None:
        self.plan = plan
        self.settings = settings
        self.block_size = block_size
        self.kve_ceiling = kve_ceiling((r.prompt_tokens for r in plan), block_size)

    async def run(self, endpoints: Endpoints, hints: PrefixHints) -> WorkloadReport:
        return await run_plan(
            self.plan, endpoints, hints, self.settings, kve_ceiling=self.kve_ceiling
        )


def _settings(
    spec: AgenticWorkloadSpec | TraceWorkloadSpec | DynamoTraceWorkloadSpec,
) -> RunSettings:
    return RunSettings(
        seed=spec.seed,
        in_flight_limit=spec.in_flight_limit,
        request_timeout_s=spec.request_timeout_s,
        max_failure_ratio=spec.max_failure_ratio,
        ignore_eos=spec.ignore_eos,
        warmup=spec.warmup,
        window=spec.window,
    )


class AgenticWorkload(PlannedWorkload):
    """Generated agentic sessions (see `AgenticWorkloadSpec`)."""

    def __init__(self, spec: AgenticWorkloadSpec, *, block_size: int) -> None:
        self.spec = spec
        super().__init__(agentic_plan(spec), _settings(spec), block_size)


class TraceWorkload(PlannedWorkload):
    """Mooncake trace replay (see `TraceWorkloadSpec`); reads the trace on construction."""

    def __init__(self, spec: TraceWorkloadSpec, *, block_size: int) -> None:
        self.spec = spec
        replay_block = spec.block_size or block_size
        records = read_trace(spec.path, spec.offset, spec.limit)
        super().__init__(trace_plan(records, spec, replay_block), _settings(spec), block_size)


class DynamoTraceWorkload(PlannedWorkload):
    """Dynamo request-trace replay (see `DynamoTraceWorkloadSpec`); reads the trace on
    construction. `read` says what the reader kept and skipped."""

    def __init__(self, spec: DynamoTraceWorkloadSpec, *, block_size: int) -> None:
        self.spec = spec
        self.read: TraceRead = read_dynamo_trace(spec.path, spec.models)
        records = select(
            self.read.records,
            start_s=spec.start_s,
            duration_s=spec.duration_s,
            sessions=spec.sessions,
            seed=spec.seed,
        )
        if not records:
            raise SpecError(
                f"trace {spec.path}: no request in the slice start_s={spec.start_s}, "
                f"duration_s={spec.duration_s} ({len(self.read.records)} records in the trace)"
            )
        plan = dynamo_trace_plan(records, seed=spec.seed, speedup=spec.speedup)
        super().__init__(plan, _settings(spec), block_size)
        skipped = skipped_text(self.read)
        if skipped:  # the operator should know what of the capture is not replayed
            log.warning(
                "trace %s: skipped %s; replaying %d requests", spec.path, skipped, len(records)
            )
