"""The confirmation's verdict: confirmed means, intervals against the baseline, the winner. Pure.

Input: the confirmation measurements of each confirmed configuration and of the baseline
(COMPLETE trials with `stage: confirm`, grouped by the search trial they repeat). Per
configuration and objective: mean, sd, n, and the difference to the baseline's mean with an
interval (`confidence.LEVEL`, `confidence.METHOD`). Constraints are judged on the confirmed means; a
configuration with a measurement whose metrics were incomplete or whose workload failed is
infeasible. The **confirmed winner** (single objective) is the feasible configuration with
the best confirmed mean whose interval lies entirely on the better side of 0; a Pareto study
reports each objective's mean and interval and names no single winner. Every other confirmed
configuration is compared with the winner too (`ties`); the feasible ones within noise of it are
listed as tied. The search value that selected a configuration is not used: it is biased by the
selection.

The verdict is data (`Verdict.kind`, `winner`, per-configuration results, level, method);
`verdict_text` renders every text from it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynamo_tune.study.confirmation.agreement import ScreenAgreement
from dynamo_tune.study.confirmation.confidence import (
    LEVEL,
    METHOD,
    Difference,
    Summary,
    above_zero,
    summarize,
    welch_interval,
)
from dynamo_tune.study.confirmation.edges import Edge, near_bounds
from dynamo_tune.study.confirmation.feasibility import violations as judge
from dynamo_tune.study.confirmation.ties import vs_winner, within_noise
from dynamo_tune.study.spec.schema import ObjectiveSpec, ParamSpec
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord

VerdictKind = Literal["winner", "no_winner", "pareto"]
"""A confirmed winner; no configuration beats the baseline beyond noise; a Pareto study (each
objective's confirmed mean and interval, no single winner)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class ObjectiveResult(_Model):
    """One objective of one configuration: its confirmed measurements and the difference to
    the baseline's (None for the baseline itself)."""

    metric: str
    direction: Literal["maximize", "minimize"]
    summary: Summary
    difference: Difference | None = None


class ConfigResult(_Model):
    """A confirmed configuration (or the baseline)."""

    trial: int
    label: str
    """`#4`, `#1 (agentic)`, `#0 (baseline)` (`label_of`)."""
    params: dict[str, Any]
    overrides: dict[str, Any]
    frontend_args: list[str]
    objectives: list[ObjectiveResult]
    feasible: bool
    violations: list[str]
    beats_baseline: bool = False
    vs_winner: Difference | None = None
    """mean(this) − mean(winner), first objective, Welch's interval (`ties`); None for the
    winner, the baseline, a verdict without a winner and verdicts stored before this field."""


class Verdict(_Model):
    """What the confirmation stage concluded, as data (stored as a study user attr; every
    text is rendered from it by `verdict_text`)."""

    kind: VerdictKind
    method: str = METHOD
    confidence: float = LEVEL
    """The level of every interval in the verdict."""
    repeats: int
    baseline: ConfigResult
    configs: list[ConfigResult]
    winner: int | None
    """The confirmed winner's search trial number (kind `winner` only)."""
    noise_sd: float | None
    """sd of the baseline's confirmation measurements (first objective; n >= 2)."""
    noise_half_width: float | None = None
    """The widest finite interval half-width of a difference to the baseline: how large a
    gain would have had to be to count (kind `no_winner`)."""
    edges: list[Edge] | None = None
    """Values of the chosen configuration (the winner, else the best confirmed mean) at a
    bound of a range that could be widened; None in verdicts stored before this field (the
    reader recomputes them from the study file: `with_edges`)."""
    tied_with_winner: list[int] = Field(default_factory=list)
    """Feasible configurations whose `vs_winner` interval contains 0 (config order); empty
    without a winner and in verdicts stored before this field."""
    screen: ScreenAgreement | None = None
    """Screen vs live rank agreement (a screened study only)."""

    @model_validator(mode="before")
    @classmethod
    def _stored_before_kind(cls, data: Any) -> Any:
        """A verdict stored by dynamo-tune before `kind` (it held rendered `lines` and each
        objective's `gain` text): the same data, its kind and noise width derived from the
        numbers, never from the text."""
        if not isinstance(data, dict) or "kind" in data:
            return data
        data = copy.deepcopy({k: v for k, v in data.items() if k != "lines"})  # not the caller's
        for c in [data.get("baseline"), *(data.get("configs") or [])]:
            for o in c.get("objectives", []) if isinstance(c, dict) else []:
                if isinstance(o, dict):
                    o.pop("gain", None)
        base = data.get("baseline") or {}
        if len(base.get("objectives") or []) > 1:
            data["kind"] = "pareto"
        elif data.get("winner") is not None:
            data["kind"] = "winner"
        else:
            data["kind"] = "no_winner"
            configs = [ConfigResult.model_validate(c) for c in data.get("configs") or []]
            data["noise_half_width"] = _half_width(configs)
        return data

    @property
    def winner_config(self) -> ConfigResult | None:
        return next((c for c in self.configs if c.trial == self.winner), None)

    @property
    def chosen(self) -> ConfigResult | None:
        """The configuration whose range edges matter: the winner, else (single objective)
        the best confirmed mean; None for a Pareto study or nothing confirmed."""
        if self.kind == "pareto":
            return None
        if self.winner is not None:
            return self.winner_config
        minimize = bool(self.configs) and self.configs[0].objectives[0].direction == "minimize"
        return (min if minimize else max)(
            self.configs, key=lambda c: c.objectives[0].summary.mean, default=None
        )


def label_of(record: TrialRecord) -> str:
    """`#4`, `#1 (agentic)`, `#0 (baseline)`."""
    if record.baseline:
        return f"#{record.number} (baseline)"
    return f"#{record.number} ({record.preset})" if record.preset else f"#{record.number}"


def _result(
    source: TrialRecord,
    measured: Sequence[TrialRecord],
    objective: ObjectiveSpec,
    baseline: Sequence[Sequence[float]] | None,
    level: float,
) -> ConfigResult:
    """The result of one configuration; `baseline` holds the baseline's values per objective."""
    results = []
    violations = judge(objective.constraints, measured)
    for i, (direction, metric) in enumerate(objective.objectives()):
        values = [r.values[i] for r in measured if r.values is not None]
        finite = [v for v in values if math.isfinite(v)]
        if len(finite) < len(measured):
            violations.append(f"{metric}: a measurement has no value")
        summary = summarize(finite) if finite else Summary(n=0, mean=math.nan, sd=math.nan)
        difference = None
        if baseline is not None and finite and baseline[i]:
            difference = welch_interval(finite, baseline[i], level)
        results.append(
            ObjectiveResult(
                metric=metric, direction=direction, summary=summary, difference=difference
            )
        )
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
        overrides=dict(source.overrides),
        frontend_args=list(measured[-1].frontend_args),
        objectives=results,
        feasible=not violations,
        violations=violations,
        beats_baseline=bool(beats) and not violations,
    )


def _values(records: Sequence[TrialRecord], n_objectives: int) -> list[list[float]]:
    """Finite values per objective (a measurement without a value cannot be averaged)."""
    return [
        [r.values[i] for r in records if r.values is not None and math.isfinite(r.values[i])]
        for i in range(n_objectives)
    ]


def decide(
    sources: Mapping[int, TrialRecord],
    measurements: Mapping[int, Sequence[TrialRecord]],
    baseline: int,
    order: Sequence[int],
    objective: ObjectiveSpec,
    space: Mapping[str, ParamSpec],
    widenable: Callable[[Edge], bool] = lambda edge: True,
    level: float = LEVEL,
) -> Verdict:
    """The verdict from the confirmation measurements of `baseline` and the configs `order`.

    `sources[n]` is search trial n; `measurements[n]` its COMPLETE confirmation trials.
    `widenable(edge)` says whether the range could be widened past a bound the chosen
    configuration sits at (not past a limit Dynamo itself sets, e.g. temperature >= 0).
    Every interval has confidence `level`. ValueError when the baseline has no measurement
    (nothing to compare against).
    """
    n_obj = len(objective.objectives())
    base_trials = measurements.get(baseline, [])
    if not base_trials:
        raise ValueError(f"the baseline #{baseline} has no confirmation measurement yet")
    base_values = _values(base_trials, n_obj)
    base = _result(sources[baseline], base_trials, objective, None, level)
    configs = [
        _result(sources[n], measurements[n], objective, base_values, level)
        for n in order
        if measurements.get(n)
    ]
    winner = _winner(configs) if n_obj == 1 else None
    tied: list[int] = []
    if winner is not None:
        values = {c.trial: _values(measurements[c.trial], 1)[0] for c in configs}
        against = vs_winner(values, winner, level)
        configs = [c.model_copy(update={"vs_winner": against.get(c.trial)}) for c in configs]
        feasible = {c.trial for c in configs if c.feasible}
        tied = [n for n, d in against.items() if n in feasible and within_noise(d)]
    kind: VerdictKind = "pareto" if n_obj > 1 else "winner" if winner is not None else "no_winner"
    noise = base.objectives[0].summary.sd if base.objectives[0].summary.n > 1 else None
    repeats = min([len(base_trials), *(len(measurements[c.trial]) for c in configs)])
    verdict = Verdict(
        kind=kind,
        confidence=level,
        repeats=repeats,
        baseline=base,
        configs=configs,
        winner=winner,
        noise_sd=noise,
        noise_half_width=_half_width(configs) if kind == "no_winner" else None,
        tied_with_winner=tied,
    )
    return with_edges(verdict, space, widenable)


def with_edges(
    verdict: Verdict, space: Mapping[str, ParamSpec], widenable: Callable[[Edge], bool]
) -> Verdict:
    """`verdict` with the range edges of its chosen configuration that could be widened."""
    chosen = verdict.chosen
    params = chosen.params if chosen is not None else {}
    edges = [e for e in near_bounds(params, space) if widenable(e)]
    return verdict.model_copy(update={"edges": edges})


def _winner(configs: Sequence[ConfigResult]) -> int | None:
    candidates = [c for c in configs if c.beats_baseline]
    if not candidates:
        return None
    maximize = candidates[0].objectives[0].direction == "maximize"
    best = (max if maximize else min)(candidates, key=lambda c: c.objectives[0].summary.mean)
    return best.trial


def _half_width(configs: Sequence[ConfigResult]) -> float | None:
    """The widest finite half-width of a difference to the baseline (None: none finite)."""
    widths = [
        (o.difference.high - o.difference.low) / 2
        for c in configs
        for o in c.objectives
        if o.difference is not None and math.isfinite(o.difference.high)
    ]
    return max(widths) if widths else None


def stored_verdict(study: StudyRecord) -> Verdict | None:
    """The verdict the confirmation stage stored (also one stored before `kind`), if any; None
    when there is none or it cannot be read."""
    if study.verdict is None:
        return None
    try:
        return Verdict.model_validate(study.verdict)
    except ValueError:  # pydantic's ValidationError: a verdict this version cannot read
        return None
