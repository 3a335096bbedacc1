"""Who measures a trial: host, pid and process start time, and whether that process is gone.
Does I/O: reads /proc.

Every trial records its runner (`TrialAttr.RUNNER`); a resumed run fails the RUNNING trials
whose runner on this host has died (`store.recovery`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from dynamo_tune.study.trial.record import RunnerInfo


def _process_start(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (Linux), None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def runner_identity(pid: int | None = None) -> dict[str, Any]:
    """Who runs a trial: this host, this pid and its start time (guards against pid reuse)."""
    pid = os.getpid() if pid is None else pid
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def runner_is_dead(runner: RunnerInfo | None) -> bool:
    """True only if `runner` was a process on this host that no longer exists."""
    if runner is None or runner.host != socket.gethostname() or runner.pid is None:
        return False
    start = _process_start(runner.pid)
    return start is None or (runner.start is not None and start != runner.start)
