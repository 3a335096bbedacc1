"""Child processes in their own process group, stopped by pid. Does I/O: spawns processes.

Contract: every child is started with `start_new_session=True` (its own session and process
group), its stdout+stderr go to a log file, and `stop()` sends SIGTERM to the group, then
SIGKILL after `grace_s`. Children are registered in a module-level set and stopped by an
`atexit` hook, so none survives a normal exit or an uncaught exception of the parent.
On Linux a child started from the main thread also gets `PR_SET_PDEATHSIG(SIGKILL)`, so it
dies with the parent even when the parent is killed outright (SIGKILL skips `atexit`). The
CLI turns SIGTERM into a normal exit. Never stop anything by name.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dynamo_tune.errors import DeploymentError

_LIVE: set[ManagedProcess] = set()


class ManagedProcess:
    """One child process in its own process group, logging to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        """Spawn the process (no shell). Raises `DeploymentError` if the binary is missing."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_parent_death_hook(),
            )
        except OSError as exc:
            raise DeploymentError(f"{self.name}: cannot start {self.argv[0]!r}: {exc}") from exc
        finally:
            log.close()
        _LIVE.add(self)

    def poll(self) -> int | None:
        """The exit code if the process has ended, else None (also None if never started)."""
        return self._popen.poll() if self._popen is not None else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines of the log file ('' if none)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, wait up to `grace_s`, then SIGKILL it. Idempotent."""
        popen = self._popen
        _LIVE.discard(self)
        if popen is None:
            return
        if popen.poll() is None:
            _signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(popen.pid, signal.SIGKILL)
                popen.wait(timeout=10)
        # The leader may be gone while group members linger: sweep the group once more.
        _signal_group(popen.pid, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGKILL the child when its parent dies.

    The kernel ties PDEATHSIG to the thread that forked, so it is only set from the main
    thread (a worker thread of an executor may end long before the parent does).
    """
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def raise_if_exited(procs: Sequence[ManagedProcess]) -> None:
    """Raise `DeploymentError` naming the first exited process, with its exit code and log tail."""
    for proc in procs:
        code = proc.poll()
        if code is not None:
            raise DeploymentError(
                f"{proc.name} (pid {proc.pid}) exited with code {code}; "
                f"log {proc.log_path}:\n{proc.log_tail()}"
            )


def wait_for_exit(procs: Sequence[ManagedProcess], timeout_s: float) -> bool:
    """True once every process has exited, False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(p.poll() is not None for p in procs):
            return True
        time.sleep(0.05)
    return False


def stop_all() -> None:
    """Stop every live child (the `atexit` hook; also safe to call directly)."""
    for proc in list(_LIVE):
        proc.stop(grace_s=3.0)


atexit.register(stop_all)
