"""Resuming a study: dead runners' trials, re-enqueueing, the space guard. Does I/O: storage.

Every trial records which process runs it (`runner`: host, pid, process start time). A new
run fails the RUNNING trials whose runner process on this host is gone (a SIGKILL-ed run)
and re-enqueues their parameters once; RUNNING trials of other hosts are left to the RDB
heartbeat (`fail_stale_trials`), whose callback re-enqueues the same way. Only the process
whose `tell(FAIL)` succeeds re-enqueues, so two runners never duplicate a retry.
"""

from __future__ import annotations

import contextlib
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import SpecError
from dynamo_tune.study.trial.attr_keys import CARRIED_ON_RETRY, CONFIRM_STAGE, StudyAttr, TrialAttr
from dynamo_tune.study.trial.runner import runner_is_dead


def reenqueue_once(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Enqueue a failed trial's parameters again unless it was itself a retry."""
    if trial.user_attrs.get(TrialAttr.RETRY_OF) is not None or not trial.params:
        return False
    if trial.user_attrs.get(TrialAttr.STAGE) == CONFIRM_STAGE:
        return False  # the confirmation stage queues what its plan lacks (confirm.py)
    attrs = {k: trial.user_attrs[k] for k in CARRIED_ON_RETRY if k in trial.user_attrs}
    attrs[TrialAttr.RETRY_OF] = trial.number
    study.enqueue_trial(trial.params, user_attrs=attrs)
    return True


def fail_dead_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """FAIL every RUNNING trial whose runner on this host died; re-enqueue each once."""
    failed: list[int] = []
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not runner_is_dead(trial.user_attrs.get(TrialAttr.RUNNER)):
            continue
        with contextlib.suppress(Exception):  # a trial that just finished elsewhere
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_user_attr(
                trial_id, TrialAttr.FAIL_REASON, "runner process died (killed) mid-trial"
            )
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
    stored = study.user_attrs.get(StudyAttr.SEARCH_SPACE)
    if stored is None or stored == fingerprint:
        return False
    if not allow_changed:
        raise SpecError(
            f"study {study.study_name!r} was created with a different search_space; "
            "a sampler cannot mix them. Use a new study name, restore the old space, "
            "or pass --allow-changed-space to continue anyway"
        )
    study.set_user_attr(StudyAttr.SEARCH_SPACE, fingerprint)
    return True
