"""The confirmation stage's plan: which configurations to re-measure, queued interleaved.
Does I/O: the study storage.

After the search, the top `top` distinct feasible configurations (a Pareto study: members of
its Pareto set, best first objective first, at most `top`) and the baseline are measured
again, `repeats` times each, as trials of their own with fixed params and user attrs
`stage: confirm`, `confirms: <search trial>`. They are queued round by round — baseline, c1,
c2, …, baseline, c1, … — so drift over time hits all alike. The plan (`ConfirmPlan`:
baseline, configs, repeats) is stored on the study; `confirm` with a larger `top`/`repeats`
extends it, and a resumed run queues only what is neither done, queued nor running (a killed
measurement is FAILed by `store.recovery` and measured again from here, never twice).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from dynamo_tune.study.trial.attr_keys import CONFIRM_STAGE, StudyAttr, TrialAttr
from dynamo_tune.study.trial.record import (
    ConfirmPlan,
    StudyRecord,
    TrialRecord,
    enqueue,
    records,
)
from dynamo_tune.study.trial.selection import ranked, search_trials

__all__ = [
    "ConfirmPlan",
    "config_key",
    "enqueue_missing",
    "extend_plan",
    "measurements",
    "select",
    "stored_plan",
    "waiting",
]


def config_key(record: TrialRecord) -> str:
    """What makes two trials the same configuration: params and fixed overrides."""
    return json.dumps({"params": record.params, "overrides": record.overrides}, sort_keys=True)


def select(study: optuna.Study, top: int) -> tuple[TrialRecord | None, list[TrialRecord]]:
    """(the search baseline trial, the top distinct configurations other than it)."""
    complete = search_trials(study, TrialState.COMPLETE)
    baseline = next((r for r in complete if r.baseline), None)
    seen = {config_key(baseline)} if baseline is not None else set()
    chosen: list[TrialRecord] = []
    for record in ranked(study, [r for r in complete if r.feasible]):
        key = config_key(record)
        if key not in seen:
            seen.add(key)
            chosen.append(record)
        if len(chosen) == top:
            break
    return baseline, chosen


def stored_plan(study: optuna.Study) -> ConfirmPlan | None:
    return StudyRecord.from_study(study).confirm_plan


def extend_plan(study: optuna.Study, top: int, repeats: int) -> ConfirmPlan | None:
    """The plan for `top` and `repeats`, merged with the stored one (configs kept, new ones
    appended, the larger repeats) and stored; None without a COMPLETE baseline or
    configuration."""
    baseline, chosen = select(study, top)
    old = stored_plan(study)
    if baseline is None:
        return old
    configs = list(old.configs) if old is not None else []
    configs += [r.number for r in chosen if r.number not in configs]
    if not configs:
        return old
    new = ConfirmPlan(
        baseline=baseline.number,
        configs=configs,
        repeats=max(repeats, old.repeats if old else 0),
    )
    if new != old:
        study.set_user_attr(StudyAttr.CONFIRM_PLAN, new.model_dump(mode="json"))
    return new


def measurements(study: optuna.Study, states: Sequence[TrialState]) -> dict[int, list[TrialRecord]]:
    """Confirmation trials in `states`, by the search trial they confirm."""
    out: dict[int, list[TrialRecord]] = {}
    for r in records(study, *states):
        if r.is_confirmation and r.confirms is not None:
            out.setdefault(r.confirms, []).append(r)
    return out


def enqueue_missing(study: optuna.Study, plan: ConfirmPlan) -> int:
    """Queue, round by round, every measurement the plan lacks; how many were queued."""
    pending = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    counts = {n: len(rs) for n, rs in measurements(study, pending).items()}
    sources = {r.number: r for r in records(study)}
    queued = 0
    for round_ in range(plan.repeats):
        for number in plan.members:
            if counts.get(number, 0) > round_:
                continue
            source = sources[number]
            attrs = {
                TrialAttr.STAGE: CONFIRM_STAGE,
                TrialAttr.CONFIRMS: number,
                TrialAttr.OVERRIDES: source.overrides,
            }
            enqueue(study, source.params, attrs)
            counts[number] = counts.get(number, 0) + 1
            queued += 1
    return queued


def waiting(study: optuna.Study) -> int:
    """Confirmation measurements queued and not yet started."""
    return sum(len(rs) for rs in measurements(study, (TrialState.WAITING,)).values())
