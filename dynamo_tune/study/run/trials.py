"""The trials of one stage, asked and told by the run itself. Does I/O: the study storage.

Optuna's `study.optimize` loses a trial whose `tell` meets a database outage (it leaves the
trial RUNNING and ends in an `UnboundLocalError`). The run owns the loop instead: before each
trial the stale trials of dead runners are failed (RDB heartbeat), then `ask`, the trial's
heartbeat while the objective runs, `tell`, and the stage's `Monitor`; `study.stop()` (a
stage, the monitor) ends it as in `optimize`, and so do `n_trials` and `timeout`. The storage
retries every call through an outage (`store.retry`). A trial the objective fails with a
`DynamoTuneError` is told FAIL and the run goes on; any other error (Ctrl-C, SIGTERM too) is
told FAIL, then raised; every FAIL trial gets a `fail_reason`. A measured trial's metrics are
written and the trial told in one section a signal does not cut (`interrupts.deferred`).
When the storage is still unreachable after `study.storage_retry_s`, the trial's result (its
measurement, or FAIL) goes to the spill file (`store.spill`) and the run stops with a
`StorageError` naming it: a runner never leaves its own trial RUNNING.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from dynamo_tune.errors import DynamoTuneError, StorageError
from dynamo_tune.interrupts import deferred
from dynamo_tune.study.run.monitor import Monitor
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.store.recovery import fail_stale_trials
from dynamo_tune.study.store.spill import Spilled, spill, spill_path
from dynamo_tune.study.trial.attr_keys import TrialAttr
from dynamo_tune.study.trial.objective import Objective, interrupted_reason
from dynamo_tune.study.trial.record import TrialRecord

log = logging.getLogger(__name__)

STORAGE_FAILURES = (SQLAlchemyError, StorageInternalError)
ObjectiveFn = Callable[[optuna.Trial], float | Sequence[float]]


def run_trials(
    handle: StudyHandle,
    func: ObjectiveFn,
    objective: Objective,
    monitor: Monitor,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
) -> None:
    """Run trials until `study.stop()`, `n_trials` trials or `timeout` seconds."""
    study = handle.study
    study._stop_flag = False
    study._thread_local.in_optimize_loop = True  # `study.stop()` is allowed in here
    started = time.monotonic()
    ran = 0
    try:
        while not study._stop_flag:
            if n_trials is not None and ran >= n_trials:
                break
            if timeout is not None and time.monotonic() - started >= timeout:
                break
            frozen = _one_trial(handle, func, objective)
            ran += 1
            monitor(study, frozen)
    finally:
        study._thread_local.in_optimize_loop = False
        study._stop_flag = False


def _one_trial(handle: StudyHandle, func: ObjectiveFn, objective: Objective) -> FrozenTrial:
    """Ask, measure (`func`: the stage's admission, then `Objective.measure`), then store and
    tell in one `deferred` section: a signal during it is raised once the trial is told, so an
    interrupted trial is FAIL with its reason and no metric attr, or COMPLETE with all."""
    study = handle.study
    fail_stale_trials(study)
    trial = study.ask()
    objective.result = None
    values: float | Sequence[float] | None = None
    state: TrialState | None = None
    error: BaseException | None = None
    with get_heartbeat_thread(trial._trial_id, study._storage):
        try:
            values = func(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except STORAGE_FAILURES as exc:  # the outage outlasted the retries: keep the result
            raise _spilled(handle, trial, objective, exc) from exc
        except (Exception, KeyboardInterrupt) as exc:
            state, error = TrialState.FAIL, exc
        with deferred():
            try:
                if state is None:
                    try:
                        objective.store(trial)
                    except STORAGE_FAILURES:
                        raise
                    except UpdateFinishedTrialError:
                        return _finished_elsewhere(study, trial)
                    except (Exception, KeyboardInterrupt) as exc:  # a second signal too
                        values, state, error = None, TrialState.FAIL, exc
                        _ensure_reason(trial, exc, "store")
                elif state == TrialState.FAIL:
                    _ensure_reason(trial, error)
                frozen = study.tell(trial, values, state=state, skip_if_finished=True)
            except STORAGE_FAILURES as exc:
                if state is not None:
                    objective.result = None  # a FAIL or PRUNED trial: nothing measured to keep
                raise _spilled(handle, trial, objective, exc) from exc
    if error is not None and not isinstance(error, DynamoTuneError):
        raise error
    return frozen


def _ensure_reason(trial: optuna.Trial, error: BaseException | None, stage: str = "") -> None:
    """Every FAIL trial says why: the objective's reason, else one from `error` (`stage`:
    what the run was doing, e.g. "store"). Nothing for a trial already finished elsewhere."""
    if TrialRecord.from_trial(trial).fail_reason is not None or error is None:
        return
    if isinstance(error, KeyboardInterrupt):
        reason = interrupted_reason(error, stage or None)
    else:
        reason = f"{stage + ': ' if stage else ''}{type(error).__name__}: {error}"
    with contextlib.suppress(UpdateFinishedTrialError):
        trial.set_user_attr(TrialAttr.FAIL_REASON, reason)


def _finished_elsewhere(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial:
    """Our trial was finished by another runner while we measured it (it failed it as stale
    when our heartbeat could not reach the database, and queued its configuration again):
    the measurement is dropped with one warning; the run goes on."""
    log.warning(
        "trial #%d was failed by another runner while it was measured (its heartbeat did not "
        "reach the storage): its measurement is dropped; the configuration is queued again",
        trial.number,
    )
    return study._storage.get_trial(trial._trial_id)


def _spilled(
    handle: StudyHandle, trial: optuna.Trial, objective: Objective, exc: BaseException
) -> StorageError:
    """Keep the trial's result in the spill file; the error that ends the run, naming it."""
    target = handle.target
    reason = target.reason(exc)
    path = spill_path(target, handle.loaded.base_dir, handle.loaded.spec.study.name)
    result = objective.result
    if result is None:
        failed: dict[str, Any] = {}
        if TrialRecord.from_trial(trial).fail_reason is None:  # else keep the objective's
            failed[TrialAttr.FAIL_REASON] = f"storage unreachable: {reason}"
        spill(path, Spilled.of(trial, None, failed, {}))
    else:
        spill(path, Spilled.of(trial, result.values, result.attrs, result.constraints))
    what = "failure" if result is None else "result"
    return StorageError(
        f"cannot write storage {target.display}: {reason}; trial {trial.number}'s {what} is "
        f"kept in {path} and stored by the next run"
    )
