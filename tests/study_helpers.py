"""Helpers shared by the study tests: open a study file's study, wait, stop a dashboard."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
from optuna.trial import TrialState

from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.store.storage import open_storage, resolve_storage
from dynamo_tune.study.trial.attr_keys import CORE_KEYS, TrialAttr

# User attrs every COMPLETE trial must carry (issue 5, "Every trial stored").
REQUIRED_ATTRS = (
    *CORE_KEYS,
    "client_ttft_p95_seconds",
    "client_itl_p95_seconds",
    "client_kve",
    "kve_ceiling",
    "requests_ok",
    "requests_failed",
    "window_start",
    "window_end",
    "frontend_args",
    "errors",
)


def open_storage_of(path: Path) -> optuna.storages.BaseStorage:
    """The storage a study file names (for Optuna APIs that take a storage)."""
    loaded = load_spec(path)
    s = loaded.spec.study
    return open_storage(resolve_storage(s.storage, s.name, loaded.base_dir))


def open_study(path: Path) -> optuna.Study:
    """The study a study file names, loaded from its storage."""
    name = load_spec(path).spec.study.name
    return optuna.load_study(study_name=name, storage=open_storage_of(path))


@contextlib.contextmanager
def closing_study(path: Path) -> Iterator[optuna.Study]:
    """The study a study file names; its storage is closed on exit (a server database's pooled
    connections would otherwise outlive the test). KeyError if there is no such study."""
    storage = open_storage_of(path)
    try:
        yield optuna.load_study(study_name=load_spec(path).spec.study.name, storage=storage)
    finally:
        if isinstance(storage, optuna.storages.RDBStorage):
            storage.engine.dispose()


def trials_of(
    path: Path, states: tuple[TrialState, ...] | None = None
) -> list[optuna.trial.FrozenTrial]:
    """The trials of a study file's study (see `closing_study`)."""
    with closing_study(path) as study:
        return study.get_trials(states=states)


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> None:
    """Poll `predicate` until true; AssertionError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(poll_s)


def running_trials(path: Path) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials a runner has claimed and given params ([] before the study exists)."""
    try:
        trials = open_study(path).get_trials(states=(TrialState.RUNNING,))
    except KeyError:
        return []
    return [t for t in trials if TrialAttr.RUNNER in t.user_attrs and t.params]


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT the child's process group, SIGKILL it after 10 s; close its stdout."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def sigkill_when(
    proc: subprocess.Popen[bytes], predicate: Callable[[], bool], timeout_s: float
) -> None:
    """Wait until `predicate` holds, then SIGKILL the group of `proc` (also on failure)."""
    try:
        wait_for(predicate, timeout_s=timeout_s)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sigkill_mid_trial(
    proc: subprocess.Popen[bytes], path: Path, timeout_s: float
) -> optuna.trial.FrozenTrial:
    """Wait until the runner `proc` has a RUNNING trial, SIGKILL its group; the killed trial."""
    seen: list[optuna.trial.FrozenTrial] = []

    def running() -> bool:
        seen[:] = running_trials(path)
        return bool(seen)

    sigkill_when(proc, running, timeout_s)
    (killed,) = seen
    return killed


def assert_extras_pruned_unmeasured(trials: list[optuna.trial.FrozenTrial]) -> None:
    """Every trial beyond the COMPLETE ones was pruned before measuring: a runner that asked
    for a trial as another completed the last one (`Objective.search_target`)."""
    for t in trials:
        if t.state != TrialState.COMPLETE:
            assert t.state == TrialState.PRUNED, t
            assert "n_trials reached" in t.user_attrs["fail_reason"]
            assert not t.params and "window_start" not in t.user_attrs
