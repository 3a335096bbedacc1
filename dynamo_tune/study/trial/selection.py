"""Which stored trials count: search or confirmation, feasible, ranked best first. Pure.

Functions take a study (only reading its trials and directions) or records already read, and
return `TrialRecord`s. The best trial prefers feasible trials (no violation recorded); a
Pareto study's best trials are its feasible non-dominated COMPLETE trials.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from dynamo_tune.study.trial.record import TrialRecord, records


def search_trials(study: optuna.Study, *states: TrialState) -> list[TrialRecord]:
    """The search stage's trials in `states` (all states if none given)."""
    return [r for r in records(study, *states) if not r.is_confirmation]


def _better(a: float, b: float, direction: StudyDirection) -> bool:
    return a > b if direction == StudyDirection.MAXIMIZE else a < b


def _dominates(a: TrialRecord, b: TrialRecord, directions: Sequence[StudyDirection]) -> bool:
    if a.values is None or b.values is None:
        return False
    pairs = list(zip(a.values, b.values, directions, strict=True))
    return all(x == y or _better(x, y, d) for x, y, d in pairs) and any(
        _better(x, y, d) for x, y, d in pairs
    )


def ranked(study: optuna.Study, pool: Sequence[TrialRecord] | None = None) -> list[TrialRecord]:
    """Feasible COMPLETE search trials best first (a Pareto study: its Pareto set, ordered by
    the first objective); `pool` replaces the study's feasible COMPLETE search trials."""
    if pool is None:
        pool = [r for r in search_trials(study, TrialState.COMPLETE) if r.feasible]
    directions = study.directions
    if len(directions) > 1:
        pool = [
            r for r in pool if not any(_dominates(o, r, directions) for o in pool if o is not r)
        ]
    sign = -1.0 if directions[0] == StudyDirection.MAXIMIZE else 1.0
    return sorted(pool, key=lambda r: (sign * (r.values or (0.0,))[0], r.number))


def best_trials(study: optuna.Study) -> list[TrialRecord]:
    """The best COMPLETE search trial (or Pareto front), feasible ones preferred; [] if none."""
    complete = search_trials(study, TrialState.COMPLETE)
    pool = [r for r in complete if r.feasible] or complete
    if not pool:
        return []
    order = ranked(study, pool)
    return order[:1] if len(study.directions) == 1 else order


def baseline_trial(study: optuna.Study) -> TrialRecord | None:
    """The first COMPLETE baseline trial, if any."""
    return next((r for r in records(study, TrialState.COMPLETE) if r.baseline), None)


def screen_ranked(done: list[TrialRecord]) -> list[TrialRecord]:
    """Feasible screen trials with a value, best mean screen score first (ties: lower number)."""
    feasible = [r for r in done if r.values and r.feasible]
    return sorted(feasible, key=lambda r: (-(r.values or (0.0,))[0], r.number))
