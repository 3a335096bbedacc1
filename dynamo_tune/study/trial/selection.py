"""Which stored trials count: search or confirmation, feasible, ranked best first. Pure.

Functions take a study (only reading its trials and directions). The best trial prefers
feasible trials (no violation recorded); a Pareto study's best trials are its feasible
non-dominated COMPLETE trials.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.study.trial.attr_keys import CONFIRM_STAGE, TrialAttr


def is_confirmation(trial: FrozenTrial) -> bool:
    """A confirmation measurement (not a search trial)."""
    return trial.user_attrs.get(TrialAttr.STAGE) == CONFIRM_STAGE


def search_trials(study: optuna.Study, *states: TrialState) -> list[FrozenTrial]:
    """The search stage's trials in `states` (all states if none given)."""
    trials = study.get_trials(deepcopy=False, states=states or None)
    return [t for t in trials if not is_confirmation(t)]


def feasible(trial: FrozenTrial) -> bool:
    """No constraint > 0 and no violation recorded."""
    return all(v <= 0 for v in trial.constraints.values()) and not trial.user_attrs.get(
        TrialAttr.VIOLATIONS
    )


def _better(a: float, b: float, direction: StudyDirection) -> bool:
    return a > b if direction == StudyDirection.MAXIMIZE else a < b


def _dominates(a: FrozenTrial, b: FrozenTrial, directions: Sequence[StudyDirection]) -> bool:
    assert a.values is not None and b.values is not None
    not_worse = all(
        x == y or _better(x, y, d) for x, y, d in zip(a.values, b.values, directions, strict=True)
    )
    return not_worse and any(
        _better(x, y, d) for x, y, d in zip(a.values, b.values, directions, strict=True)
    )


def ranked(study: optuna.Study, pool: Sequence[FrozenTrial] | None = None) -> list[FrozenTrial]:
    """Feasible COMPLETE search trials best first (a Pareto study: its Pareto set, ordered by
    the first objective)."""
    if pool is None:
        pool = [t for t in search_trials(study, TrialState.COMPLETE) if feasible(t)]
    directions = study.directions
    if len(directions) > 1:
        pool = [
            t for t in pool if not any(_dominates(o, t, directions) for o in pool if o is not t)
        ]
    sign = -1.0 if directions[0] == StudyDirection.MAXIMIZE else 1.0
    return sorted(pool, key=lambda t: (sign * (t.values or [0.0])[0], t.number))


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best COMPLETE search trial (or Pareto front), feasible ones preferred; [] if none."""
    complete = search_trials(study, TrialState.COMPLETE)
    pool = [t for t in complete if feasible(t)] or complete
    if not pool:
        return []
    order = ranked(study, pool)
    return order[:1] if len(study.directions) == 1 else order


def baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    """The first COMPLETE baseline trial, if any."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get(TrialAttr.BASELINE):
            return trial
    return None
