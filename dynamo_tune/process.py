"""Every external program dynamo-tune starts. Does I/O: spawns, signals and reaps processes.

One contract for all of them:
- the argv runs directly (never through a shell) with stdin from /dev/null, in its own
  session and process group (`start_new_session=True`);
- on Linux a child started from the main thread also gets `PR_SET_PDEATHSIG(SIGKILL)`, so
  it dies with the parent even when the parent is killed outright (SIGKILL skips `atexit`);
- it is stopped by pid, never by name: its process group gets SIGTERM, then SIGKILL;
- an error message about it ends with the tail of its stderr (`file_tail`).

Two ways to run a program:
- `ManagedProcess`: a long-running child (a Dynamo component, Prometheus) whose stdout and
  stderr go to one log file. `stop()` sends SIGTERM to the group, then SIGKILL after a grace
  period. Live children are stopped by an `atexit` hook too (the CLI turns SIGTERM into a
  normal exit).
- `run_to_completion`: a command (a deployment's `apply` script, a workload program) awaited
  with a timeout; on timeout or cancellation its whole group is killed with SIGKILL.
The caller chooses the error class raised (`DeploymentError`, `WorkloadError`, ...).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from dynamo_tune.errors import DeploymentError, DeploymentFault, DynamoTuneError

TAIL_LINES = 20
"""Lines of stderr (or of a log) quoted in an error message."""
TAIL_BYTES = 64 * 1024
"""At most this many bytes from the end of a file are read for its tail."""

ErrorClass = type[DynamoTuneError]


# -- tails ------------------------------------------------------------------------------------


def text_tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of `text`. Pure."""
    return "\n".join(text.splitlines()[-lines:])


def file_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of the file at `path` ('' if it cannot be read).

    Reads at most the last `TAIL_BYTES` bytes, so the first line returned may be cut short
    when the tail is longer than that.
    """
    try:
        with path.open("rb") as fh:
            return _tail_of_fd(fh.fileno(), lines)
    except OSError:
        return ""


def _tail_of_fd(fd: int, lines: int) -> str:
    """The tail of an open file, read with `pread` (the file offset, shared with a child that
    inherited the descriptor, is left alone)."""
    size = os.fstat(fd).st_size
    start = max(0, size - TAIL_BYTES)
    return text_tail(os.pread(fd, size - start, start).decode(errors="replace"), lines)


# -- spawning and signalling ------------------------------------------------------------------

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


def _spawn_options(env: Mapping[str, str] | None, cwd: Path | None) -> dict[str, Any]:
    """The `Popen` options every child gets (see the module docstring)."""
    return {
        "stdin": subprocess.DEVNULL,
        "env": dict(env) if env is not None else None,
        "cwd": cwd,
        "start_new_session": True,
        "preexec_fn": _parent_death_hook(),
    }


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to process group `pgid` (a child's pid); a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# -- long-running children --------------------------------------------------------------------

_LIVE: set[ManagedProcess] = set()


class ManagedProcess:
    """One long-running child in its own process group, logging stdout+stderr to `log_path`.

    `error` is the class raised when it cannot start or has exited (`raise_if_exited`).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        *,
        error: ErrorClass = DeploymentError,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.error = error
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        """Spawn the process. Raises `error` ("cannot start") if the program cannot run."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **_spawn_options(self.env, self.cwd),
                )
            except OSError as exc:
                raise self.error(cannot_start(self.name, self.argv, exc)) from exc
        _LIVE.add(self)

    def poll(self) -> int | None:
        """The exit code if the process has ended, else None (also None if never started)."""
        return self._popen.poll() if self._popen is not None else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        """The last `lines` lines of the log file ('' if none)."""
        return file_tail(self.log_path, lines)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, wait up to `grace_s`, then SIGKILL it. Idempotent."""
        popen = self._popen
        _LIVE.discard(self)
        if popen is None:
            return
        if popen.poll() is None:
            signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                signal_group(popen.pid, signal.SIGKILL)
                popen.wait(timeout=10)
        # The leader may be gone while group members linger: sweep the group once more.
        signal_group(popen.pid, signal.SIGKILL)


def raise_if_exited(procs: Sequence[ManagedProcess]) -> None:
    """Raise the `error` of the first exited process, with its exit code and log tail. A
    deployment component killed by a signal (negative code: SIGKILL, the OOM killer) raises
    `DeploymentFault`: the deployment broke, whatever configuration it was applying."""
    for proc in procs:
        code = proc.poll()
        if code is not None:
            error = proc.error
            if code < 0 and issubclass(error, DeploymentError):
                error = DeploymentFault
            raise error(
                f"{proc.name} (pid {proc.pid}) exited with code {code}; "
                f"log {proc.log_path}:\n{proc.log_tail()}"
            )


def stop_all() -> None:
    """Stop every live child (the `atexit` hook; also safe to call directly)."""
    for proc in list(_LIVE):
        proc.stop(grace_s=3.0)


atexit.register(stop_all)


# -- commands run to completion ---------------------------------------------------------------


def cannot_start(name: str, argv: Sequence[str], exc: OSError) -> str:
    """The message for a program that could not be started. Pure."""
    return f"{name}: cannot start {argv[0]!r}: {exc}"


async def run_to_completion(
    argv: Sequence[str],
    *,
    name: str,
    error: ErrorClass,
    timeout_s: float | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout_path: Path | None = None,
    stderr_path: Path | None = None,
) -> None:
    """Run `argv` until it exits; raise `error` unless it exits with code 0.

    stdout is appended to `stdout_path` (None: discarded); stderr is written to `stderr_path`
    (truncated first; None: a temporary file), and its tail ends every error message. On
    timeout (`timeout_s` seconds; None: no limit) or cancellation, the process group is
    killed (SIGKILL) and reaped before the error (or the cancellation) propagates. A group
    member still running after a normal exit (e.g. a server a `start` script left behind) is
    left alone.
    """
    shown = shlex.join(argv)
    with contextlib.ExitStack() as files:
        out: IO[bytes] | int = (
            files.enter_context(_open_for_append(stdout_path))
            if stdout_path is not None
            else subprocess.DEVNULL
        )
        err = files.enter_context(_open_for_write(stderr_path))
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=out, stderr=err, **_spawn_options(env, cwd)
            )
        except OSError as exc:
            raise error(cannot_start(name, argv, exc)) from exc
        try:
            async with asyncio.timeout(timeout_s):
                code = await proc.wait()
        except TimeoutError:
            await _kill_and_reap(proc)
            raise error(
                f"{name}: {shown} did not finish within {timeout_s} s; "
                f"stderr tail:\n{_tail_of_fd(err.fileno(), TAIL_LINES)}"
            ) from None
        finally:
            if proc.returncode is None:  # cancelled: never leave the group behind
                await _kill_and_reap(proc)
        if code != 0:
            raise error(
                f"{name}: {shown} exited with code {code}; "
                f"stderr tail:\n{_tail_of_fd(err.fileno(), TAIL_LINES)}"
            )


def _open_for_append(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def _open_for_write(path: Path | None) -> IO[bytes]:
    """`path` truncated, open for writing and reading (the tail is read back from it), or an
    anonymous temporary file when None."""
    if path is None:
        return tempfile.TemporaryFile()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w+b")


async def _kill_and_reap(proc: asyncio.subprocess.Process) -> None:
    signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()
