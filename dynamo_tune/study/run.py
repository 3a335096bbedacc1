"""Run a study to its target of COMPLETE trials. Does I/O: deployment, storage, stdout.

`n_trials` counts COMPLETE trials in the whole study, across runs and processes: a run
continues an existing study until the target is reached (`MaxTrialsCallback` with
`states=(COMPLETE,)`) and stops as soon as the COMPLETE plus the RUNNING trials (other
runners') reach it, so concurrent runners do not overshoot. After
`study.max_failures_in_a_row` consecutive FAIL trials the run stops with the last reason.
`run_study_file` is `dynamo-tune run`: load, open or resume, run, with injectable services.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import DynamoTuneError, RunStopped, SpecError
from dynamo_tune.study.attr_keys import TrialAttr
from dynamo_tune.study.loading import load_spec
from dynamo_tune.study.objective import Objective, TrialServices
from dynamo_tune.study.opening import StudyHandle, open_for_run
from dynamo_tune.study.progress import eta_seconds, overhead_share, progress_line
from dynamo_tune.study.readback import best_trials, improvement_text
from dynamo_tune.study.samplers import sets_constraints
from dynamo_tune.study.storage import storage_errors

ServicesFactory = Callable[[StudyHandle], TrialServices]
"""Builds a study's trial services (`services.build_services`; fakes in tests)."""


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
            self.last_fail_reason = str(trial.user_attrs.get(TrialAttr.FAIL_REASON, "unknown"))
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
        with storage_errors(handle.target, "write"):
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


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C while a run is in progress (trial FAIL, deployment stopped)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_study_file(
    study_file: Path,
    services_for: ServicesFactory,
    *,
    n_trials: int | None = None,
    allow_changed_space: bool = False,
    out: TextIO | None = None,
) -> RunSummary:
    """`dynamo-tune run`: validate the file, create or resume its study, run to the target.

    Nothing is written for an invalid file (`SpecError`); `n_trials` overrides the file's.
    """
    out = out or sys.stdout
    loaded = load_spec(study_file)
    target_trials = n_trials if n_trials is not None else loaded.spec.study.n_trials
    if target_trials < 1:
        raise SpecError(f"--n-trials must be >= 1, got {target_trials}")
    handle = open_for_run(loaded, allow_changed_space=allow_changed_space)
    if handle.space_changed:
        print("warning: search space changed; continuing (--allow-changed-space)", file=out)
    with sigterm_as_interrupt():
        summary = run_study(handle, services_for(handle), n_trials=target_trials, out=out)
    print(
        f"inspect: dynamo-tune trials {study_file} | dynamo-tune best {study_file} | "
        f"dynamo-tune dashboard {study_file}",
        file=out,
    )
    return summary
