"""What a run reports while it works: typed events, and the reporter that receives them. Pure.

The run loop never prints: it calls its `Reporter` with one of these; the CLI supplies a
reporter that writes each as a line (`dynamo_tune.cli.run_output`), tests may collect them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from dynamo_tune.study.confirmation.agreement import ScreenAgreement
from dynamo_tune.study.confirmation.verdict import Verdict
from dynamo_tune.study.read.answers import Improvement
from dynamo_tune.study.trial.record import TrialRecord


@dataclass(frozen=True)
class StudyOpened:
    """The study is open: `complete` of `target` COMPLETE search trials so far."""

    name: str
    complete: int
    target: int
    storage: str
    created: bool
    space_changed: bool
    recovered: tuple[int, ...]
    """Trials a killed run left RUNNING: now FAIL, their configurations re-enqueued."""


@dataclass(frozen=True)
class SearchTargetReached:
    """The search has nothing to run: `complete` of `target` search trials are COMPLETE and
    `running` more run in other processes (together they reach the target)."""

    complete: int = 0
    target: int = 0
    running: int = 0


@dataclass(frozen=True)
class TrialFinished:
    """A trial of stage `stage` ended (COMPLETE, FAIL or PRUNED)."""

    stage: str
    record: TrialRecord
    done: int
    """Measurements of the stage COMPLETE so far (search: toward `target`)."""
    target: int
    best: TrialRecord | None
    """The best search trial so far (search stage, single-objective: a selection value)."""
    trial_seconds: float | None
    eta_seconds: float | None
    noise_sd: float | None
    noise_n: int
    """sd of the baseline's confirmation measurements so far (confirmation stage, n >= 2)."""


FaultOutcome = Literal["requeued", "was_retry", "confirmation"]
FaultKind = Literal["deployment", "metrics"]


@dataclass(frozen=True)
class FaultRetried:
    """Trial `number` failed by a deployment fault or a measurement fault (`kind`): what
    happened to its configuration."""

    number: int
    outcome: FaultOutcome
    retry_of: int | None
    kind: FaultKind = "deployment"


@dataclass(frozen=True)
class Waiting:
    """The run waits for something before its first trial (e.g. Prometheus's first scrapes)."""

    message: str


@dataclass(frozen=True)
class Warned:
    """Something the operator must know, reported once per run."""

    message: str


@dataclass(frozen=True)
class SearchDone:
    complete: int
    target: int
    overheads: tuple[float, ...]
    """Share of each COMPLETE trial's wall time outside its measured windows (0-1)."""
    improvement: Improvement | None
    """Raw best vs baseline (one measurement each: unconfirmed)."""


@dataclass(frozen=True)
class ConfirmationPlanned:
    """The confirmation's plan; `queued` measurements were queued now. `baseline` is None
    when there is nothing to confirm (no COMPLETE baseline or feasible configuration)."""

    baseline: int | None
    configs: tuple[int, ...]
    repeats: int
    queued: int
    measured: int = 0
    """Measurements of the plan COMPLETE before this run (a resumed confirmation: > 0)."""
    left: int | None = None
    """Measurements queued and not started, after queueing (None: not counted)."""


@dataclass(frozen=True)
class ConfirmationUndecided:
    """No verdict yet (e.g. the baseline has no confirmation measurement)."""

    reason: str


@dataclass(frozen=True)
class VerdictReached:
    verdict: Verdict


@dataclass(frozen=True)
class ScreenStarted:
    """The screen study is open: `done` of `target` COMPLETE screen trials so far."""

    name: str
    done: int
    target: int
    repeats: int
    screened: tuple[str, ...]
    """Searched knobs the replay varies."""
    live_only: tuple[str, ...]
    """Live-only knobs as `name=value`, the value the screen holds them at."""
    created: bool


@dataclass(frozen=True)
class ScreenProgress:
    """Screen trials so far; the best feasible (number, mean screen score); trials/s."""

    done: int
    target: int
    best: tuple[int, float] | None
    rate: float


@dataclass(frozen=True)
class ScreenDone:
    """The screen reached its target (or stopped): its best and what went live."""

    done: int
    target: int
    ran: int
    """Screen trials this run measured."""
    seconds: float
    best: tuple[tuple[int, float, dict[str, object]], ...]
    """(screen trial, mean score, params) of the best few, best first."""
    enqueued: tuple[int, ...] | None
    """Screen trials queued live by this run; None when an earlier run queued them."""
    variants: tuple[str, ...] = ()
    """`knob=value` of each live-only variant of the best one queued by this run."""


@dataclass(frozen=True)
class ScreenAgreementReached:
    """Screen vs live scores over the configurations measured both ways."""

    agreement: ScreenAgreement


Event = (
    StudyOpened
    | ScreenStarted
    | ScreenProgress
    | ScreenDone
    | ScreenAgreementReached
    | SearchTargetReached
    | TrialFinished
    | FaultRetried
    | Waiting
    | Warned
    | SearchDone
    | ConfirmationPlanned
    | ConfirmationUndecided
    | VerdictReached
)

Reporter = Callable[[Event], None]
"""Receives every event of a run, in order (the CLI prints them)."""


def ignore(event: Event) -> None:
    """A reporter that drops every event (library use that only wants the summary)."""
