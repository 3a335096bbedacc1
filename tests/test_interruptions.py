"""Ctrl-C and SIGTERM during a run: the trial's stored state, the last line, the resume lines,
and the local stack's run folder (issue 19, point 6).

Run as a script, this module is `dynamo-tune run` (the CLI's `main`) with the fakes in real
time, for the signal tests:

    python tests/test_interruptions.py STUDY.yaml [--trial-seconds S]
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fakes import RealClock, fake_stack, write_study
from optuna.trial import TrialState
from study_helpers import REQUIRED_ATTRS, open_study, running_trials, wait_for

from dynamo_tune.cli.main import main
from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.deploy.stack_state import pid_alive
from dynamo_tune.interrupts import Interrupted
from dynamo_tune.study import run_study_file
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.trial.attr_keys import CORE_KEYS, TrialAttr
from dynamo_tune.study.trial.objective import TrialServices
from dynamo_tune.study.trial.record import TrialRecord
from dynamo_tune.study.trial.runner import runner_identity

THIS = Path(__file__)


def _child(path: Path, trial_seconds: float = 30.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(THIS), str(path), "--trial-seconds", str(trial_seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.integration  # a child runner process (fake services, real signals)
@pytest.mark.parametrize(
    ("sig", "named"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT (Ctrl-C)")]
)
def test_a_signal_mid_trial_fails_it_naming_the_signal_and_ends_with_the_resume_command(
    tmp_path: Path, sig: signal.Signals, named: str
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    proc = _child(path)
    try:
        wait_for(lambda: bool(running_trials(path)), timeout_s=60)
        (running,) = running_trials(path)
        time.sleep(1.0)  # into the 30 s workload
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"dynamo-tune: interrupted by {named}; resume with: dynamo-tune run {path}"
    )
    assert "deployment stopped" in out
    trial = open_study(path).get_trials()[running.number]
    assert trial.state == TrialState.FAIL
    record = TrialRecord.from_frozen(trial)
    # the stage it was in ("workload" unless a loaded machine was slower to reach it)
    assert (record.fail_reason or "").startswith(f"interrupted by {named} during ")
    assert [k for k in CORE_KEYS if record.value(k) is not None] == []


class _SignalOnUpload:
    """An artifact sink that sends this process `sig` on its first upload, then stores."""

    def __init__(self, inner: Any, sig: signal.Signals = signal.SIGTERM) -> None:
        self.inner = inner
        self.sig = sig
        self.uploads: list[str] = []

    def upload(self, trial: optuna.Trial, filename: str, content: str) -> None:
        if not self.uploads:
            os.kill(os.getpid(), self.sig)
        self.uploads.append(filename)
        self.inner.upload(trial, filename, content)


class _FailingSink:
    def upload(self, trial: optuna.Trial, filename: str, content: str) -> None:
        raise OSError(28, "No space left on device")


def test_sigterm_while_storing_a_result_completes_the_trial_then_stops(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    stack = fake_stack()
    sinks: list[_SignalOnUpload] = []

    def services(handle: StudyHandle) -> TrialServices:
        built = stack.services(handle)
        sinks.append(_SignalOnUpload(built.artifacts))
        built.artifacts = sinks[-1]
        return built

    with pytest.raises(Interrupted) as caught:
        run_study_file(path, services)
    assert caught.value.signal_name == "SIGTERM"
    (trial,) = open_study(path).get_trials()
    assert trial.state == TrialState.COMPLETE  # measured before the signal: kept whole
    assert [k for k in REQUIRED_ATTRS if k not in trial.user_attrs] == []
    assert sinks[0].uploads == ["trial0-metrics.json", "trial0-workload.json"]
    assert stack.cluster.stopped


def test_a_failure_while_storing_a_result_fails_the_trial_with_a_reason(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    stack = fake_stack()

    def services(handle: StudyHandle) -> TrialServices:
        built = stack.services(handle)
        built.artifacts = _FailingSink()
        return built

    with pytest.raises(OSError, match="No space left"):
        run_study_file(path, services)
    (trial,) = open_study(path).get_trials()
    assert trial.state == TrialState.FAIL
    reason = TrialRecord.from_frozen(trial).fail_reason
    assert reason == "store: OSError: [Errno 28] No space left on device"


def test_an_interrupted_run_command_names_the_command_that_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dynamo_tune.study.run.services as services

    path = write_study(tmp_path, {"study.n_trials": 3})
    monkeypatch.setattr(
        services, "build_services", fake_stack(deployment={"interrupt_apply": {1}}).services
    )
    assert main(["run", str(path), "--n-trials", "3"]) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"dynamo-tune: interrupted by SIGINT (Ctrl-C); resume with: dynamo-tune run {path} "
        "--n-trials 3"
    )
    record = TrialRecord.from_frozen(open_study(path).get_trials()[1])
    assert record.fail_reason == "interrupted by SIGINT (Ctrl-C) during apply"


def test_a_resumed_confirmation_says_what_it_measures(tmp_path: Path) -> None:
    confirm = {"study.n_trials": 3, "study.confirm": {"top": 1, "repeats": 2}}
    path = write_study(tmp_path, confirm)
    # applies 0-2: the search; 3-6: baseline and best, twice each; the 2nd measurement stops
    with pytest.raises(KeyboardInterrupt):
        run_study_file(path, fake_stack(deployment={"interrupt_apply": {4}}).services)
    confirms = [t for t in open_study(path).get_trials() if "confirms" in t.user_attrs]
    best = ({t.user_attrs["confirms"] for t in confirms} - {0}).pop()
    out = io.StringIO()
    run_study_file(path, fake_stack().services, report=TextReporter(out))
    lines = out.getvalue().splitlines()
    assert lines[1:3] == [
        "search: the target is reached: 3 of 3 trials COMPLETE",
        f"confirmation: baseline #0 and #{best}, 2 fresh measurements each: 1 of 4 measured; "
        "measuring the 3 left",
    ]
    assert lines[3].startswith("[2/4] confirm #")


def test_a_search_finished_by_other_runners_says_so(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 1, "study.baseline": None})
    run_study_file(path, fake_stack().services)
    trial = open_study(path).ask()
    trial.set_user_attr(TrialAttr.RUNNER, runner_identity())  # a live runner: this process
    out = io.StringIO()
    run_study_file(path, fake_stack().services, n_trials=2, report=TextReporter(out))
    assert out.getvalue().splitlines()[1] == (
        "search: 1 of 2 trials COMPLETE and 1 running in other processes: no search trial "
        "left to start here"
    )


# -- the local stack's run folder ---------------------------------------------------------------


@pytest.fixture
def own_tempdir(tmp_path: Path) -> Iterator[Path]:
    """`tempfile`'s folder (and the children's TMPDIR default) is a fresh folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved


@pytest.mark.integration
def test_an_interrupted_stop_still_removes_the_stacks_run_folder(own_tempdir: Path) -> None:
    from dynamo_tune.deploy.local import LocalStack
    from dynamo_tune.deploy.spec import LocalDeploymentSpec, MockerSpec

    spec = LocalDeploymentSpec(
        workers=1,
        prometheus=False,
        mocker=MockerSpec(speedup_ratio=20.0, block_size=16, num_gpu_blocks=512),
    )
    stack = LocalStack(spec)
    asyncio.run(stack.start())
    run_dir = stack.run_dir
    pids = stack.pids()
    assert run_dir.parent == own_tempdir and (run_dir / "logs" / "worker-0.log").exists()

    async def stop_then_ctrl_c() -> None:
        stopping = asyncio.ensure_future(stack.stop())
        await asyncio.sleep(0.05)  # the workers are getting their SIGTERM
        stopping.cancel()  # what asyncio.run does on a second Ctrl-C
        with pytest.raises(asyncio.CancelledError):
            await stopping

    asyncio.run(stop_then_ctrl_c())
    assert [p for p in pids.values() if pid_alive(p)] == []
    # nothing left in the temp folder: no run folder, no Dynamo logging-config files
    assert sorted(p.name for p in own_tempdir.iterdir()) == []


def _main(argv: list[str]) -> int:
    """Child-process entry: `dynamo-tune run` (the CLI) with the fakes, in real time."""
    import argparse

    import dynamo_tune.study.run.services as services

    parser = argparse.ArgumentParser()
    parser.add_argument("study_file")
    parser.add_argument("--trial-seconds", type=float, default=0.2)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    stack = fake_stack(clock=RealClock(), workload_seconds=args.trial_seconds)
    stack.deployment.scrape_interval_s = 0.01
    services.build_services = stack.services
    try:
        return main(["run", args.study_file])
    finally:
        if stack.cluster.stopped:
            print("deployment stopped", flush=True)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
