"""The confirmation's verdict: confirmed means, intervals against the baseline, the winner. Pure.

Input: the confirmation measurements of each confirmed configuration and of the baseline
(COMPLETE trials with `stage: confirm`, grouped by the search trial they repeat). Per
configuration and objective: mean, sd, n, and the difference to the baseline's mean with a
95 % interval (Welch's t, `confidence.py`). Constraints are judged on the confirmed means; a
configuration with a measurement whose metrics were incomplete or whose workload failed is
infeasible. The **confirmed winner** (single objective) is the feasible configuration with
the best confirmed mean whose interval lies entirely on the better side of 0; a Pareto study
reports each objective's mean and interval and names no single winner. The search value that
selected a configuration is not used: it is biased by the selection (design.md §8).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from optuna.trial import FrozenTrial
from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.confirmation.confidence import (
    Difference,
    Summary,
    above_zero,
    gain_text,
    summarize,
    welch_interval,
)
from dynamo_tune.study.confirmation.edges import Edge, near_bounds, suggestion
from dynamo_tune.study.spec.schema import ConstraintSpec, ObjectiveSpec, ParamSpec
from dynamo_tune.study.trial.attr_keys import TrialAttr

_RULES = ("metrics_complete", "workload_ok")
"""Constraint keys every measurement must satisfy on its own (not judged on means)."""
WINNER = "confirmed winner"
NO_WINNER = "no configuration beats the baseline beyond noise"
PARETO = "Pareto study: each objective's confirmed mean and interval; no single winner"
HEADLINES = (WINNER, NO_WINNER, PARETO)
"""How the verdict's concluding line starts (`Verdict.headline`)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class ObjectiveResult(_Model):
    """One objective of one configuration: its confirmed measurements and the difference to
    the baseline's (None for the baseline itself)."""

    metric: str
    direction: Literal["maximize", "minimize"]
    summary: Summary
    difference: Difference | None = None
    gain: str | None = None


class ConfigResult(_Model):
    """A confirmed configuration (or the baseline)."""

    trial: int
    label: str
    params: dict[str, Any]
    overrides: dict[str, Any]
    frontend_args: list[str]
    objectives: list[ObjectiveResult]
    feasible: bool
    violations: list[str]
    beats_baseline: bool = False


class Verdict(_Model):
    """What the confirmation stage concluded (stored as a study user attr)."""

    method: str = "Welch's t"
    confidence: float = 0.95
    repeats: int
    baseline: ConfigResult
    configs: list[ConfigResult]
    winner: int | None
    noise_sd: float | None
    lines: list[str]

    @property
    def headline(self) -> str:
        """The concluding line: the confirmed winner, no winner, or the Pareto note."""
        return next((x for x in self.lines if x.startswith(HEADLINES)), self.lines[-1])

    @property
    def winner_config(self) -> ConfigResult | None:
        return next((c for c in self.configs if c.trial == self.winner), None)


def label_of(trial: FrozenTrial) -> str:
    """`#4`, `#1 (agentic)`, `#0 (baseline)`."""
    preset = trial.user_attrs.get(TrialAttr.PRESET)
    if trial.user_attrs.get(TrialAttr.BASELINE):
        return f"#{trial.number} (baseline)"
    return f"#{trial.number} ({preset})" if preset else f"#{trial.number}"


def _mean_of(metric: str, trials: Sequence[FrozenTrial]) -> float | None:
    values = [t.user_attrs.get(metric) for t in trials]
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(numbers) / len(numbers) if len(numbers) == len(values) and numbers else None


def _judge(constraints: Sequence[ConstraintSpec], trials: Sequence[FrozenTrial]) -> list[str]:
    """Violations of the configuration: per-measurement rules, constraints on the means."""
    violations: list[str] = []
    for t in trials:
        stored = t.user_attrs.get(TrialAttr.CONSTRAINTS) or {}
        broken = [k for k in _RULES if float(stored.get(k, 0.0)) > 0]
        if broken:
            violations.append(f"measurement #{t.number}: {', '.join(broken)} violated")
    for c in constraints:
        mean = _mean_of(c.metric, trials)
        if mean is None:
            violations.append(f"{c.metric}: missing in a confirmation measurement")
        elif (c.max is not None and mean > c.max) or (c.min is not None and mean < c.min):
            bound = f"<= {c.max:g}" if c.max is not None and mean > c.max else f">= {c.min:g}"
            violations.append(f"mean {c.metric} = {mean:.4g} violates {bound}")
    return violations


def _result(
    source: FrozenTrial,
    measured: Sequence[FrozenTrial],
    objective: ObjectiveSpec,
    baseline: Sequence[Sequence[float]] | None,
) -> ConfigResult:
    """The result of one configuration; `baseline` holds the baseline's values per objective."""
    results = []
    violations = _judge(objective.constraints, measured)
    for i, (direction, metric) in enumerate(objective.objectives()):
        values = [t.values[i] for t in measured if t.values is not None]
        finite = [v for v in values if math.isfinite(v)]
        if len(finite) < len(measured):
            violations.append(f"{metric}: a measurement has no value")
        summary = summarize(finite) if finite else Summary(n=0, mean=math.nan, sd=math.nan)
        difference = gain = None
        if baseline is not None and finite and baseline[i]:
            difference = welch_interval(finite, baseline[i])
            n0, n1 = len(baseline[i]), len(finite)
            gain = gain_text(difference, sum(baseline[i]) / n0, n1 if n1 == n0 else (n1, n0))
        results.append(
            ObjectiveResult(
                metric=metric, direction=direction, summary=summary, difference=difference,
                gain=gain,
            )
        )  # fmt: skip
    beats = (
        baseline is not None
        and len(results) == 1
        and results[0].difference is not None
        and above_zero(results[0].difference, results[0].direction == "maximize")
    )
    return ConfigResult(
        trial=source.number,
        label=label_of(source),
        params=dict(source.params),
        overrides=dict(source.user_attrs.get(TrialAttr.OVERRIDES) or {}),
        frontend_args=list(measured[-1].user_attrs.get(TrialAttr.FRONTEND_ARGS, [])),
        objectives=results,
        feasible=not violations,
        violations=violations,
        beats_baseline=bool(beats) and not violations,
    )


def _values(trials: Sequence[FrozenTrial], n_objectives: int) -> list[list[float]]:
    """Finite values per objective (a measurement without a value cannot be averaged)."""
    return [
        [t.values[i] for t in trials if t.values is not None and math.isfinite(t.values[i])]
        for i in range(n_objectives)
    ]


def decide(
    sources: Mapping[int, FrozenTrial],
    measurements: Mapping[int, Sequence[FrozenTrial]],
    baseline: int,
    order: Sequence[int],
    objective: ObjectiveSpec,
    space: Mapping[str, ParamSpec],
    widenable: Callable[[Edge], bool] = lambda edge: True,
) -> Verdict:
    """The verdict from the confirmation measurements of `baseline` and the configs `order`.

    `sources[n]` is search trial n; `measurements[n]` its COMPLETE confirmation trials.
    `widenable(edge)` says whether the range could be widened past a bound the chosen
    configuration sits at (not past a limit Dynamo itself sets, e.g. temperature >= 0).
    ValueError when the baseline has no measurement (nothing to compare against).
    """
    n_obj = len(objective.objectives())
    base_trials = measurements.get(baseline, [])
    if not base_trials:
        raise ValueError(f"the baseline #{baseline} has no confirmation measurement yet")
    base_values = _values(base_trials, n_obj)
    base = _result(sources[baseline], base_trials, objective, None)
    configs = [
        _result(sources[n], measurements[n], objective, base_values)
        for n in order
        if measurements.get(n)
    ]
    winner = _winner(configs)
    noise = base.objectives[0].summary.sd if base.objectives[0].summary.n > 1 else None
    repeats = min([len(base_trials), *(len(measurements[c.trial]) for c in configs)])
    lines = _lines(base, configs, winner, n_obj, space, widenable)
    return Verdict(
        repeats=repeats,
        baseline=base,
        configs=configs,
        winner=winner,
        noise_sd=noise,
        lines=lines,
    )


def _winner(configs: Sequence[ConfigResult]) -> int | None:
    candidates = [c for c in configs if c.beats_baseline]
    if not candidates:
        return None
    maximize = candidates[0].objectives[0].direction == "maximize"
    best = (max if maximize else min)(candidates, key=lambda c: c.objectives[0].summary.mean)
    return best.trial


def _describe(c: ConfigResult) -> str:
    parts = [f"{k}={v}" for k, v in c.params.items()] + [f"{k}={v}" for k, v in c.overrides.items()]
    return " ".join(parts) or "(the study's fixed configuration)"


def _lines(
    base: ConfigResult,
    configs: Sequence[ConfigResult],
    winner: int | None,
    n_obj: int,
    space: Mapping[str, ParamSpec],
    widenable: Callable[[Edge], bool],
) -> list[str]:
    lines = []
    for c in [base, *configs]:
        for o in c.objectives:
            s = o.summary
            vs = f"; vs baseline {o.gain}" if o.gain else ""
            lines.append(
                f"{c.label} {o.metric} {s.mean:.4f} (sd {s.sd:.4f}, n={s.n}){vs}"
                + ("" if c.feasible else f" [infeasible: {'; '.join(c.violations)}]")
            )
    if n_obj > 1:
        lines.append(PARETO)
        return lines
    chosen = next((c for c in configs if c.trial == winner), None)
    if chosen is not None:
        o = chosen.objectives[0]
        lines.append(f"{WINNER}: {chosen.label}: {_describe(chosen)}: {o.gain}")
        edge_params = chosen.params
    else:
        widths = [
            (o.difference.high - o.difference.low) / 2
            for c in configs
            for o in c.objectives
            if o.difference is not None and math.isfinite(o.difference.high)
        ]
        noise = f" (±{max(widths):.4f})" if widths else ""
        lines.append(f"{NO_WINNER}{noise}")
        minimize = bool(configs) and configs[0].objectives[0].direction == "minimize"
        best = (min if minimize else max)(
            configs, key=lambda c: c.objectives[0].summary.mean, default=None
        )
        edge_params = best.params if best is not None else {}
    lines += [suggestion(e) for e in near_bounds(edge_params, space) if widenable(e)]
    return lines
