"""After each trial of a stage: report progress, guard failures, retry a fault once. Does I/O:
the study storage.

`Monitor` is called after each trial of one stage (`trials.run_trials`, as an Optuna
callback). It reports `TrialFinished`; stops the stage
when the stage says so or after `max_failures` FAIL trials in a row; re-enqueues once the
configuration of a trial a deployment or measurement fault failed (the trial's `fault` attr;
`store.recovery.reenqueue_once`: never a retry's, never a confirmation measurement's, which the
confirmation plan re-queues); and
warns once per run when a kv-mode trial's router applied no KV events (`outcome.NO_KV_EVENTS`).
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import MeasurementFault, RunStopped
from dynamo_tune.study.run.events import (
    FaultKind,
    FaultOutcome,
    FaultRetried,
    Reporter,
    TrialFinished,
    Warned,
)
from dynamo_tune.study.run.progress import eta_seconds, overhead_share
from dynamo_tune.study.run.stages import Stage
from dynamo_tune.study.store.recovery import reenqueue_once
from dynamo_tune.study.trial.outcome import NO_KV_EVENTS, NO_KV_EVENTS_WARNING
from dynamo_tune.study.trial.record import TrialRecord


class Monitor:
    """Optuna callback for one stage (see the module docstring)."""

    def __init__(self, stage: Stage, max_failures: int, report: Reporter, warned: set[str]) -> None:
        self.stage = stage
        self.max_failures = max_failures
        self.report = report
        self.warned = warned
        """Warnings reported so far in this run (shared by its monitors: once per run)."""
        self.durations: list[float] = []
        self.ran: list[int] = []
        self.overheads: list[float] = []
        self.fail_streak = 0
        self.last_fail_reason: str | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        record = TrialRecord.from_frozen(trial)
        self.ran.append(record.number)
        seconds = record.duration_seconds
        if seconds is not None:
            self.durations.append(seconds)
            share = overhead_share(record.measured_seconds, seconds)
            if share is not None and record.state == TrialState.COMPLETE:
                self.overheads.append(share)
        done, left, target = self.stage.progress(study)
        sd, n = self.stage.noise(study)
        self.report(
            TrialFinished(
                stage=self.stage.name,
                record=record,
                done=done,
                target=target,
                best=self.stage.best(study),
                trial_seconds=seconds,
                eta_seconds=eta_seconds(self.durations, left),
                noise_sd=sd,
                noise_n=n,
            )
        )
        if record.state == TrialState.FAIL:
            self.fail_streak += 1
            self.last_fail_reason = record.fail_reason or "unknown"
            if record.fault:
                self._retry_fault(study, trial, record, record.fault)
        else:
            self.fail_streak = 0
        if NO_KV_EVENTS in record.violations and NO_KV_EVENTS_WARNING not in self.warned:
            self.warned.add(NO_KV_EVENTS_WARNING)
            self.report(Warned(NO_KV_EVENTS_WARNING))
        if self.fail_streak >= self.max_failures or self.stage.should_stop(study):
            study.stop()

    def check_failures(self) -> None:
        """`RunStopped` naming the last reason if the stage ended on too many failures."""
        if self.fail_streak >= self.max_failures:
            raise RunStopped(
                f"{self.fail_streak} trials in a row failed (study.max_failures_in_a_row = "
                f"{self.max_failures}); last: {self.last_fail_reason}"
            )

    def _retry_fault(
        self, study: optuna.Study, trial: FrozenTrial, record: TrialRecord, fault: str
    ) -> None:
        """Measure a configuration a deployment or measurement fault interrupted once more."""
        if reenqueue_once(study, trial):
            outcome: FaultOutcome = "requeued"
        elif record.retry_of is not None:
            outcome = "was_retry"
        else:
            outcome = "confirmation"
        kind: FaultKind = "metrics" if MeasurementFault.describes(fault) else "deployment"
        self.report(FaultRetried(record.number, outcome, record.retry_of, kind))
