"""Run a study to its target of COMPLETE trials. Does I/O: deployment, storage, stdout.

`n_trials` counts COMPLETE trials in the whole study, across runs and processes: a run
continues an existing study until the target is reached (`MaxTrialsCallback` with
`states=(COMPLETE,)`) and stops as soon as the COMPLETE plus the RUNNING trials (other
runners') reach it, so concurrent runners do not overshoot. After
`study.max_failures_in_a_row` consecutive FAIL trials the run stops with the last reason.
A trial failed by a deployment fault (`fault` attr) gets its configuration re-enqueued once
(`recovery.reenqueue_once`: never a retry's, never a confirmation measurement's). A kv-mode
trial whose router applied no KV events prints one warning per run (`outcome.NO_KV_EVENTS`).
`run_study_file` is `dynamo-tune run`: load, open or resume, run, with injectable services.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import DynamoTuneError, RunStopped
from dynamo_tune.study.confirmation import plan as confirm
from dynamo_tune.study.confirmation.confidence import summarize
from dynamo_tune.study.confirmation.edges import can_widen
from dynamo_tune.study.confirmation.verdict import Verdict, decide
from dynamo_tune.study.read.answers import improvement_text
from dynamo_tune.study.run.progress import eta_seconds, overhead_share, progress_line
from dynamo_tune.study.spec.schema import ConfirmSpec
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.store.recovery import reenqueue_once
from dynamo_tune.study.store.samplers import sets_constraints
from dynamo_tune.study.store.storage import storage_errors
from dynamo_tune.study.trial.attr_keys import StudyAttr, TrialAttr
from dynamo_tune.study.trial.objective import Objective, TrialServices
from dynamo_tune.study.trial.outcome import NO_KV_EVENTS, NO_KV_EVENTS_WARNING
from dynamo_tune.study.trial.selection import best_trials, search_trials


@dataclass
class RunSummary:
    """How a run ended."""

    target: int
    complete: int
    ran: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    verdict: Verdict | None = None


def _count(study: optuna.Study, state: TrialState) -> int:
    """Search-stage trials in `state` (confirmation measurements do not count toward
    `n_trials`)."""
    return len(search_trials(study, state))


def _noise(study: optuna.Study) -> str | None:
    """The measured noise once known: sd of the baseline's confirmation measurements."""
    plan_ = confirm.stored_plan(study)
    if plan_ is None:
        return None
    done = confirm.measurements(study, (TrialState.COMPLETE,)).get(plan_.baseline, [])
    values = [t.values[0] for t in done if t.values is not None]
    if len(values) < 2:
        return None
    return f"noise sd {summarize(values).sd:.4f} (baseline, n={len(values)})"


class _Monitor:
    """Optuna callback: progress line, target guard, consecutive-failure guard.

    Search stage: stops once the search's COMPLETE plus RUNNING trials reach the target (so
    concurrent runners do not overshoot). Confirmation stage: stops when no confirmation
    measurement is left in the queue.
    """

    def __init__(
        self,
        target: int,
        max_failures: int,
        out: TextIO,
        confirming: bool,
        warned: set[str] | None = None,
    ) -> None:
        self.target = target
        self.max_failures = max_failures
        self.out = out
        self.confirming = confirming
        self.warned = warned if warned is not None else set()
        """Warnings printed so far in this run (shared by the run's monitors: once per run)."""
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
        if self.confirming:
            done = sum(map(len, confirm.measurements(study, (TrialState.COMPLETE,)).values()))
            left = confirm.waiting(study)
        else:
            done = _count(study, TrialState.COMPLETE)
            left = self.target - done
        best = [] if self.confirming else best_trials(study)  # a selection value: not news
        print(
            progress_line(
                complete=done,
                target=self.target,
                number=trial.number,
                state=trial.state.name,
                values=trial.values,
                best=(best[0].number, best[0].values) if len(best) == 1 else None,
                attrs=dict(trial.user_attrs),
                trial_seconds=self.durations[-1] if trial.duration is not None else None,
                eta=eta_seconds(self.durations, left),
                noise=_noise(study) if self.confirming else None,
            ),
            file=self.out,
            flush=True,
        )
        if trial.state == TrialState.FAIL:
            self.fail_streak += 1
            self.last_fail_reason = str(trial.user_attrs.get(TrialAttr.FAIL_REASON, "unknown"))
            if trial.user_attrs.get(TrialAttr.FAULT):
                self._retry_fault(study, trial)
        else:
            self.fail_streak = 0
        if NO_KV_EVENTS in (trial.user_attrs.get(TrialAttr.VIOLATIONS) or ()):
            self._warn_once(NO_KV_EVENTS_WARNING)
        if (
            self.fail_streak >= self.max_failures
            or self.confirming
            and left == 0
            or not self.confirming
            and done + _count(study, TrialState.RUNNING) >= self.target
        ):
            study.stop()

    def check_failures(self) -> None:
        if self.fail_streak >= self.max_failures:
            raise RunStopped(
                f"{self.fail_streak} trials in a row failed (study.max_failures_in_a_row = "
                f"{self.max_failures}); last: {self.last_fail_reason}"
            )

    def _retry_fault(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Measure a configuration a deployment fault interrupted once more."""
        retry_of = trial.user_attrs.get(TrialAttr.RETRY_OF)
        if reenqueue_once(study, trial):
            what = "re-enqueued once"
        elif retry_of is not None:
            what = f"not retried again (it was the retry of #{retry_of})"
        else:
            what = "not re-enqueued here (the confirmation plan re-queues what it lacks)"
        print(f"trial #{trial.number}: deployment fault; configuration {what}", file=self.out)

    def _warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            print(f"warning: {message}", file=self.out, flush=True)


def run_study(
    handle: StudyHandle,
    services: TrialServices,
    *,
    n_trials: int,
    out: TextIO,
    confirmation: ConfirmSpec | None = None,
    search: bool = True,
) -> RunSummary:
    """Run the search until the study holds `n_trials` COMPLETE search trials (or a guard
    stops it), then, with `confirmation`, the confirmation stage; print the verdict."""
    study = handle.study
    spec = handle.loaded.spec
    for number in handle.recovered:
        print(f"trial #{number} was left RUNNING by a killed run: FAIL, re-enqueued", file=out)
    complete = _count(study, TrialState.COMPLETE)
    summary = RunSummary(target=n_trials, complete=complete, recovered=handle.recovered)
    print(
        f"study {spec.study.name!r}: {complete}/{n_trials} COMPLETE in {handle.target.display}"
        + (" (new)" if handle.created else ""),
        file=out,
        flush=True,
    )
    searching = search and complete + _count(study, TrialState.RUNNING) < n_trials
    if search and not searching:
        print("search: the target is reached (or running in other processes)", file=out)
    confirm_plan = None
    if confirmation is not None and not searching:
        confirm_plan = _prepare_confirmation(study, confirmation, out)
    if not searching and (confirm_plan is None or not confirm.waiting(study)):
        summary.verdict = _conclude(handle, out)  # nothing to measure: the verdict so far
        return summary
    objective = Objective(
        spec, services, use_set_constraint=sets_constraints(spec.study.sampler.name)
    )
    monitors: list[_Monitor] = []
    warned: set[str] = set()
    deployment = services.deployment
    try:
        asyncio.run(deployment.start())
        if services.preflight is not None:
            asyncio.run(services.preflight(deployment.endpoints()))
        if searching:
            objective.search_target = n_trials
            monitors.append(
                _Monitor(n_trials, spec.study.max_failures_in_a_row, out, False, warned)
            )
            _optimize(handle, objective, monitors[-1], timeout=spec.study.timeout_s)
            monitors[-1].check_failures()
            _print_search_summary(study, n_trials, monitors[-1], out)
            if confirmation is not None and _count(study, TrialState.COMPLETE) >= n_trials:
                confirm_plan = _prepare_confirmation(study, confirmation, out)
        if confirm_plan is not None and confirm.waiting(study):
            total = len(confirm_plan.members) * confirm_plan.repeats
            monitors.append(_Monitor(total, spec.study.max_failures_in_a_row, out, True, warned))
            objective.confirm_only = True
            objective.search_target = None
            # Every confirmation trial has fixed params: no sampler proposes anything, and a
            # search sampler must not act on them (the grid sampler stops a study it deems done).
            study.sampler = optuna.samplers.RandomSampler()
            _optimize(handle, objective, monitors[-1], n_trials=confirm.waiting(study))
            monitors[-1].check_failures()
    finally:
        asyncio.run(deployment.stop())
    summary.ran = [n for m in monitors for n in m.ran]
    summary.complete = _count(study, TrialState.COMPLETE)
    if confirm_plan is not None:
        summary.verdict = _conclude(handle, out)
    return summary


def _optimize(
    handle: StudyHandle,
    objective: Objective,
    monitor: _Monitor,
    *,
    timeout: float | None = None,
    n_trials: int | None = None,
) -> None:
    with storage_errors(handle.target, "write"):
        handle.study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            callbacks=[monitor],
            catch=(DynamoTuneError,),
            gc_after_trial=False,
        )


def _print_search_summary(
    study: optuna.Study, n_trials: int, monitor: _Monitor, out: TextIO
) -> None:
    print(f"search done: {_count(study, TrialState.COMPLETE)}/{n_trials} COMPLETE", file=out)
    if monitor.overheads:
        mean = sum(monitor.overheads) / len(monitor.overheads)
        print(
            f"per-trial overhead (wall time outside the measured window): mean {mean:.1%}, "
            f"max {max(monitor.overheads):.1%} over {len(monitor.overheads)} trials",
            file=out,
        )
    improvement = improvement_text(study)
    if improvement:
        print(f"{improvement} (unconfirmed: one measurement each)", file=out)


def _prepare_confirmation(
    study: optuna.Study, confirmation: ConfirmSpec, out: TextIO
) -> confirm.Plan | None:
    """Plan and queue the confirmation; None (with a line saying why) when it cannot run."""
    plan_ = confirm.plan(study, confirmation.top, confirmation.repeats)
    if plan_ is None:
        print(
            "confirmation: nothing to confirm (needs a COMPLETE baseline trial and at least "
            "one feasible configuration)",
            file=out,
        )
        return None
    queued = confirm.enqueue_missing(study, plan_)
    print(
        f"confirmation: baseline #{plan_.baseline} and "
        + ", ".join(f"#{n}" for n in plan_.configs)
        + f", {plan_.repeats} fresh measurements each, interleaved ({queued} queued now)",
        file=out,
        flush=True,
    )
    return plan_


def _conclude(handle: StudyHandle, out: TextIO) -> Verdict | None:
    """Compute, store and print the verdict from the confirmation measurements so far."""
    study = handle.study
    plan_ = confirm.stored_plan(study)
    if plan_ is None:
        return None
    done = confirm.measurements(study, (TrialState.COMPLETE,))
    sources = {t.number: t for t in study.get_trials(deepcopy=False)}
    try:
        spec = handle.loaded.spec
        verdict = decide(
            sources, done, plan_.baseline, plan_.configs, spec.objective, spec.search_space,
            widenable=lambda edge: can_widen(spec, edge),
        )  # fmt: skip
    except ValueError as exc:
        print(f"confirmation: {exc}", file=out)
        return None
    with storage_errors(handle.target, "write"):
        study.set_user_attr(StudyAttr.VERDICT, verdict.model_dump(mode="json"))
    print(f"confirmation ({verdict.method}, {verdict.confidence * 100:g} % intervals):", file=out)
    for line in verdict.lines:
        print(f"  {line}", file=out)
    return verdict
