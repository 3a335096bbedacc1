"""`dynamo-tune stack up --json` / `stack status`: the real command in a child process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dynamo_tune.cli.main import main
from dynamo_tune.deploy.stack_state import pid_alive

CLI = str(Path(sys.executable).parent / "dynamo-tune")


@pytest.fixture
def stack_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], Path]]:
    """`stack up --json` running in its own process group; killed at teardown if still up."""
    state_file = tmp_path / "stack.json"
    proc = subprocess.Popen(
        [CLI, "stack", "up", "--json", "--workers", "1", "--prometheus", "on",
         "--router-temperature", "0.25", "--state-file", str(state_file),
         "--run-dir", str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the one JSON line, printed once ready
        assert line, proc.stderr.read() if proc.stderr else ""
        yield proc, json.loads(line), state_file
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.integration
def test_up_json_status_and_sigterm(
    stack_up: tuple[subprocess.Popen[str], dict[str, Any], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc, info, state_file = stack_up
    assert info["state_file"] == str(state_file)
    assert "--router-temperature" in info["router_flags"]
    assert set(info["pids"]) == {"dynamo-tune", "frontend", "worker-0", "prometheus", "zmq-broker"}
    assert info["pids"]["dynamo-tune"] == proc.pid
    models = httpx.get(info["frontend_url"] + "/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [info["model"]]

    assert main(["stack", "status", "--json", "--state-file", str(state_file)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["healthy"] is True and status["problems"] == []

    copy = state_file.with_name("copy.json")
    copy.write_text(state_file.read_text())
    os.kill(info["pids"]["worker-0"], signal.SIGKILL)
    proc.wait(timeout=30)  # `stack up` ends with the dead worker's log tail
    assert proc.returncode == 1
    assert proc.stderr is not None
    assert re.search(r"worker-0 \(pid \d+\) exited with code -9", proc.stderr.read())
    assert not [name for name, pid in info["pids"].items() if pid_alive(pid)]
    assert not state_file.exists()
    assert main(["stack", "status", "--state-file", str(copy)]) == 1  # a stack that died
    out = capsys.readouterr().out
    assert "worker-0" in out and "not running" in out


@pytest.mark.integration
def test_sigterm_stops_every_process(
    stack_up: tuple[subprocess.Popen[str], dict[str, Any], Path],
) -> None:
    proc, info, state_file = stack_up
    assert state_file.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not [name for name, pid in info["pids"].items() if pid_alive(pid)]
    assert not state_file.exists()
    assert main(["stack", "status", "--state-file", str(state_file)]) == 1


def test_status_without_a_stack_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "status", "--state-file", str(tmp_path / "none.json")]) == 1
    assert "no running stack" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--router-temperature", "-1"], "temperature"),
        (["--router-mode", "direct"], "mode"),
        (["--active-decode-blocks-threshold", "2"], "active_decode_blocks_threshold"),
        (["--workers", "0"], "workers"),
        (["--speedup-ratio", "-2"], "speedup_ratio"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    argv: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s.json"
    assert main(["stack", "up", "--state-file", str(state), *argv]) == 2
    assert named in capsys.readouterr().err
    assert not state.exists()
