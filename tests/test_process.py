"""Every program we start: own process group, stop by pid, stderr tail, no child outlives us.

`ManagedProcess` (long-running) and `run_to_completion` (awaited with a timeout) on real
child processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from study_helpers import wait_for

from dynamo_tune.errors import DeploymentError, DeploymentFault, DynamoTuneError, WorkloadError
from dynamo_tune.process import ManagedProcess, file_tail, raise_if_exited, run_to_completion


def gone(pid: int, within_s: float = 5.0) -> bool:
    """True once `pid` has exited (a zombie counts), False if it still runs after `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True  # exited; only waiting to be reaped
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dynamo_tune.process import ManagedProcess
    child = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                           Path(sys.argv[1]))
    child.start()
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_child_dies_with_its_parent(sig: signal.Signals, tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "child.log")],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert os.getpgid(child_pid) == child_pid != os.getpgid(parent.pid)  # own group
        parent.send_signal(sig)  # neither SIGKILL nor SIGTERM runs atexit hooks
        parent.wait(timeout=10)
    try:
        assert gone(child_pid), "the child survived its parent"
    finally:
        if not gone(child_pid, 0):
            os.kill(child_pid, signal.SIGKILL)


def test_stop_sweeps_the_group_and_logs(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('hello', flush=True); time.sleep(60)"
    )
    proc = ManagedProcess("group", [sys.executable, "-c", script], tmp_path / "g.log")
    proc.start()
    assert proc.pid is not None
    deadline = time.monotonic() + 10
    while "hello" not in proc.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchildren = [
        p for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == proc.pid
    ]
    proc.stop(grace_s=2.0)
    assert proc.poll() is not None and not proc.is_running()
    assert all(gone(int(p.name)) for p in grandchildren)
    assert proc.log_tail() == "hello"
    proc.stop()  # idempotent


def _ppid(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[-1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def test_missing_binary_is_a_deployment_error(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="cannot start"):
        ManagedProcess("x", [str(tmp_path / "nope")], tmp_path / "x.log").start()


def test_a_component_killed_by_a_signal_is_a_fault_an_error_exit_is_not(tmp_path: Path) -> None:
    """Found by the fault-injection soak: a worker SIGKILL-ed while a restart waited for it
    failed the trial as a plain error, so its configuration (the baseline) was never retried."""
    killed = ManagedProcess("killed", [sys.executable, "-c", "import time; time.sleep(60)"],
                            tmp_path / "k.log")  # fmt: skip
    failing = ManagedProcess("failing", [sys.executable, "-c", "raise SystemExit(3)"],
                             tmp_path / "f.log")  # fmt: skip
    killed.start()
    failing.start()
    try:
        assert killed.pid is not None
        os.kill(killed.pid, signal.SIGKILL)
        wait_for(lambda: killed.poll() is not None and failing.poll() is not None, timeout_s=10)
        with pytest.raises(DeploymentFault, match=r"killed \(pid \d+\) exited with code -9"):
            raise_if_exited([killed])
        with pytest.raises(DeploymentError, match="exited with code 3") as caught:
            raise_if_exited([failing])
        assert not isinstance(caught.value, DeploymentFault)
    finally:
        killed.stop(0.0)
        failing.stop(0.0)


def test_a_file_tail_is_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert file_tail(log, 3) == "line 97\nline 98\nline 99"
    assert file_tail(tmp_path / "missing.log") == ""


# A child that starts a grandchild (same process group), records both pids, says so on
# stderr, then sleeps (or exits with $EXIT_CODE when set).
FAMILY = textwrap.dedent(
    """
    import os, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(sys.argv[1], "w") as fh:
        fh.write(f"{os.getpid()} {grandchild.pid}")
    print("family started", file=sys.stderr, flush=True)
    if "EXIT_CODE" in os.environ:
        sys.exit(int(os.environ["EXIT_CODE"]))
    time.sleep(60)
    """
)


def family_pids(pid_file: Path) -> tuple[int, int]:
    child, grandchild = pid_file.read_text().split()
    return int(child), int(grandchild)


async def wait_for_file(path: Path, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never written"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("error", [DeploymentError, WorkloadError])
async def test_nonzero_exit_raises_the_callers_error_with_the_stderr_tail(
    error: type[DynamoTuneError],
) -> None:
    script = "import sys; [print(f'err {i}', file=sys.stderr) for i in range(50)]; sys.exit(3)"
    with pytest.raises(error) as exc:
        await run_to_completion(
            [sys.executable, "-c", script], name="step", error=error, timeout_s=30
        )
    message = str(exc.value)
    assert message.startswith("step: ") and "exited with code 3; stderr tail:\n" in message
    tail = message.split("stderr tail:\n", 1)[1]
    assert tail.splitlines() == [f"err {i}" for i in range(30, 50)]  # the last 20 lines


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(WorkloadError) as exc:
        await run_to_completion(
            [sys.executable, "-c", FAMILY, str(pids)],
            name="workload",
            error=WorkloadError,
            timeout_s=1.5,
        )
    assert time.monotonic() - started < 10
    assert "did not finish within 1.5 s; stderr tail:\nfamily started" in str(exc.value)
    child, grandchild = family_pids(pids)
    assert gone(child) and gone(grandchild), "the timed-out group survived"


async def test_cancellation_kills_the_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    task = asyncio.create_task(
        run_to_completion(
            [sys.executable, "-c", FAMILY, str(pids)],
            name="workload",
            error=WorkloadError,
            timeout_s=None,
        )
    )
    await wait_for_file(pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    child, grandchild = family_pids(pids)
    assert gone(child) and gone(grandchild), "the cancelled group survived"


async def test_a_clean_exit_leaves_what_it_started_running(tmp_path: Path) -> None:
    """A `start` script may leave a server behind: only a timeout or cancellation kills."""
    pids = tmp_path / "pids"
    env = {**os.environ, "EXIT_CODE": "0"}
    await run_to_completion(
        [sys.executable, "-c", FAMILY, str(pids)],
        name="deployment.start",
        error=DeploymentError,
        timeout_s=30,
        env=env,
    )
    child, grandchild = family_pids(pids)
    try:
        assert gone(child)
        assert not gone(grandchild, 0.3)
    finally:
        os.kill(grandchild, signal.SIGKILL)


async def test_output_goes_to_the_given_logs(tmp_path: Path) -> None:
    out, err = tmp_path / "logs" / "s.out.log", tmp_path / "logs" / "s.err.log"
    script = "import sys; print(sys.argv[1]); print('e' + sys.argv[1], file=sys.stderr)"
    for run in ("1", "2"):
        await run_to_completion(
            [sys.executable, "-c", script, run],
            name="s",
            error=DeploymentError,
            timeout_s=30,
            stdout_path=out,
            stderr_path=err,
        )
    assert out.read_text() == "1\n2\n"  # appended
    assert err.read_text() == "e2\n"  # this run's stderr only


async def test_a_missing_program_is_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"^workload: cannot start '/nonexistent/aiperf'"):
        await run_to_completion(
            ["/nonexistent/aiperf"], name="workload", error=WorkloadError, timeout_s=5
        )
