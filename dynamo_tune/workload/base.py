"""The workload seam: what a trial runs against the deployment. Pure (types only)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.result import WorkloadReport


@runtime_checkable
class Workload(Protocol):
    """Runs one measured workload (warmup included, excluded from the window).

    A failed request is data in the report, not an exception; `WorkloadError` is raised only
    when the workload cannot run at all (e.g. an external command exits non-zero).
    """

    async def run(self, endpoints: Endpoints, hints: PrefixHints) -> WorkloadReport:
        """Run against `endpoints` with `hints` applied to every request."""
