"""What a measured trial stores: values, constraints, violations and user attrs. Pure.

One `Measurement` is one apply/run/collect pass. `evaluate` turns the measurements of a trial
(one per repeat) into its `Outcome`: the median repeat (by the first objective; the lower
median for an even count, so the value is always one real measurement and can be recomputed
from the stored core metrics), the objective values, the spread over repeats, the constraint
values (<= 0 feasible) and the violations in words.

A missing objective metric gets the worst value of its direction (0 for maximize — every
metric here is >= 0 — and +inf for minimize); the trial still completes, so samplers learn
from it, and the `metrics_complete` constraint marks it infeasible. Such a metric had no data
although the source measured the window: a window it could not measure never gets here (the
objective FAILs it as a `MeasurementFault`).

A kv-mode trial (KV events expected) whose workload had prefix reuse to find but whose router
applied no KV event records the violation `NO_KV_EVENTS` (no constraint: the deployment, not
the configuration, is at fault; it only keeps such trials out of "best" and confirmation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dynamo_tune.deploy.base import AppliedConfig
from dynamo_tune.metrics import DynamoCoreMetrics, DynamoMetricsResult
from dynamo_tune.study.spec.metric_names import ITL_P95, KV_EFFICIENCY, TTFT_P95
from dynamo_tune.study.spec.schema import ConstraintSpec, ObjectiveSpec
from dynamo_tune.study.trial.attr_keys import CORE_KEYS, WORKLOAD_KEYS, ConstraintKey, TrialAttr
from dynamo_tune.workload.result import WorkloadReport

NO_DATA = "missing (no data from the deployment in a window the source measured)"
"""How an incomplete trial's violation states why: never a measurement fault, which FAILs."""
NO_KV_EVENTS = "kv router applied no KV events (routing was load-aware only)"
"""The violation of a kv-mode trial whose router saw no KV event (see `kv_signal_dead`)."""
NO_KV_EVENTS_WARNING = (
    "the KV router applied no KV events in this window: workers publish none (check their "
    "KV-events configuration); kv mode is measuring load-aware routing only"
)
"""What a run prints, once, when a trial records `NO_KV_EVENTS`."""


@dataclass(frozen=True)
class Measurement:
    """One pass of a trial: what was applied, what the workload saw, what the metrics said."""

    applied: AppliedConfig
    report: WorkloadReport
    result: DynamoMetricsResult
    started: float
    finished: float

    @property
    def core(self) -> DynamoCoreMetrics:
        return self.result.get_core_metrics()


@dataclass(frozen=True)
class Outcome:
    """How a trial ends: its values, constraints and everything to store."""

    values: list[float]
    chosen: int
    constraints: dict[str, float]
    violations: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())


def score_of(core: DynamoCoreMetrics, objective: ObjectiveSpec) -> float | None:
    """The trial value of a single-objective study: `to_optimization_score` with its weights."""
    return core.to_optimization_score(**objective.score_kwargs())


def kv_signal_dead(m: Measurement) -> bool:
    """A kv-mode router expecting KV events applied none (`router_kv_events_rate == 0`) over a
    window whose workload had prefix reuse to find (`kve_ceiling > 0`) and was served: it
    routed on load alone. No value (metric absent) is no evidence either way."""
    router, report = m.applied.router, m.report
    return (
        router.mode == "kv"
        and router.kv_events is not False
        and (report.kve_ceiling or 0.0) > 0
        and report.requests_ok > 0
        and m.result.router_kv_events_rate == 0
    )


def router_hit_rate_mean(result: DynamoMetricsResult) -> float | None:
    """Mean predicted KV hit rate at routing time over the window: Σ rates / decisions."""
    total, count = result.router_kv_hit_rate_sum_rate, result.router_kv_hit_rate_count_rate
    if total is None or not count:
        return None
    return total / count


def measurement_attrs(m: Measurement) -> dict[str, Any]:
    """Every non-null metric, the core metrics, the workload's numbers, the applied flags."""
    attrs: dict[str, Any] = {
        k: v
        for k, v in m.result.model_dump(mode="json").items()
        if v is not None and k not in (TrialAttr.ERRORS, TrialAttr.FAULT)
    }
    attrs.update(m.core.model_dump(mode="json"))
    for key in WORKLOAD_KEYS:
        attrs[key] = getattr(m.report, key)
    attrs[TrialAttr.ERRORS] = list(m.result.errors)
    attrs[TrialAttr.WORKLOAD_ERRORS] = list(m.report.first_errors)
    attrs[TrialAttr.WORKLOAD_FAILURES] = dict(m.report.failures)
    attrs[TrialAttr.WORKLOAD_FAILED] = m.report.failed
    attrs[TrialAttr.FRONTEND_ARGS] = list(m.applied.frontend_args)
    attrs[TrialAttr.ROUTER_CONFIG] = m.applied.router.model_dump(mode="json", exclude_none=True)
    attrs[TrialAttr.RESTART_SECONDS] = m.applied.restart_seconds
    mean = router_hit_rate_mean(m.result)
    if mean is not None:
        attrs[TrialAttr.ROUTER_KV_HIT_RATE_MEAN] = mean
    return attrs


def _metric(name: str, attrs: dict[str, Any], score: float | None) -> float | None:
    value = score if name == TrialAttr.SCORE else attrs.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def judge_constraint(c: ConstraintSpec, value: float | None) -> tuple[str, float, str | None]:
    """(constraint key, value <= 0 feasible, violation in words or None) of `c` at `value`."""
    bounds = []
    if c.min is not None:
        bounds.append(f"{c.min:g}<=")
    key = "".join(bounds) + c.metric + (f"<={c.max:g}" if c.max is not None else "")
    if value is None:
        return key, 1.0, f"{c.metric} is missing (constraint {key})"
    excess = max(
        value - c.max if c.max is not None else -math.inf,
        c.min - value if c.min is not None else -math.inf,
    )
    violation = f"{c.metric} = {value:.4g} violates {key}" if excess > 0 else None
    return key, excess, violation


def judge_constraints(
    constraints: Sequence[ConstraintSpec], value_of: Callable[[str], float | None]
) -> tuple[dict[str, float], list[str]]:
    """({constraint key: value, <= 0 feasible}, violations in words) of the study's own
    constraints, each metric read with `value_of` (None: missing)."""
    values: dict[str, float] = {}
    violations: list[str] = []
    for c in constraints:
        key, value, violation = judge_constraint(c, value_of(c.metric))
        values[key] = value
        if violation:
            violations.append(violation)
    return values, violations


def evaluate(measurements: list[Measurement], objective: ObjectiveSpec) -> Outcome:
    """The outcome of a trial from its repeats (at least one)."""
    if not measurements:
        raise ValueError("`len(measurements) >= 1` must hold, but got 0 measurements")
    per_repeat: list[list[float]] = []
    missing_per_repeat: list[list[str]] = []
    attrs_per_repeat: list[dict[str, Any]] = []
    for m in measurements:
        attrs = measurement_attrs(m)
        score = score_of(m.core, objective)
        attrs[TrialAttr.SCORE] = score
        values, missing = [], []
        for direction, metric in objective.objectives():
            value = _metric(metric, attrs, score)
            if value is None:
                missing.append(metric)
                value = 0.0 if direction == "maximize" else math.inf
            values.append(value)
        per_repeat.append(values)
        missing_per_repeat.append(missing)
        attrs_per_repeat.append(attrs)
    first_direction = objective.objectives()[0][0]
    order = sorted(
        range(len(per_repeat)),
        key=lambda i: per_repeat[i][0] if first_direction == "maximize" else -per_repeat[i][0],
    )
    chosen = order[(len(order) - 1) // 2]
    attrs = attrs_per_repeat[chosen]
    m = measurements[chosen]
    constraints: dict[str, float] = {}
    violations: list[str] = []
    complete = m.core.is_complete() and not missing_per_repeat[chosen]
    constraints[ConstraintKey.METRICS_COMPLETE] = 0.0 if complete else 1.0
    if not complete:
        absent = [k for k in (TTFT_P95, ITL_P95) if attrs.get(k) is None]
        if m.core.get_effective_kv_efficiency() is None:
            absent.insert(0, KV_EFFICIENCY)
        absent += [
            k for k in missing_per_repeat[chosen] if k not in absent and k != TrialAttr.SCORE
        ]
        violations.append(f"metrics incomplete: {', '.join(absent) or 'unknown'} {NO_DATA}")
    constraints[ConstraintKey.WORKLOAD_OK] = 1.0 if m.report.failed else 0.0
    if m.report.failed:
        violations.append(
            f"workload failed: {m.report.requests_failed} of {m.report.requests_sent} requests"
        )
    if kv_signal_dead(m):
        violations.append(NO_KV_EVENTS)
    judged, broken = judge_constraints(
        objective.constraints, lambda metric: _metric(metric, attrs, attrs[TrialAttr.SCORE])
    )
    constraints.update(judged)
    violations += broken
    attrs[TrialAttr.CONSTRAINTS] = constraints
    attrs[TrialAttr.VIOLATIONS] = violations
    attrs[TrialAttr.FEASIBLE] = not violations
    attrs[TrialAttr.REPEATS] = len(measurements)
    attrs[TrialAttr.REPEAT_VALUES] = [v[0] if math.isfinite(v[0]) else None for v in per_repeat]
    firsts = [v[0] for v in per_repeat if math.isfinite(v[0])]
    attrs[TrialAttr.VALUE_SPREAD] = (max(firsts) - min(firsts)) if len(firsts) > 1 else 0.0
    attrs[TrialAttr.MEASURED_SECONDS] = sum(
        x.report.window_end - x.report.window_start for x in measurements
    )
    return Outcome(
        values=per_repeat[chosen],
        chosen=chosen,
        constraints=constraints,
        violations=violations,
        attrs=attrs,
    )


def recompute_score(attrs: dict[str, Any], objective: ObjectiveSpec) -> float | None:
    """`to_optimization_score` from a stored trial's core-metric user attrs."""
    core = DynamoCoreMetrics.model_validate({k: attrs.get(k) for k in CORE_KEYS})
    return score_of(core, objective)
