"""Run a study to its target of COMPLETE trials. Does I/O: deployment, storage, stdout.

`n_trials` counts COMPLETE trials in the whole study, across runs and processes: a run
continues an existing study until the target is reached (`MaxTrialsCallback` with
`states=(COMPLETE,)`) and stops as soon as the COMPLETE plus the RUNNING trials (other
runners') reach it, so concurrent runners do not overshoot. After
`study.max_failures_in_a_row` consecutive FAIL trials the run stops with the last reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TextIO

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import DynamoTuneError
from dynamo_tune.objective import Objective, TrialServices
from dynamo_tune.progress import eta_seconds, overhead_share, progress_line
from dynamo_tune.samplers import sets_constraints
from dynamo_tune.study import StudyHandle
from dynamo_tune.study_report import best_trials, improvement_text


class RunStopped(DynamoTuneError):
    """The run gave up: too many consecutive FAIL trials."""


@dataclass
class RunSummary:
    """How a run ended."""

    target: int
    complete: int
    ran: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)


def _count(study: optuna.Study, state: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=(state,)))


class _Monitor:
    """Optuna callback: progress line, concurrency guard, consecutive-failure guard."""

    def __init__(self, target: int, max_failures: int, out: TextIO) -> None:
        self.target = target
        self.max_failures = max_failures
        self.out = out
        self.durations: list[float] = []
        self.ran: list[int] = []
        self.fail_streak = 0
        self.last_fail_reason: str | None = None
        self.overheads: list[float] = []

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.ran.append(trial.number)
        if trial.duration is not None:
            self.durations.append(trial.duration.total_seconds())
            share = overhead_share(dict(trial.user_attrs), self.durations[-1])
            if share is not None and trial.state == TrialState.COMPLETE:
                self.overheads.append(share)
        complete = _count(study, TrialState.COMPLETE)
        running = _count(study, TrialState.RUNNING)
        best = best_trials(study)
        print(
            progress_line(
                complete=complete,
                target=self.target,
                number=trial.number,
                state=trial.state.name,
                values=trial.values,
                best=(best[0].number, best[0].values) if len(best) == 1 else None,
                attrs=dict(trial.user_attrs),
                trial_seconds=self.durations[-1] if trial.duration is not None else None,
                eta=eta_seconds(self.durations, self.target - complete),
            ),
            file=self.out,
            flush=True,
        )
        if trial.state == TrialState.FAIL:
            self.fail_streak += 1
            self.last_fail_reason = str(trial.user_attrs.get("fail_reason", "unknown"))
        else:
            self.fail_streak = 0
        if self.fail_streak >= self.max_failures or complete + running >= self.target:
            study.stop()


def run_study(
    handle: StudyHandle, services: TrialServices, *, n_trials: int, out: TextIO
) -> RunSummary:
    """Run trials until the study holds `n_trials` COMPLETE ones (or a guard stops it)."""
    study = handle.study
    spec = handle.loaded.spec
    recovered = handle.recovered
    for number in recovered:
        print(f"trial #{number} was left RUNNING by a killed run: FAIL, re-enqueued", file=out)
    complete = _count(study, TrialState.COMPLETE)
    summary = RunSummary(target=n_trials, complete=complete, recovered=recovered)
    print(
        f"study {spec.study.name!r}: {complete}/{n_trials} COMPLETE in {handle.target.display}"
        + (" (new)" if handle.created else ""),
        file=out,
        flush=True,
    )
    if complete + _count(study, TrialState.RUNNING) >= n_trials:
        print("nothing to run: the target is reached (or running in other processes)", file=out)
        return summary
    monitor = _Monitor(n_trials, spec.study.max_failures_in_a_row, out)
    deployment = services.deployment
    try:
        asyncio.run(deployment.start())
        if services.preflight is not None:
            asyncio.run(services.preflight(deployment.endpoints()))
        objective = Objective(
            spec, services, use_set_constraint=sets_constraints(spec.study.sampler.name)
        )
        study.optimize(
            objective,
            timeout=spec.study.timeout_s,
            callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,)), monitor],
            catch=(DynamoTuneError,),
            gc_after_trial=False,
        )
    finally:
        asyncio.run(deployment.stop())
    summary.ran = monitor.ran
    summary.complete = _count(study, TrialState.COMPLETE)
    if monitor.fail_streak >= spec.study.max_failures_in_a_row:
        raise RunStopped(
            f"{monitor.fail_streak} trials in a row failed; last: {monitor.last_fail_reason}"
        )
    print(f"done: {summary.complete}/{n_trials} COMPLETE", file=out)
    if monitor.overheads:
        mean = sum(monitor.overheads) / len(monitor.overheads)
        print(
            f"per-trial overhead (wall time outside the measured window): mean {mean:.1%}, "
            f"max {max(monitor.overheads):.1%} over {len(monitor.overheads)} trials",
            file=out,
        )
    improvement = improvement_text(study)
    if improvement:
        print(improvement, file=out)
    return summary
