"""The HTTP-driven workloads: agentic sessions and trace replay. Does I/O: via the runner.

Each builds its request plan once (pure) at construction, with its KVE ceiling, and sends
it on every `run`; nothing loop-bound is kept between runs.
"""

from __future__ import annotations

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.workload.agentic import agentic_plan
from dynamo_tune.workload.ceiling import kve_ceiling
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.plan import PlannedRequest
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.runner import RunSettings, run_plan
from dynamo_tune.workload.spec import AgenticWorkloadSpec, TraceWorkloadSpec
from dynamo_tune.workload.trace import read_trace, trace_plan


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


def _settings(spec: AgenticWorkloadSpec | TraceWorkloadSpec) -> RunSettings:
    return RunSettings(
        seed=spec.seed,
        in_flight_limit=spec.in_flight_limit,
        request_timeout_s=spec.request_timeout_s,
        max_failure_ratio=spec.max_failure_ratio,
        ignore_eos=spec.ignore_eos,
        warmup=spec.warmup,
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
