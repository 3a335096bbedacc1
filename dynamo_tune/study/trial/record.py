"""A stored trial and a study's stored attrs, read back typed: the one reader of user attrs.
Pure.

`TrialRecord.from_frozen(trial)` turns an Optuna `FrozenTrial` into a typed record: the
trial's own fields (number, state, values, params, constraints, times) and every user attr
dynamo-tune writes (`attr_keys.TrialAttr`) as a typed field. Scalar measurements (the core
metrics, the workload's numbers, every other metric the collector stored) are in `measured`,
read with `number(key)`. A missing attr is the field's default; a malformed one (a string
where a number belongs, a list where a mapping belongs) is the default too, plus a line in
`notes` — reading a record never raises. `StudyRecord.from_study(study)` does the same for
the study's attrs.

`enqueue` is the one writer of attrs on a queued trial (Optuna's `enqueue_trial`); a measured
trial's attrs are set one by one by `objective` with keys from `attr_keys`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Final

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from dynamo_tune.study.trial.attr_keys import CARRIED_ON_RETRY, CONFIRM_STAGE, StudyAttr, TrialAttr

Scalar = bool | int | float | str
"""A measured value as stored (a metric, a count, a source name, a flag)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunnerInfo(_Frozen):
    """The process that measured a trial (`TrialAttr.RUNNER`)."""

    host: str | None = None
    pid: int | None = None
    start: str | None = None
    """The process's start time in clock ticks since boot (guards against pid reuse)."""


class ConfirmPlan(_Frozen):
    """What the confirmation stage measures (`StudyAttr.CONFIRM_PLAN`): search trial numbers
    of the baseline and the configurations (best first), and the measurements of each."""

    baseline: int
    configs: list[int]
    repeats: int

    @property
    def members(self) -> tuple[int, ...]:
        """Baseline first, then the configurations best first (the order of each round)."""
        return (self.baseline, *self.configs)


_TRIAL_FIELDS: Final[dict[str, str]] = {
    TrialAttr.RUNNER: "runner",
    TrialAttr.BASELINE: "baseline",
    TrialAttr.OVERRIDES: "overrides",
    TrialAttr.PRESET: "preset",
    TrialAttr.STAGE: "stage",
    TrialAttr.CONFIRMS: "confirms",
    TrialAttr.SCREENED: "screened",
    TrialAttr.RETRY_OF: "retry_of",
    TrialAttr.FAIL_REASON: "fail_reason",
    TrialAttr.FAULT: "fault",
    TrialAttr.ROUTER_CONFIG: "router_config",
    TrialAttr.HINTS: "hints",
    TrialAttr.FRONTEND_ARGS: "frontend_args",
    TrialAttr.RESTART_SECONDS: "restart_seconds",
    TrialAttr.APPLY_SECONDS: "apply_seconds",
    TrialAttr.COLLECT_SECONDS: "collect_seconds",
    TrialAttr.ERRORS: "errors",
    TrialAttr.WORKLOAD_ERRORS: "workload_errors",
    TrialAttr.WORKLOAD_FAILURES: "workload_failures",
    TrialAttr.WORKLOAD_FAILED: "workload_failed",
    TrialAttr.CONSTRAINTS: "constraint_values",
    TrialAttr.VIOLATIONS: "violations",
    TrialAttr.FEASIBLE: "feasible_attr",
    TrialAttr.REPEATS: "repeats",
    TrialAttr.REPEAT_VALUES: "repeat_values",
    TrialAttr.VALUE_SPREAD: "value_spread",
    TrialAttr.MEASURED_SECONDS: "measured_seconds",
}
"""User-attr key -> the `TrialRecord` field holding it (other scalar attrs: `measured`)."""


class TrialRecord(_Frozen):
    """One stored trial, typed. Fields after `duration_seconds` are its user attrs."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    number: int
    state: TrialState
    values: tuple[float, ...] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    constraints: dict[str, float] = Field(default_factory=dict)
    """Optuna's constraint values (`trial.set_constraint`; <= 0 feasible)."""
    datetime_start: dt.datetime | None = None
    datetime_complete: dt.datetime | None = None
    # who and why
    runner: RunnerInfo | None = None
    baseline: bool = False
    overrides: dict[str, Any] = Field(default_factory=dict)
    preset: str | None = None
    stage: str | None = None
    confirms: int | None = None
    screened: int | None = None
    retry_of: int | None = None
    fail_reason: str | None = None
    fault: str | None = None
    # what was applied
    router_config: dict[str, Any] = Field(default_factory=dict)
    hints: dict[str, Any] = Field(default_factory=dict)
    frontend_args: list[str] = Field(default_factory=list)
    restart_seconds: float | None = None
    apply_seconds: float | None = None
    collect_seconds: float | None = None
    # what was measured
    measured: dict[str, Scalar] = Field(default_factory=dict)
    """Every other scalar user attr: `score`, `CORE_KEYS`, `WORKLOAD_KEYS`, the collector's
    other metrics (`number(key)` reads one as a float)."""
    errors: list[str] = Field(default_factory=list)
    workload_errors: list[str] = Field(default_factory=list)
    workload_failures: dict[str, int] = Field(default_factory=dict)
    workload_failed: bool | None = None
    # how it was judged
    constraint_values: dict[str, float] = Field(default_factory=dict)
    """The `constraints` attr: every constraint value the objective computed (<= 0 feasible)."""
    violations: list[str] = Field(default_factory=list)
    feasible_attr: bool | None = None
    repeats: int | None = None
    repeat_values: list[float | None] = Field(default_factory=list)
    value_spread: float | None = None
    measured_seconds: float | None = None
    notes: list[str] = Field(default_factory=list)
    """One line per user attr that could not be read (its field keeps the default)."""

    @classmethod
    def from_frozen(cls, trial: FrozenTrial) -> TrialRecord:
        """The typed record of a stored trial; never raises for a missing or malformed attr."""
        return cls._build(
            {
                "number": trial.number,
                "state": trial.state,
                "values": tuple(trial.values) if trial.values is not None else None,
                "params": dict(trial.params),
                "constraints": dict(trial.constraints),
                "datetime_start": trial.datetime_start,
                "datetime_complete": trial.datetime_complete,
            },
            trial.user_attrs,
        )

    @classmethod
    def from_trial(cls, trial: optuna.Trial) -> TrialRecord:
        """The record of a trial being measured (RUNNING; its attrs and params so far)."""
        return cls._build(
            {
                "number": trial.number,
                "state": TrialState.RUNNING,
                "params": dict(trial.params),
                "datetime_start": trial.datetime_start,
            },
            trial.user_attrs,
        )

    @classmethod
    def _build(cls, data: dict[str, Any], attrs: Mapping[str, Any]) -> TrialRecord:
        notes: list[str] = []
        measured: dict[str, Scalar] = {}
        for key, value in attrs.items():
            name = _TRIAL_FIELDS.get(key)
            if name is None:
                if isinstance(value, Scalar):
                    measured[key] = value
                elif value is not None:
                    notes.append(_note(key, "a number, string or bool", value))
                continue
            if value is None:
                continue
            try:
                data[name] = _ADAPTERS[name].validate_python(value, strict=True)
            except ValidationError:
                notes.append(_note(key, _shape(name), value))
        return cls.model_construct(**data, measured=measured, notes=notes)  # validated above

    @property
    def is_confirmation(self) -> bool:
        """A confirmation measurement (not a search trial)."""
        return self.stage == CONFIRM_STAGE

    @property
    def feasible(self) -> bool:
        """No constraint > 0 and no violation recorded."""
        return all(v <= 0 for v in self.constraints.values()) and not self.violations

    @property
    def duration_seconds(self) -> float | None:
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return (self.datetime_complete - self.datetime_start).total_seconds()

    @property
    def score(self) -> float | None:
        return self.number_of(TrialAttr.SCORE)

    def number_of(self, key: str) -> float | None:
        """The measured value `key` as a float; None when absent, not a number, a bool or NaN."""
        value = self.measured.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return None
        return float(value)

    def value(self, key: str) -> Scalar | None:
        """The measured value `key` as stored (any scalar), None when absent."""
        return self.measured.get(key)


class StudyRecord(_Frozen):
    """A study's stored attrs (`attr_keys.StudyAttr`), typed."""

    spec_sha256: str | None = None
    study_yaml: str | None = None
    search_space: str | None = None
    initialized: bool = False
    enqueued: list[str] = Field(default_factory=list)
    confirm_plan: ConfirmPlan | None = None
    verdict: dict[str, Any] | None = None
    """The verdict as stored (JSON); `confirmation.verdict.stored_verdict` reads it."""
    screen_enqueued: list[int] | None = None  # screen trials queued live (set once)
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def from_study(cls, study: optuna.Study) -> StudyRecord:
        """The typed attrs of `study`; never raises for a missing or malformed attr."""
        data: dict[str, Any] = {}
        notes: list[str] = []
        for key, value in study.user_attrs.items():
            name = _STUDY_FIELDS.get(key)
            if name is None or value is None:
                continue
            try:
                data[name] = _STUDY_ADAPTERS[name].validate_python(value, strict=True)
            except ValidationError:
                notes.append(_note(key, "its stored shape", value))
        return cls.model_construct(**data, notes=notes)  # validated above


_STUDY_FIELDS: Final[dict[str, str]] = {
    StudyAttr.SPEC_SHA256: "spec_sha256",
    StudyAttr.STUDY_YAML: "study_yaml",
    StudyAttr.SEARCH_SPACE: "search_space",
    StudyAttr.INITIALIZED: "initialized",
    StudyAttr.ENQUEUED: "enqueued",
    StudyAttr.CONFIRM_PLAN: "confirm_plan",
    StudyAttr.VERDICT: "verdict",
    StudyAttr.SCREEN_ENQUEUED: "screen_enqueued",
}

_ADAPTERS: Final[dict[str, TypeAdapter[Any]]] = {
    name: TypeAdapter(TrialRecord.model_fields[name].annotation) for name in _TRIAL_FIELDS.values()
}
_STUDY_ADAPTERS: Final[dict[str, TypeAdapter[Any]]] = {
    name: TypeAdapter(StudyRecord.model_fields[name].annotation) for name in _STUDY_FIELDS.values()
}


def _shape(field: str) -> str:
    return str(TrialRecord.model_fields[field].annotation).replace("typing.", "")


def _note(key: str, expected: str, value: Any) -> str:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"user attr {key!r}: expected {expected}, got {shown} (ignored)"


def records(study: optuna.Study, *states: TrialState) -> list[TrialRecord]:
    """Every trial of `study` in `states` (all states if none given), as records, by number."""
    trials = study.get_trials(deepcopy=False, states=states or None)
    return [TrialRecord.from_frozen(t) for t in trials]


CSV_ATTR_PREFIX: Final = "user_attrs_"
"""Column prefix of a user attr in `dynamo-tune export` (Optuna's `trials_dataframe` name)."""


def retry_attrs(record: TrialRecord) -> dict[str, Any]:
    """The attrs a re-enqueued retry of `record` carries over (`CARRIED_ON_RETRY`, the ones
    set), plus `retry_of`."""
    values = record.model_dump(include={_TRIAL_FIELDS[k] for k in CARRIED_ON_RETRY})
    attrs = {k: values[_TRIAL_FIELDS[k]] for k in CARRIED_ON_RETRY if values[_TRIAL_FIELDS[k]]}
    attrs[TrialAttr.RETRY_OF] = record.number
    return attrs


def raw_attrs(trial: FrozenTrial | optuna.Trial) -> Mapping[str, Any]:
    """A trial's user attrs exactly as stored (for an export that writes them all)."""
    return trial.user_attrs


def enqueue(study: optuna.Study, params: Mapping[str, Any], attrs: Mapping[str, Any]) -> None:
    """Queue a trial with fixed `params` and user `attrs` (keys from `attr_keys.TrialAttr`)."""
    study.enqueue_trial(dict(params), user_attrs=dict(attrs))


def copy_study_attrs(source: optuna.Study, target: optuna.Study) -> None:
    """Set every user attr of `source` on `target` (an in-memory snapshot of a study)."""
    for key, value in source.user_attrs.items():
        target.set_user_attr(key, value)
