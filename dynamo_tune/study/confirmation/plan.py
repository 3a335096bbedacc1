"""The confirmation stage: which configurations to re-measure, queued interleaved. Does I/O:
the study storage.

After the search, the top `top` distinct feasible configurations (a Pareto study: members of
its Pareto set, best first objective first, at most `top`) and the baseline are measured
again, `repeats` times each, as trials of their own with fixed params and user attrs
`stage: confirm`, `confirms: <search trial>`. They are queued round by round — baseline, c1,
c2, …, baseline, c1, … — so drift over time hits all alike. The plan (baseline, configs,
repeats) is stored on the study; `confirm` with a larger `top`/`repeats` extends it, and a
resumed run queues only what is neither done, queued nor running (a killed measurement is
FAILed by `recovery` and measured again from here, never twice).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.study.trial.attr_keys import CONFIRM_STAGE, StudyAttr, TrialAttr
from dynamo_tune.study.trial.selection import is_confirmation, ranked, search_trials


@dataclass(frozen=True)
class Plan:
    """What the confirmation stage measures: search trial numbers and repeats."""

    baseline: int
    configs: tuple[int, ...]
    repeats: int

    @property
    def members(self) -> tuple[int, ...]:
        """Baseline first, then the configurations best first (the order of each round)."""
        return (self.baseline, *self.configs)

    def to_json(self) -> dict[str, object]:
        return {"baseline": self.baseline, "configs": list(self.configs), "repeats": self.repeats}


def config_key(trial: FrozenTrial) -> str:
    """What makes two trials the same configuration: params and fixed overrides."""
    overrides = trial.user_attrs.get(TrialAttr.OVERRIDES) or {}
    return json.dumps({"params": trial.params, "overrides": overrides}, sort_keys=True)


def select(study: optuna.Study, top: int) -> tuple[FrozenTrial | None, list[FrozenTrial]]:
    """(the search baseline trial, the top distinct configurations other than it)."""
    complete = search_trials(study, TrialState.COMPLETE)
    baseline = next((t for t in complete if t.user_attrs.get(TrialAttr.BASELINE)), None)
    seen = {config_key(baseline)} if baseline is not None else set()
    chosen: list[FrozenTrial] = []
    for trial in ranked(study):
        key = config_key(trial)
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == top:
            break
    return baseline, chosen


def stored_plan(study: optuna.Study) -> Plan | None:
    raw = study.user_attrs.get(StudyAttr.CONFIRM_PLAN)
    if not isinstance(raw, dict):
        return None
    return Plan(int(raw["baseline"]), tuple(int(n) for n in raw["configs"]), int(raw["repeats"]))


def plan(study: optuna.Study, top: int, repeats: int) -> Plan | None:
    """The plan for `top` and `repeats`, merged with the stored one (configs kept, new ones
    appended, the larger repeats); None without a COMPLETE baseline or configuration."""
    baseline, chosen = select(study, top)
    old = stored_plan(study)
    if baseline is None:
        return old
    configs = list(old.configs) if old is not None else []
    configs += [t.number for t in chosen if t.number not in configs]
    if not configs:
        return old
    new = Plan(baseline.number, tuple(configs), max(repeats, old.repeats if old else 0))
    if new != old:
        study.set_user_attr(StudyAttr.CONFIRM_PLAN, new.to_json())
    return new


def measurements(study: optuna.Study, states: Sequence[TrialState]) -> dict[int, list[FrozenTrial]]:
    """Confirmation trials in `states`, by the search trial they confirm."""
    out: dict[int, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False, states=tuple(states)):
        if is_confirmation(t):
            out.setdefault(int(t.user_attrs[TrialAttr.CONFIRMS]), []).append(t)
    return out


def enqueue_missing(study: optuna.Study, plan_: Plan) -> int:
    """Queue, round by round, every measurement the plan lacks; how many were queued."""
    pending = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    counts = {n: len(ts) for n, ts in measurements(study, pending).items()}
    sources = {t.number: t for t in study.get_trials(deepcopy=False)}
    queued = 0
    for round_ in range(plan_.repeats):
        for number in plan_.members:
            if counts.get(number, 0) > round_:
                continue
            source = sources[number]
            attrs = {
                TrialAttr.STAGE: CONFIRM_STAGE,
                TrialAttr.CONFIRMS: number,
                TrialAttr.OVERRIDES: source.user_attrs.get(TrialAttr.OVERRIDES) or {},
            }
            study.enqueue_trial(dict(source.params), user_attrs=attrs)
            counts[number] = counts.get(number, 0) + 1
            queued += 1
    return queued


def waiting(study: optuna.Study) -> int:
    """Confirmation measurements queued and not yet started."""
    return sum(len(ts) for ts in measurements(study, (TrialState.WAITING,)).values())
