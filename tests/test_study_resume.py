"""Resume after a killed runner, and two runners on one storage (fake services, real processes)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from fakes import fake_stack, write_study
from optuna.trial import TrialState
from study_helpers import (
    assert_extras_pruned_unmeasured,
    open_study,
    running_trials,
    sigkill_mid_trial,
    wait_for,
)

from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.study import run_study_file
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.space import SearchSpace
from dynamo_tune.study.store.storage import open_storage, resolve_storage
from dynamo_tune.study.trial.attr_keys import TrialAttr
from dynamo_tune.study.trial.runner import runner_identity

pytestmark = pytest.mark.integration  # child runner processes (fake services, real storage)

FAKES = Path(__file__).with_name("fakes.py")


def _runner(path: Path, trial_seconds: float, capture: bool = True) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(FAKES), str(path), "--trial-seconds", str(trial_seconds)],
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_sigkill_mid_trial_then_resume_reaches_exactly_n_trials(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    proc = _runner(path, trial_seconds=30.0, capture=False)
    killed = sigkill_mid_trial(proc, path, timeout_s=60)
    out = io.StringIO()
    run_study_file(path, fake_stack().services, report=TextReporter(out))
    assert f"trial #{killed.number} was left RUNNING by a killed run" in out.getvalue()
    trials = open_study(path).get_trials()
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 3
    assert trials[killed.number].state == TrialState.FAIL
    assert "died" in trials[killed.number].user_attrs["fail_reason"]
    retries = [t for t in trials if t.user_attrs.get(TrialAttr.RETRY_OF) == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state == TrialState.COMPLETE
    # the killed trial was the baseline: its retry is still the baseline
    assert retries[0].user_attrs.get("baseline") is True
    assert states.count(TrialState.RUNNING) == 0


def test_a_retry_that_dies_again_is_not_enqueued_twice(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 1, "study.baseline": None})
    run_study_file(path, fake_stack().services)
    study = open_study(path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = runner_identity(dead.pid)
    dead.wait()
    params = study.get_trials()[0].params
    study.enqueue_trial(params, user_attrs={TrialAttr.RETRY_OF: 0})
    trial = study.ask()
    trial.set_user_attr(TrialAttr.RUNNER, identity)
    run_study_file(path, fake_stack().services, n_trials=2)
    trials = open_study(path).get_trials()
    assert trials[trial.number].state == TrialState.FAIL
    assert sum(t.user_attrs.get(TrialAttr.RETRY_OF) is not None for t in trials) == 1


def test_a_live_runners_trial_is_left_alone(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 1, "study.baseline": None})
    run_study_file(path, fake_stack().services)
    study = open_study(path)
    trial = study.ask()
    trial.set_user_attr(TrialAttr.RUNNER, runner_identity())  # this very process: alive
    run_study_file(path, fake_stack().services, n_trials=3)
    assert open_study(path).get_trials()[trial.number].state == TrialState.RUNNING


@pytest.mark.parametrize("storage", ["sqlite:///shared.db", "journal:shared.log"])
def test_two_concurrent_runners_lose_and_duplicate_nothing(tmp_path: Path, storage: str) -> None:
    path = write_study(tmp_path, {"study.n_trials": 8, "study.storage": storage})
    procs = [_runner(path, trial_seconds=0.3) for _ in range(2)]
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=180)
            outputs.append(out.decode())
            assert proc.returncode == 0, out.decode()
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    trials = open_study(path).get_trials()
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 8
    assert_extras_pruned_unmeasured(trials)
    assert [t.number for t in trials] == list(range(len(trials)))
    trials = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials) == 1
    # kv trials draw continuous knobs: a repeat would mean both runners drew the same sequence
    # (round-robin trials have only hints.session_id left to vary and may repeat legitimately)
    kv = [tuple(sorted(t.params.items())) for t in trials if t.params["router.mode"] == "kv"]
    assert kv and len(set(kv)) == len(kv)
    pids = {t.user_attrs[TrialAttr.RUNNER]["pid"] for t in trials}
    assert pids == {p.pid for p in procs}, "both runners should have run trials"
    windows = sorted((t.user_attrs["window_start"], t.user_attrs["window_end"]) for t in trials)
    assert len(windows) == 8


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_fails_the_trial_with_a_reason(tmp_path: Path, sig: int) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    proc = _runner(path, trial_seconds=30.0)
    try:
        wait_for(lambda: bool(running_trials(path)), timeout_s=60)
        (running,) = running_trials(path)
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode != 0
    trial = open_study(path).get_trials()[running.number]
    assert trial.state == TrialState.FAIL
    named = "SIGTERM" if sig == signal.SIGTERM else "SIGINT (Ctrl-C)"
    assert trial.user_attrs["fail_reason"] == f"interrupted by {named} during workload"
    assert b"deployment stopped" in out


def test_heartbeat_fails_a_stale_trial_of_another_host_and_reenqueues_it(tmp_path: Path) -> None:
    path = write_study(
        tmp_path,
        {
            "study.n_trials": 1,
            "study.baseline": None,
            "study.heartbeat_interval_s": 1,
            "study.storage_retry_s": 2,  # stale after max(3 beats, 2 s + 1 beat) = 3 s
        },
    )
    run_study_file(path, fake_stack().services)
    loaded = load_spec(path)
    target = resolve_storage(loaded.spec.study.storage, "fake", loaded.base_dir)
    storage = open_storage(target, heartbeat_interval_s=1)
    assert isinstance(storage, optuna.storages.RDBStorage)
    study = optuna.load_study(study_name="fake", storage=storage)
    params = study.get_trials()[0].params
    study.enqueue_trial(params)
    with pytest.warns(UserWarning, match="Heartbeat"):
        trial = study.ask()  # a runner on another host, as far as this one can tell
    SearchSpace(loaded.spec.search_space).suggest(trial)
    trial.set_user_attr(TrialAttr.RUNNER, {"host": "elsewhere", "pid": 1, "start": "0"})
    study_id = storage.get_study_id_from_name("fake")
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    storage.record_heartbeat(trial_id)
    # stale after the grace period, 3 intervals (1 s) without a beat on the database's clock
    # (sqlite's has 1 s steps): polled with the query the next run's recovery makes
    wait_for(lambda: trial_id in storage._get_stale_trial_ids(study_id), timeout_s=30, poll_s=0.2)
    run_study_file(path, fake_stack().services, n_trials=2)
    trials = open_study(path).get_trials()
    assert trials[trial.number].state == TrialState.FAIL
    assert trials[trial.number].user_attrs[TrialAttr.FAIL_REASON] == (
        "runner stopped sending heartbeats mid-trial (killed, or cut off from the storage)"
    )
    retries = [t for t in trials if t.user_attrs.get(TrialAttr.RETRY_OF) == trial.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == params
