"""Resuming a study: dead runners' trials, re-enqueueing, the space guard. Does I/O: storage.

Every trial records which process runs it (`runner`: host, pid, process start time). A new
run fails the RUNNING trials whose runner process on this host is gone (a SIGKILL-ed run)
and re-enqueues their parameters once; RUNNING trials of other hosts are left to the RDB
heartbeat (`fail_stale_trials`), whose callback re-enqueues the same way. Only the process
whose `tell(FAIL)` succeeds re-enqueues, so two runners never duplicate a retry.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import SearchSpaceChanged
from dynamo_tune.study.trial.attr_keys import StudyAttr, TrialAttr
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord, enqueue, retry_attrs
from dynamo_tune.study.trial.runner import runner_is_dead


def reenqueue_once(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Enqueue a failed trial's parameters again unless it was itself a retry (or a
    confirmation measurement: the confirmation plan queues what it lacks)."""
    record = TrialRecord.from_frozen(trial)
    if record.retry_of is not None or not record.params or record.is_confirmation:
        return False
    enqueue(study, record.params, retry_attrs(record))
    return True


def fail_dead_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """FAIL every RUNNING trial whose runner on this host died; re-enqueue each once."""
    failed: list[int] = []
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not runner_is_dead(TrialRecord.from_frozen(trial).runner):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_user_attr(
                trial_id, TrialAttr.FAIL_REASON, "runner process died (killed) mid-trial"
            )
        except RuntimeError:  # UpdateFinishedTrialError
            continue  # it just finished elsewhere: not dead after all
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError):
            continue  # another runner failed it first: it re-enqueues, not us
        reenqueue_once(study, trial)
        failed.append(trial.number)
    return failed


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """FAIL RUNNING trials whose RDB heartbeat is stale (runners on other hosts that died).

    Optuna does this before each new trial inside `optimize`; a run does it up front too, so
    a dead runner's trials do not count as "running elsewhere" when the run decides whether
    the target is reached. Their parameters are re-enqueued by `heartbeat_failed_callback`.
    """
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    return sorted(before - after)


def heartbeat_failed_callback(study: optuna.Study, trial: FrozenTrial) -> None:
    """`RDBStorage(failed_trial_callback=...)`: re-enqueue a heartbeat-stale trial once."""
    reenqueue_once(study, trial)


def check_space(study: optuna.Study, fingerprint: str, allow_changed: bool) -> bool:
    """Refuse a changed search space unless allowed; True if the space changed."""
    stored = StudyRecord.from_study(study).search_space
    if stored is None or stored == fingerprint:
        return False
    if not allow_changed:
        raise SearchSpaceChanged(study.study_name)
    study.set_user_attr(StudyAttr.SEARCH_SPACE, fingerprint)
    return True
