"""ManagedProcess hygiene: own process group, stop by pid, no child outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dynamo_tune.deploy.process import ManagedProcess
from dynamo_tune.errors import DeploymentError


def gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            return True  # exited; only waiting to be reaped by init
        time.sleep(0.05)
    return False


PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dynamo_tune.deploy.process import ManagedProcess
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
            os.killpg(child_pid, signal.SIGKILL)


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
