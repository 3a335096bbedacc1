"""Where a study stands: trial counts by stage and state, wall time, overhead, status lines. Pure.

Wall time runs from the first trial's start to the last trial's end (or `now` while a trial
runs). A trial's overhead is its wall time outside the measured workload windows (restart,
readiness, warmup, quiet gaps, collection): duration − `measured_seconds`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence

from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.run.progress import duration, overhead_share
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord


class StudyState(BaseModel):
    """Counts and times of a study's trials, and what a reader must know before the numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    search: dict[str, int]
    """Search trials by state name (COMPLETE, FAIL, RUNNING, ...)."""
    confirm: dict[str, int]
    """Confirmation measurements by state name."""
    n_trials: int
    """The study file's target of COMPLETE search trials."""
    wall_seconds: float | None
    mean_trial_seconds: float | None
    overhead_seconds: float | None
    """Mean per COMPLETE trial: wall time outside the measured windows."""
    overhead_share: float | None
    lines: list[str]
    """Status lines shown above the verdict ("still running: ...", "no trial completed")."""

    @property
    def trials_text(self) -> str:
        def counts(by_state: dict[str, int]) -> str:
            return ", ".join(f"{n} {state}" for state, n in by_state.items() if n) or "none"

        return (
            f"search: {counts(self.search)} (target {self.n_trials} COMPLETE); "
            f"confirmation: {counts(self.confirm)}"
        )

    @property
    def timing_text(self) -> str:
        over = (
            f"{duration(self.overhead_seconds)} per trial ({self.overhead_share:.0%} of its time)"
            if self.overhead_seconds is not None and self.overhead_share is not None
            else "n/a"
        )
        return (
            f"wall time {duration(self.wall_seconds)}; "
            f"mean trial {duration(self.mean_trial_seconds)}; overhead {over}"
        )


def _by_state(trials: Sequence[TrialRecord]) -> dict[str, int]:
    order = ("COMPLETE", "FAIL", "RUNNING", "WAITING", "PRUNED")
    found = {s: sum(t.state.name == s for t in trials) for s in order}
    return {s: n for s, n in found.items() if n}


def study_state(
    trials: Sequence[TrialRecord],
    spec: StudySpec,
    study_attrs: StudyRecord,
    now: dt.datetime,
) -> StudyState:
    """The state of a study from its trials (all stages), its file and its user attrs;
    `now` (timezone-aware) ends the wall time while a trial runs."""
    search = [t for t in trials if not t.is_confirmation]
    confirm = [t for t in trials if t.is_confirmation]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    finished = [t for t in trials if t.state.is_finished()]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    # Optuna stores naive local times
    end = now.astimezone().replace(tzinfo=None) if running else max(ends, default=None)
    wall = (end - min(starts)).total_seconds() if starts and end is not None else None
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    durations = [s for t in complete if (s := t.duration_seconds) is not None]
    shares = [
        share
        for t in complete
        if (share := overhead_share(t.measured_seconds, t.duration_seconds)) is not None
    ]
    outside = [
        s - m
        for t in complete
        if (s := t.duration_seconds) is not None
        and (m := t.measured_seconds) is not None
        and s >= m
    ]
    n_complete = sum(t.state == TrialState.COMPLETE for t in search)
    lines = []
    if not trials:
        lines.append("the study has no trial yet: `dynamo-tune run` starts it")
    elif not finished:
        lines.append("no trial has finished yet")
    elif not complete:
        lines.append(
            f"no trial completed: all {len(finished)} finished trials FAILed "
            "(reasons in the trials table)"
        )
    if running:
        lines.append(
            f"still running: {len(running)} trial(s) RUNNING (numbers "
            f"{', '.join(f'#{t.number}' for t in running)}); this report shows the study so far"
        )
    if waiting:
        lines.append(
            f"{len(waiting)} trial(s) queued (WAITING: "
            f"{', '.join(f'#{t.number}' for t in waiting)}); the next run measures them"
        )
    if trials and n_complete < spec.study.n_trials:
        lines.append(
            f"search incomplete: {n_complete} of {spec.study.n_trials} search trials COMPLETE "
            "(`dynamo-tune run` resumes)"
        )
    elif spec.study.confirm is not None and study_attrs.verdict is None and complete:
        lines.append("confirmation not done yet (`dynamo-tune confirm` runs it)")
    return StudyState(
        search=_by_state(search),
        confirm=_by_state(confirm),
        n_trials=spec.study.n_trials,
        wall_seconds=wall,
        mean_trial_seconds=statistics.fmean(durations) if durations else None,
        overhead_seconds=statistics.fmean(outside) if outside else None,
        overhead_share=statistics.fmean(shares) if shares and outside else None,
        lines=lines,
    )
