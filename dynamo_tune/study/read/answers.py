"""What a study answers: the confirmed verdict, or the raw best trial(s) labelled so. Pure.

`answer` returns data (`Answer`: its kind, the chosen trials, the verdict, the answer's gain
over the baseline); the CLI and the report render it. With a confirmed winner every number
of the answer is the confirmation's (confirmed means, the verdict's interval); a search
trial's single value appears only labelled as such (`search_values`). A verdict stored before
verdicts carried their range edges gets them computed from the study file here (`verdict_of`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict

from dynamo_tune.deploy.router_flags import split_flags
from dynamo_tune.study.confirmation.confidence import Difference, gain_text, relative
from dynamo_tune.study.confirmation.edges import can_widen
from dynamo_tune.study.confirmation.verdict import (
    ConfigResult,
    Verdict,
    stored_verdict,
    with_edges,
)
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.attr_keys import CORE_KEYS, WORKLOAD_KEYS
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord, records
from dynamo_tune.study.trial.selection import baseline_trial, best_trials

AnswerKind = Literal["winner", "no_winner", "pareto", "unconfirmed"]


class Improvement(BaseModel):
    """A configuration vs the baseline on one objective (the first of a single-objective study).

    `source` "search": the raw best's and the baseline's single search values (unconfirmed,
    biased upward by the selection). `source` "confirmation": the confirmed means of the
    configuration and the baseline, with the verdict's interval of the difference
    (`interval`, in the objective's unit), that interval relative to the baseline's mean
    (`relative_low`..`relative_high`; None when that mean is 0) and the repeats of each (`n`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    source: Literal["search", "confirmation"] = "search"
    metric: str | None = None
    best_trial: int
    best_value: float
    baseline_trial: int
    baseline_value: float
    absolute: float
    relative: float | None
    """(best − baseline) / |baseline|; None when the baseline's value is 0."""
    interval: Difference | None = None
    relative_low: float | None = None
    relative_high: float | None = None
    n: tuple[int, int] | None = None
    """(the configuration's, the baseline's) confirmation measurements."""

    @property
    def text(self) -> str:
        """Search: `best #1 0.7439 vs baseline #0 0.4889: +0.2550 (+52.2%)`; confirmation:
        `confirmed mean #1 0.7439 vs baseline #0 0.4889: +52.2 % (95 % CI ..., n=3 each, ...)`."""
        head = (
            f"#{self.best_trial} {self.best_value:.4f} vs baseline "
            f"#{self.baseline_trial} {self.baseline_value:.4f}"
        )
        if self.interval is not None and self.n is not None:
            n = self.n[0] if self.n[0] == self.n[1] else self.n
            return f"confirmed mean {head}: {gain_text(self.interval, self.baseline_value, n)}"
        rel = f" ({self.relative:+.1%})" if self.relative is not None else ""
        return f"best {head}: {self.absolute:+.4f}{rel}"


def improvement(study: optuna.Study) -> Improvement | None:
    """Raw best vs baseline of a single-objective study: their single search values, absolute
    and relative change (unconfirmed)."""
    best = best_trials(study)
    base = baseline_trial(study)
    if len(best) != 1 or base is None or len(study.directions) != 1:
        return None
    if best[0].values is None or base.values is None:
        return None
    b, r = best[0].values[0], base.values[0]
    return Improvement(
        best_trial=best[0].number,
        best_value=b,
        baseline_trial=base.number,
        baseline_value=r,
        absolute=b - r,
        relative=(b - r) / abs(r) if r else None,
    )


def confirmed_improvement(verdict: Verdict, config: ConfigResult, index: int) -> Improvement | None:
    """Objective `index` of the confirmed `config` vs the baseline, as the verdict states it
    (confirmed means, the interval of the difference); None for the baseline itself or when
    either has no finite mean."""
    o, base = config.objectives[index], verdict.baseline.objectives[index].summary
    d = o.difference
    if d is None or not (math.isfinite(o.summary.mean) and math.isfinite(base.mean)):
        return None
    rel = relative(d, base.mean)
    return Improvement(
        source="confirmation",
        metric=o.metric,
        best_trial=config.trial,
        best_value=o.summary.mean,
        baseline_trial=verdict.baseline.trial,
        baseline_value=base.mean,
        absolute=d.diff,
        relative=rel[0] if rel is not None else None,
        interval=d,
        relative_low=rel[1] if rel is not None else None,
        relative_high=rel[2] if rel is not None else None,
        n=(o.summary.n, base.n),
    )


def verdict_of(study: optuna.Study, spec: StudySpec | None = None) -> Verdict | None:
    """The stored verdict; one stored without its range edges gets them from `spec`."""
    verdict = stored_verdict(StudyRecord.from_study(study))
    if verdict is not None and verdict.edges is None and spec is not None:
        verdict = with_edges(verdict, spec.search_space, lambda edge: can_widen(spec, edge))
    return verdict


@dataclass(frozen=True)
class Answer:
    """What `best` answers, as data."""

    kind: AnswerKind
    trials: list[TrialRecord]
    """The confirmed winner; a Pareto study's feasible confirmed configurations; no winner:
    none; unconfirmed: the raw best search trial(s)."""
    verdict: Verdict | None
    improvement: Improvement | None
    """The answer's gain over the baseline: the confirmed winner's as the verdict states it
    (`source` "confirmation"); unconfirmed: the raw best's search values (`source` "search");
    None for no winner, a Pareto study (each objective's gain: `best_payload`) or no baseline."""
    requested_unconfirmed: bool = False
    """True when the caller asked for the raw best although a verdict may exist."""

    @property
    def confirmed(self) -> bool:
        return self.kind != "unconfirmed"


def answer(study: optuna.Study, unconfirmed: bool = False, spec: StudySpec | None = None) -> Answer:
    """The confirmed winner (a Pareto study: its feasible confirmed configurations); with
    `unconfirmed`, or before any confirmation, the raw best trial(s)."""
    verdict = None if unconfirmed else verdict_of(study, spec)
    if verdict is None:
        return Answer("unconfirmed", best_trials(study), None, improvement(study), unconfirmed)
    by_number = {r.number: r for r in records(study)}
    if verdict.kind == "pareto":
        chosen = [by_number[c.trial] for c in verdict.configs if c.feasible]
        return Answer("pareto", chosen, verdict, None)
    winner = verdict.winner_config
    if winner is None:
        return Answer("no_winner", [], verdict, None)
    gain = confirmed_improvement(verdict, winner, 0)
    return Answer("winner", [by_number[winner.trial]], verdict, gain)


def best_config(record: TrialRecord) -> dict[str, Any]:
    """The applied router config and hints of a trial, ready to reuse."""
    return {"router": record.router_config, "hints": record.hints}


def router_args(record: TrialRecord) -> tuple[list[str], list[str]]:
    """(the frontend flags of the router fields the study set: searched, overridden or set in
    the deployment's `router:` section; the flags the stack added on its own, e.g. the local
    stack's `--kv-cache-block-size`, which must match the workers it is pasted next to)."""
    return split_flags(record.frontend_args, record.router_config)


def best_payload(record: TrialRecord, verdict: Verdict | None = None) -> dict[str, Any]:
    """One chosen trial as `best --format json` lists it. `values` are the answer's values:
    the confirmed means when `verdict` confirmed the trial (`values_source` "confirmation",
    each objective's gain with its interval in `vs_baseline`), else the trial's single search
    values (`values_source` "search"); `search_values` and `metrics` are always the search
    trial's single measurement."""
    config = None
    if verdict is not None:
        config = next((c for c in verdict.configs if c.trial == record.number), None)
    search = list(record.values) if record.values is not None else None
    values: list[float] | None = search
    gains: list[dict[str, Any] | None] | None = None
    if verdict is not None and config is not None:
        values = [o.summary.mean for o in config.objectives]
        gains = [
            g.model_dump(mode="json") if (g := confirmed_improvement(verdict, config, i)) else None
            for i in range(len(config.objectives))
        ]
    flags, stack_flags = router_args(record)
    return {
        "number": record.number,
        "values": values,
        "values_source": "confirmation" if config is not None else "search",
        "search_values": search,
        "vs_baseline": gains,
        "params": record.params,
        **best_config(record),
        "frontend_args": flags,
        "stack_frontend_args": stack_flags,
        "metrics": {k: record.value(k) for k in (*CORE_KEYS, *WORKLOAD_KEYS)},
        "metrics_source": "search",
        "violations": config.violations if config is not None else record.violations,
    }
