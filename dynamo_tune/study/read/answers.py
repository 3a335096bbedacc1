"""What a study answers: the confirmed verdict, or the raw best trial(s) labelled so. Pure.

`answer` returns data (`Answer`: its kind, the chosen trials, the verdict, the raw
improvement); the CLI and the report render it. A verdict stored before verdicts carried
their range edges gets them computed from the study file here (`verdict_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.confirmation.edges import can_widen
from dynamo_tune.study.confirmation.verdict import Verdict, stored_verdict, with_edges
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.attr_keys import CORE_KEYS, WORKLOAD_KEYS
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord, records
from dynamo_tune.study.trial.selection import baseline_trial, best_trials

AnswerKind = Literal["winner", "no_winner", "pareto", "unconfirmed"]


class Improvement(BaseModel):
    """Raw best vs baseline of a single-objective study (one search measurement each)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    best_trial: int
    best_value: float
    baseline_trial: int
    baseline_value: float
    absolute: float
    relative: float | None
    """(best − baseline) / |baseline|; None when the baseline's value is 0."""

    @property
    def text(self) -> str:
        """`best #1 0.7439 vs baseline #0 0.4889: +0.2550 (+52.2%)`."""
        rel = f" ({self.relative:+.1%})" if self.relative is not None else ""
        return (
            f"best #{self.best_trial} {self.best_value:.4f} vs baseline "
            f"#{self.baseline_trial} {self.baseline_value:.4f}: {self.absolute:+.4f}{rel}"
        )


def improvement(study: optuna.Study) -> Improvement | None:
    """Best vs baseline of a single-objective study: values, absolute and relative change."""
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
    requested_unconfirmed: bool = False
    """True when the caller asked for the raw best although a verdict may exist."""

    @property
    def confirmed(self) -> bool:
        return self.kind != "unconfirmed"


def answer(study: optuna.Study, unconfirmed: bool = False, spec: StudySpec | None = None) -> Answer:
    """The confirmed winner (a Pareto study: its feasible confirmed configurations); with
    `unconfirmed`, or before any confirmation, the raw best trial(s)."""
    verdict = None if unconfirmed else verdict_of(study, spec)
    imp = improvement(study)
    if verdict is None:
        return Answer("unconfirmed", best_trials(study), None, imp, unconfirmed)
    by_number = {r.number: r for r in records(study)}
    if verdict.kind == "pareto":
        chosen = [by_number[c.trial] for c in verdict.configs if c.feasible]
        return Answer("pareto", chosen, verdict, imp)
    winner = verdict.winner_config
    if winner is None:
        return Answer("no_winner", [], verdict, imp)
    return Answer("winner", [by_number[winner.trial]], verdict, imp)


def best_config(record: TrialRecord) -> dict[str, Any]:
    """The applied router config and hints of a trial, ready to reuse."""
    return {"router": record.router_config, "hints": record.hints}


def best_payload(record: TrialRecord) -> dict[str, Any]:
    """One chosen trial as `best --format json` lists it."""
    return {
        "number": record.number,
        "values": list(record.values) if record.values is not None else None,
        "params": record.params,
        **best_config(record),
        "frontend_args": record.frontend_args,
        "metrics": {k: record.value(k) for k in (*CORE_KEYS, *WORKLOAD_KEYS)},
        "violations": record.violations,
    }
