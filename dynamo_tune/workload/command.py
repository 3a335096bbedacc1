"""An external program as the workload (e.g. `aiperf profile ...`). Does I/O: runs a process.

The argv is a template (`dynamo_tune.argv_template`; `{frontend_url}` and `{model}`, checked
when the spec is loaded) run by `dynamo_tune.process.run_to_completion`: no shell, its own
process group, killed with its group on timeout or cancellation. The window is the
program's start and end; a non-zero exit (or a timeout) raises `WorkloadError` with the tail
of its stderr.
"""

from __future__ import annotations

import os
import time

from dynamo_tune import argv_template
from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import WorkloadError
from dynamo_tune.process import run_to_completion
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.spec import COMMAND_PLACEHOLDERS, CommandWorkloadSpec


def render_argv(argv: list[str], endpoints: Endpoints) -> list[str]:
    """`argv` with `{frontend_url}` and `{model}` substituted in each argument. Pure."""
    values = {name: getattr(endpoints, name) for name in COMMAND_PLACEHOLDERS}
    return argv_template.render(argv, values, "workload.argv")


class CommandWorkload:
    """Runs `spec.argv` once per trial."""

    def __init__(self, spec: CommandWorkloadSpec) -> None:
        self.spec = spec

    async def run(self, endpoints: Endpoints, hints: PrefixHints) -> WorkloadReport:
        argv = render_argv(self.spec.argv, endpoints)
        start = time.time()
        await run_to_completion(
            argv,
            name="workload",
            error=WorkloadError,
            timeout_s=self.spec.timeout_s,
            env={**os.environ, **self.spec.env},
            cwd=self.spec.cwd,
        )
        return WorkloadReport(window_start=start, window_end=time.time())
