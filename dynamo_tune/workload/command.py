"""An external program as the workload (e.g. `aiperf profile ...`). Does I/O: runs a process.

The argv runs without a shell; in each argument `{frontend_url}` and `{model}` are replaced
(plain text replacement, nothing else interpreted). The window is the program's start and end;
a non-zero exit (or a timeout) raises `WorkloadError` with the tail of its stderr. The program
runs in its own process group and is killed with it on timeout or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import WorkloadError
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.report import WorkloadReport
from dynamo_tune.workload.spec import CommandWorkloadSpec

STDERR_TAIL_LINES = 20


def render_argv(argv: list[str], endpoints: Endpoints) -> list[str]:
    """`argv` with `{frontend_url}` and `{model}` replaced in each argument. Pure."""
    return [
        arg.replace("{frontend_url}", endpoints.frontend_url).replace("{model}", endpoints.model)
        for arg in argv
    ]


def tail(text: bytes, lines: int = STDERR_TAIL_LINES) -> str:
    """The last `lines` lines of `text`, decoded. Pure."""
    return "\n".join(text.decode(errors="replace").splitlines()[-lines:])


class CommandWorkload:
    """Runs `spec.argv` once per trial."""

    def __init__(self, spec: CommandWorkloadSpec) -> None:
        self.spec = spec

    async def run(self, endpoints: Endpoints, hints: PrefixHints) -> WorkloadReport:
        argv = render_argv(self.spec.argv, endpoints)
        env = {**os.environ, **self.spec.env}
        start = time.time()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=self.spec.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise WorkloadError(f"workload command {argv[0]!r} cannot start: {exc}") from exc
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                _, stderr = await proc.communicate()
        except TimeoutError as exc:
            _kill_group(proc.pid)
            await proc.wait()
            raise WorkloadError(
                f"workload command {argv[0]!r} timed out after {self.spec.timeout_s} s"
            ) from exc
        finally:
            if proc.returncode is None:  # cancelled: never leave it running
                _kill_group(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
        end = time.time()
        if proc.returncode != 0:
            raise WorkloadError(
                f"workload command {argv[0]!r} exited with {proc.returncode}:\n{tail(stderr)}"
            )
        return WorkloadReport(window_start=start, window_end=end)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
