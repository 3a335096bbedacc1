"""Run a study: its stages in order, then the verdict. Does I/O: deployment, storage.

`n_trials` counts COMPLETE search trials in the whole study, across runs and processes: a run
continues an existing study until the target is reached (`stages.SearchStage`), then, with a
confirmation, measures the plan's queued measurements (`stages.ConfirmationStage`) and
decides, stores and reports the verdict. After `study.max_failures_in_a_row` consecutive FAIL
trials a stage stops with the last reason (`RunStopped`). The loop reports what happens as
events (`events.Reporter`); it prints nothing. It asks and tells each trial itself (`trials`):
a database outage costs a warning, or, past `study.storage_retry_s`, stops the run with the
trial's result kept in a spill file the next run stores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from dynamo_tune.study.confirmation import plan as confirmation_plan
from dynamo_tune.study.confirmation.agreement import ScreenAgreement, agreement
from dynamo_tune.study.confirmation.edges import can_widen
from dynamo_tune.study.confirmation.verdict import Verdict, decide
from dynamo_tune.study.read.answers import improvement
from dynamo_tune.study.read.dashboard_note import write_verdict_note
from dynamo_tune.study.run.events import (
    ConfirmationPlanned,
    ConfirmationUndecided,
    Reporter,
    ScreenAgreementReached,
    SearchDone,
    SearchTargetReached,
    StudyOpened,
    VerdictReached,
    Waiting,
    Warned,
    ignore,
)
from dynamo_tune.study.run.monitor import Monitor
from dynamo_tune.study.run.screening import Screening
from dynamo_tune.study.run.stages import ConfirmationStage, SearchStage, Stage, search_count
from dynamo_tune.study.run.trials import run_trials
from dynamo_tune.study.spec.schema import ConfirmSpec
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.store.retry import RetryingRDBStorage
from dynamo_tune.study.store.samplers import sets_constraints
from dynamo_tune.study.store.screen_study import load_screen_study
from dynamo_tune.study.store.storage import storage_errors
from dynamo_tune.study.trial.attr_keys import StudyAttr
from dynamo_tune.study.trial.objective import Objective, TrialServices
from dynamo_tune.study.trial.record import records


@dataclass
class RunSummary:
    """How a run ended."""

    target: int
    complete: int
    ran: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    verdict: Verdict | None = None


class _StagedObjective:
    """The objective as a stage runs it: the stage admits (or prunes) the trial first."""

    def __init__(self, stage: Stage, objective: Objective) -> None:
        self.stage = stage
        self.objective = objective

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        self.stage.admit(trial)
        return self.objective.measure(trial)  # `run_trials` stores it, then tells


def run_study(
    handle: StudyHandle,
    services: TrialServices,
    *,
    n_trials: int,
    report: Reporter = ignore,
    confirmation: ConfirmSpec | None = None,
    search: bool = True,
) -> RunSummary:
    """Run the search until the study holds `n_trials` COMPLETE search trials (or a guard
    stops it), then, with `confirmation`, the confirmation stage; decide the verdict."""
    study = handle.study
    spec = handle.loaded.spec
    if isinstance(handle.storage, RetryingRDBStorage):
        handle.storage.on_outage = lambda message: report(Warned(message))
    searching_stage = SearchStage(n_trials, spec.study.timeout_s)
    complete = search_count(study, TrialState.COMPLETE)
    summary = RunSummary(target=n_trials, complete=complete, recovered=handle.recovered)
    report(
        StudyOpened(
            name=spec.study.name,
            complete=complete,
            target=n_trials,
            storage=handle.target.display,
            created=handle.created,
            space_changed=handle.space_changed,
            recovered=tuple(handle.recovered),
        )
    )
    if handle.restored:
        numbers = ", ".join(map(str, handle.restored))
        report(Warned(f"stored the kept result of trial(s) {numbers} (a run lost its storage)"))
    searching = search and searching_stage.has_work(study)
    if searching and spec.study.screen is not None:
        Screening(handle, services.workload_for, report).run(study)  # before the live search
        searching = searching_stage.has_work(study)
    if search and not searching:
        running = search_count(study, TrialState.RUNNING)
        report(SearchTargetReached(search_count(study, TrialState.COMPLETE), n_trials, running))
    confirming = None
    if confirmation is not None and not searching:
        confirming = _plan_confirmation(study, confirmation, report)
    if not searching and (confirming is None or not confirming.has_work(study)):
        summary.verdict = _conclude(handle, report)  # nothing to measure: the verdict so far
        return summary
    objective = Objective(
        spec, services, use_set_constraint=sets_constraints(spec.study.sampler.name)
    )
    monitors: list[Monitor] = []
    warned: set[str] = set()
    deployment = services.deployment
    try:
        asyncio.run(deployment.start())
        if services.preflight is not None:
            asyncio.run(services.preflight(deployment.endpoints(), _say(report)))
        if searching:
            monitors.append(_run_stage(handle, objective, searching_stage, report, warned))
            report(
                SearchDone(
                    complete=search_count(study, TrialState.COMPLETE),
                    target=n_trials,
                    overheads=tuple(monitors[-1].overheads),
                    improvement=improvement(study),
                )
            )
            if confirmation is not None and search_count(study, TrialState.COMPLETE) >= n_trials:
                confirming = _plan_confirmation(study, confirmation, report)
        if confirming is not None and confirming.has_work(study):
            monitors.append(_run_stage(handle, objective, confirming, report, warned))
    finally:
        asyncio.run(deployment.stop())
    summary.ran = [n for m in monitors for n in m.ran]
    summary.complete = search_count(study, TrialState.COMPLETE)
    if confirming is not None:
        summary.verdict = _conclude(handle, report)
    if summary.verdict is None and (shown := screen_agreement(handle)) is not None:
        report(ScreenAgreementReached(shown))  # without a verdict to carry it
    return summary


def _say(report: Reporter) -> Callable[[str], None]:
    """Where the pre-run check says that it waits: a `Waiting` event."""

    def waiting(message: str) -> None:
        report(Waiting(message))

    return waiting


def screen_agreement(handle: StudyHandle) -> ScreenAgreement | None:
    """Screen vs live scores of a screened study so far (None: no screen)."""
    if handle.loaded.spec.study.screen is None:
        return None
    screen = load_screen_study(handle)
    if screen is None:
        return None
    return agreement(
        records(handle.study, TrialState.COMPLETE), records(screen, TrialState.COMPLETE)
    )


def _run_stage(
    handle: StudyHandle, objective: Objective, stage: Stage, report: Reporter, warned: set[str]
) -> Monitor:
    """Run one stage to its end; `RunStopped` after too many failures in a row."""
    study = handle.study
    monitor = Monitor(stage, handle.loaded.spec.study.max_failures_in_a_row, report, warned)
    sampler = stage.sampler()
    if sampler is not None:
        study.sampler = sampler
    with storage_errors(handle.target, "write"):
        run_trials(
            handle,
            _StagedObjective(stage, objective),
            objective,
            monitor,
            **stage.optimize_kwargs(study),
        )
    monitor.check_failures()
    return monitor


def _plan_confirmation(
    study: optuna.Study, confirmation: ConfirmSpec, report: Reporter
) -> ConfirmationStage | None:
    """Plan and queue the confirmation; None when there is nothing to confirm."""
    plan = confirmation_plan.extend_plan(study, confirmation.top, confirmation.repeats)
    if plan is None:
        report(ConfirmationPlanned(baseline=None, configs=(), repeats=0, queued=0))
        return None
    queued = confirmation_plan.enqueue_missing(study, plan)
    done = confirmation_plan.measurements(study, (TrialState.COMPLETE,))
    measured, left = sum(map(len, done.values())), confirmation_plan.waiting(study)
    report(
        ConfirmationPlanned(
            plan.baseline, tuple(plan.configs), plan.repeats, queued, measured, left
        )
    )
    return ConfirmationStage(plan)


def _conclude(handle: StudyHandle, report: Reporter) -> Verdict | None:
    """Decide, store and report the verdict from the confirmation measurements so far."""
    study = handle.study
    plan = confirmation_plan.stored_plan(study)
    if plan is None:
        return None
    done = confirmation_plan.measurements(study, (TrialState.COMPLETE,))
    sources = {r.number: r for r in records(study)}
    spec = handle.loaded.spec
    try:
        verdict = decide(
            sources, done, plan.baseline, plan.configs, spec.objective, spec.search_space,
            widenable=lambda edge: can_widen(spec, edge),
        )  # fmt: skip
    except ValueError as exc:
        report(ConfirmationUndecided(str(exc)))
        return None
    screened = screen_agreement(handle)
    if screened is not None:
        verdict = verdict.model_copy(update={"screen": screened})
    with storage_errors(handle.target, "write"):
        study.set_user_attr(StudyAttr.VERDICT, verdict.model_dump(mode="json"))
        write_verdict_note(study, verdict)  # optuna-dashboard's study note (its Note page)
    report(VerdictReached(verdict))
    return verdict
