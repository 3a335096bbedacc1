"""The stages a run goes through, each an object the loop runs. Does I/O: the study storage.

A stage says whether it has work, which trials it admits (a trial handed out that is not its
own is pruned, not measured), how far it is, when to stop, and how Optuna should run it:

- `SearchStage`: until the study holds `target` COMPLETE search trials. A search trial goes
  ahead only while the COMPLETE search trials plus the RUNNING ones numbered before it are
  fewer than the target (trial numbers are handed out atomically, so concurrent runners never
  overshoot); a run stops once COMPLETE plus RUNNING reach it.
- `ConfirmationStage`: the queued confirmation measurements of a plan, then stop. Two runners
  may queue the same shortfall (the queueing takes no lock); a measurement goes ahead only
  while its configuration's COMPLETE measurements plus the RUNNING ones numbered before it
  are fewer than the plan's repeats, so the extra one is pruned, never measured. Its trials
  have fixed params: no sampler proposes anything, and a search sampler must not act on them
  (the grid sampler stops a study it deems done), so it runs under a `RandomSampler`.
"""

from __future__ import annotations

from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from dynamo_tune.study.confirmation import plan as confirmation_plan
from dynamo_tune.study.confirmation.confidence import summarize
from dynamo_tune.study.trial.attr_keys import TrialAttr
from dynamo_tune.study.trial.record import ConfirmPlan, TrialRecord, records
from dynamo_tune.study.trial.selection import best_trials, search_trials

TARGET_TAKEN = "n_trials reached by other runners"
NOTHING_LEFT = "no confirmation measurement left in the queue"
ENOUGH_MEASURED = "its configuration has all its confirmation measurements (queued twice)"


class Stage(Protocol):
    """One stage of a run (see the module docstring)."""

    name: str

    def has_work(self, study: optuna.Study) -> bool:
        """Whether running this stage would measure anything now."""

    def admit(self, trial: optuna.Trial) -> None:
        """Raise `optuna.TrialPruned` for a trial this stage must not measure."""

    def progress(self, study: optuna.Study) -> tuple[int, int, int]:
        """(done, left, target) after a trial ended."""

    def should_stop(self, study: optuna.Study) -> bool:
        """Whether the run should end this stage now."""

    def optimize_kwargs(self, study: optuna.Study) -> dict[str, Any]:
        """`n_trials` / `timeout` for `study.optimize`."""

    def sampler(self) -> optuna.samplers.BaseSampler | None:
        """The sampler the stage runs under (None: the study's own)."""

    def best(self, study: optuna.Study) -> TrialRecord | None:
        """The best trial so far, to show beside progress (None: not news in this stage)."""

    def noise(self, study: optuna.Study) -> tuple[float | None, int]:
        """(sd, n) of the measured noise, once known."""


def search_count(study: optuna.Study, state: TrialState) -> int:
    """Search-stage trials in `state` (confirmation measurements do not count)."""
    return len(search_trials(study, state))


class SearchStage:
    """Sample and measure until the study holds `target` COMPLETE search trials."""

    name = "search"

    def __init__(self, target: int, timeout_s: float | None = None) -> None:
        self.target = target
        self.timeout_s = timeout_s

    def has_work(self, study: optuna.Study) -> bool:
        return not self.should_stop(study)

    def admit(self, trial: optuna.Trial) -> None:
        record = TrialRecord.from_trial(trial)
        if record.is_confirmation:
            return  # a queued confirmation measurement: the confirmation stage's to count
        ahead = 0
        for r in records(trial.study, TrialState.COMPLETE, TrialState.RUNNING):
            if r.is_confirmation or r.number == trial.number:
                continue
            if r.state == TrialState.COMPLETE or r.number < trial.number:
                ahead += 1
        if ahead >= self.target:
            trial.set_user_attr(TrialAttr.FAIL_REASON, TARGET_TAKEN)
            trial.study.stop()
            raise optuna.TrialPruned(TARGET_TAKEN)

    def progress(self, study: optuna.Study) -> tuple[int, int, int]:
        done = search_count(study, TrialState.COMPLETE)
        return done, self.target - done, self.target

    def should_stop(self, study: optuna.Study) -> bool:
        running = search_count(study, TrialState.RUNNING)
        return search_count(study, TrialState.COMPLETE) + running >= self.target

    def optimize_kwargs(self, study: optuna.Study) -> dict[str, Any]:
        return {"n_trials": None, "timeout": self.timeout_s}

    def sampler(self) -> optuna.samplers.BaseSampler | None:
        return None

    def best(self, study: optuna.Study) -> TrialRecord | None:
        best = best_trials(study)
        return best[0] if len(best) == 1 else None

    def noise(self, study: optuna.Study) -> tuple[float | None, int]:
        return None, 0


class ConfirmationStage:
    """Measure the confirmation measurements `plan` has queued."""

    name = "confirm"

    def __init__(self, plan: ConfirmPlan) -> None:
        self.plan = plan

    def has_work(self, study: optuna.Study) -> bool:
        return confirmation_plan.waiting(study) > 0

    def admit(self, trial: optuna.Trial) -> None:
        record = TrialRecord.from_trial(trial)
        if not record.is_confirmation:
            raise optuna.TrialPruned(NOTHING_LEFT)
        ahead = 0
        for r in records(trial.study, TrialState.COMPLETE, TrialState.RUNNING):
            if not r.is_confirmation or r.confirms != record.confirms or r.number == trial.number:
                continue
            if r.state == TrialState.COMPLETE or r.number < trial.number:
                ahead += 1
        if ahead >= self.plan.repeats:  # two runners queued the same shortfall
            trial.set_user_attr(TrialAttr.FAIL_REASON, ENOUGH_MEASURED)
            raise optuna.TrialPruned(ENOUGH_MEASURED)

    def progress(self, study: optuna.Study) -> tuple[int, int, int]:
        done = confirmation_plan.measurements(study, (TrialState.COMPLETE,))
        total = len(self.plan.members) * self.plan.repeats
        return sum(map(len, done.values())), confirmation_plan.waiting(study), total

    def should_stop(self, study: optuna.Study) -> bool:
        """Queue again what the plan lacks (a measurement that FAILed, here or in another
        runner), then stop once nothing waits. Failures in a row stop the run (`Monitor`)."""
        confirmation_plan.enqueue_missing(study, self.plan)
        return confirmation_plan.waiting(study) == 0

    def optimize_kwargs(self, study: optuna.Study) -> dict[str, Any]:
        return {"n_trials": None, "timeout": None}  # until `should_stop`

    def sampler(self) -> optuna.samplers.BaseSampler | None:
        return optuna.samplers.RandomSampler()

    def best(self, study: optuna.Study) -> TrialRecord | None:
        return None  # a search trial's selection value is not news while confirming

    def noise(self, study: optuna.Study) -> tuple[float | None, int]:
        """sd of the baseline's COMPLETE confirmation measurements (n >= 2)."""
        done = confirmation_plan.measurements(study, (TrialState.COMPLETE,))
        values = [r.values[0] for r in done.get(self.plan.baseline, []) if r.values is not None]
        if len(values) < 2:
            return None, len(values)
        return summarize(values).sd, len(values)
