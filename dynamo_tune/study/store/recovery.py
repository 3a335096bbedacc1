"""Resuming a study: dead runners' trials, re-enqueueing, the space guard. Does I/O: storage.

Every trial records which process runs it (`runner`: host, pid, process start time). A new
run fails the RUNNING trials whose runner process on this host is gone (a SIGKILL-ed run)
and re-enqueues their parameters once; RUNNING trials whose RDB heartbeat went stale (a dead
runner on any host) are failed the same way, with a reason (`fail_stale_trials`). Only the process
whose `tell(FAIL)` succeeds re-enqueues, so two runners never duplicate a retry.
"""

from __future__ import annotations

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import SearchSpaceChanged
from dynamo_tune.study.trial.attr_keys import StudyAttr, TrialAttr
from dynamo_tune.study.trial.record import (
    StudyRecord,
    TrialRecord,
    enqueue,
    records,
    retry_attrs,
)
from dynamo_tune.study.trial.runner import runner_is_dead

BASELINE_ATTEMPTS = 3
"""How often the baseline is attempted before a fault chain gives up on it: the study has no
verdict without a COMPLETE baseline, so it is retried past the once of other configurations
(found by the fault-injection soak: a fault and then a killed runner lost it for good)."""


def reenqueue_once(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Enqueue a failed trial's parameters again unless it was itself a retry (the baseline:
    until `BASELINE_ATTEMPTS` attempts) or a confirmation measurement (the confirmation plan
    queues what it lacks). True when queued."""
    record = TrialRecord.from_frozen(trial)
    if not record.params or record.is_confirmation:
        return False
    if record.retry_of is not None and (
        not record.baseline or _attempts(study, record) >= BASELINE_ATTEMPTS
    ):
        return False
    enqueue(study, record.params, retry_attrs(record))
    return True


def _attempts(study: optuna.Study, record: TrialRecord) -> int:
    """How many trials the retry chain ending at `record` holds (`retry_of` links)."""
    by_number = {r.number: r for r in records(study)}
    count, link = 1, record.retry_of
    while link is not None and link in by_number and count <= len(by_number):
        count, link = count + 1, by_number[link].retry_of
    return count


def fail_dead_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """FAIL every RUNNING trial whose runner on this host died; re-enqueue each once."""
    study_id = storage.get_study_id_from_name(study.study_name)
    failed: list[int] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not runner_is_dead(TrialRecord.from_frozen(trial).runner):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        if _fail_and_requeue(study, storage, trial_id, DEAD_REASON) is not None:
            failed.append(trial.number)
    return failed


def _fail_and_requeue(
    study: optuna.Study, storage: optuna.storages.BaseStorage, trial_id: int, reason: str
) -> int | None:
    """FAIL a RUNNING trial with `reason` and re-enqueue it once; its number, or None when it
    finished meanwhile or another runner failed it first (that runner re-enqueues, not us)."""
    try:
        storage.set_trial_user_attr(trial_id, TrialAttr.FAIL_REASON, reason)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return None
    except UpdateFinishedTrialError:
        return None
    trial = storage.get_trial(trial_id)
    reenqueue_once(study, trial)
    return trial.number


DEAD_REASON = "runner process died (killed) mid-trial"
"""The `fail_reason` of a RUNNING trial whose runner process on this host is gone."""

STALE_REASON = "runner stopped sending heartbeats mid-trial (killed, or cut off from the storage)"
"""The `fail_reason` of a RUNNING trial whose RDB heartbeat went stale."""


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """FAIL, with `STALE_REASON`, every RUNNING trial whose RDB heartbeat is stale (a runner
    on any host that died); re-enqueue each once. What `optuna.storages.fail_stale_trials`
    does, plus the reason. Runs before each trial and when a run opens the study, so a dead
    runner's trials do not count as "running elsewhere". Only the process whose FAIL is
    stored re-enqueues. Nothing (journal storage) without a heartbeat.
    """
    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return []
    stale = storage._get_stale_trial_ids(study._study_id)  # type: ignore[attr-defined]
    failed = (_fail_and_requeue(study, storage, trial_id, STALE_REASON) for trial_id in stale)
    return [number for number in failed if number is not None]


def check_space(study: optuna.Study, fingerprint: str, allow_changed: bool) -> bool:
    """Refuse a changed search space unless allowed; True if the space changed."""
    stored = StudyRecord.from_study(study).search_space
    if stored is None or stored == fingerprint:
        return False
    if not allow_changed:
        raise SearchSpaceChanged(study.study_name)
    study.set_user_attr(StudyAttr.SEARCH_SPACE, fingerprint)
    return True
