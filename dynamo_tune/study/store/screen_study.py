"""The screen's own Optuna study beside the live one, and what it hands the live study. Does
I/O: the study storage.

The screen is the study `<name>.screen` in the live study's storage, so optuna-dashboard lists
it: one trial per screened configuration, its value the mean screen score over the replays,
its params the screened knobs only (the live-only ones are held at the baseline's values:
`spec.screening`). The baseline and the `study.enqueue` entries are screened first, as fixed
configurations, so the rank agreement has their screen scores. Once the
screen holds its target, `enqueue_screened` queues the best `top` distinct feasible screened
configurations in the live study, once: the numbers are stored (`screen_enqueued`), so a
resumed run never queues them again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.exceptions import DuplicatedStudyError
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.study.spec.presets import entries, router_defaults_if_installed
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.spec.space import SearchSpace, fixed_values
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.store.storage import storage_errors
from dynamo_tune.study.trial.attr_keys import StudyAttr, TrialAttr
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord, enqueue, records
from dynamo_tune.study.trial.selection import screen_ranked

SUFFIX = ".screen"
MIN_DISTANCE = 0.1
"""Configurations queued live lie at least this far apart (`distance`), when enough do."""
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
"""States of the trials a screen study stores (it never stores an unfinished one)."""


def screen_study_name(name: str) -> str:
    """The screen study's name beside live study `name`."""
    return name + SUFFIX


def fixed_configs(
    spec: StudySpec, space: SearchSpace
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(params, attrs) of the baseline and every `study.enqueue` entry, in the order the live
    study measures them; params in `space` (the screened knobs), the rest in `overrides`."""
    defaults = router_defaults_if_installed()
    settings: list[tuple[dict[str, Any], dict[str, Any]]] = []
    if spec.study.baseline:
        settings.append((dict(spec.study.baseline), {TrialAttr.BASELINE: True}))
    for entry in entries(spec):
        settings.append((dict(entry.settings), {TrialAttr.PRESET: entry.label}))
    out = []
    for values, attrs in settings:
        params, overrides = fixed_values(
            space, values, spec.deployment.router, spec.workload, defaults
        )
        out.append((params, {**attrs, TrialAttr.OVERRIDES: overrides}))
    return out


def open_screen_study(handle: StudyHandle) -> tuple[optuna.Study, bool]:
    """Create the screen study or load it to resume; (study, created). The screen samples in
    memory and stores each finished trial in one write (`add_trial`), so the stored study
    never holds a RUNNING or WAITING trial: a killed screen loses at most the trial it was
    replaying."""
    name = screen_study_name(handle.loaded.spec.study.name)
    with storage_errors(handle.target, "write"):
        try:
            study = optuna.create_study(
                storage=handle.storage, study_name=name, direction="maximize"
            )
        except DuplicatedStudyError:
            return optuna.load_study(study_name=name, storage=handle.storage), False
    return study, True


def missing_fixed(
    screen: optuna.Study, spec: StudySpec, space: SearchSpace
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The fixed configurations the screen has not stored yet (`fixed_configs`), in order."""
    done = [r for r in records(screen, *FINISHED)]
    baseline = any(r.baseline for r in done)
    presets = {r.preset for r in done if r.preset is not None}
    return [
        (params, attrs)
        for params, attrs in fixed_configs(spec, space)
        if not (attrs.get(TrialAttr.BASELINE) and baseline)
        and attrs.get(TrialAttr.PRESET) not in presets
    ]


def load_screen_study(handle: StudyHandle) -> optuna.Study | None:
    """The screen study of `handle`'s study, or None when it has none (for reading)."""
    name = screen_study_name(handle.loaded.spec.study.name)
    with storage_errors(handle.target, "read"):
        try:
            return optuna.load_study(study_name=name, storage=handle.storage)
        except KeyError:
            return None


def screened_count(screen: optuna.Study) -> int:
    """COMPLETE screen trials (fixed configurations included)."""
    return len(screen.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def ranked(screen: optuna.Study) -> list[TrialRecord]:
    """COMPLETE feasible screen trials, best screen score first (`selection.screen_ranked`)."""
    return screen_ranked(records(screen, TrialState.COMPLETE))


def distance(a: Mapping[str, Any], b: Mapping[str, Any], space: SearchSpace) -> float:
    """How far apart two configurations lie: the largest per-knob gap, each numeric knob
    scaled to [0, 1] over its range (log scale for a log range), 1 for a differing category
    or a knob only one of them has."""
    gap = 0.0
    for name, dist in space.distributions().items():
        if (name in a) != (name in b):
            gap = 1.0
        elif name in a and isinstance(dist, FloatDistribution | IntDistribution):
            scale = math.log if dist.log else float
            span = scale(dist.high) - scale(dist.low)
            if span > 0:
                gap = max(gap, abs(scale(a[name]) - scale(b[name])) / span)
        elif name in a and a[name] != b[name]:
            gap = 1.0
    return gap


def held_params(trial: FrozenTrial) -> Mapping[str, Any]:
    """A live trial's configuration: its params, or for a queued (WAITING) trial the fixed
    params `enqueue_trial` stored (Optuna's `fixed_params` system attr)."""
    if trial.state == TrialState.WAITING:
        fixed = trial.system_attrs.get("fixed_params")
        return fixed if isinstance(fixed, dict) else {}
    return trial.params


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


def enqueue_screened(
    live: optuna.Study,
    screen: optuna.Study,
    top: int,
    live_only: Mapping[str, Any],
    space: SearchSpace,
    variants: Mapping[str, Sequence[Any]] | None = None,
) -> list[int] | None:
    """Queue the best `top` distinct screened configurations (sampled ones, not the fixed
    configurations, each with the live-only knobs `live_only`) in `live`, after what is
    queued; the screen trial numbers, or None when this study already did (once per study).

    Distinct: a configuration the live study already holds (any state) is skipped, and so is
    one within `MIN_DISTANCE` (`distance`) of a better one already chosen: TPE's best
    proposals cluster, and near-twins would spend live trials on one configuration. When too
    few are that far apart, the next best fill up to `top`."""
    if StudyRecord.from_study(live).screen_enqueued is not None:
        return None
    seen = {_key(held_params(t)) for t in live.get_trials(deepcopy=False)}
    candidates: list[tuple[int, dict[str, Any]]] = []
    for r in ranked(screen):
        params = space.active({**r.params, **live_only})
        if r.baseline or r.preset is not None or _key(params) in seen:
            continue
        seen.add(_key(params))
        candidates.append((r.number, params))
    chosen: list[tuple[int, dict[str, Any]]] = []
    for number, params in candidates:
        if len(chosen) < top and all(distance(params, p, space) >= MIN_DISTANCE for _, p in chosen):
            chosen.append((number, params))
    for number, params in candidates:  # too few far apart: the next best fill up
        if len(chosen) < top and all(number != n for n, _ in chosen):
            chosen.append((number, params))
    for number, params in chosen:
        enqueue(live, params, {TrialAttr.SCREENED: number})
    if chosen:
        number, best = chosen[0]
        for name, values in (variants or {}).items():
            for value in values:
                params = space.active({**best, name: value})
                if _key(params) not in seen:
                    seen.add(_key(params))
                    label = f"screen #{number} with {name}={value}"
                    enqueue(live, params, {TrialAttr.PRESET: label})
    numbers = [n for n, _ in chosen]
    live.set_user_attr(StudyAttr.SCREEN_ENQUEUED, numbers)
    return numbers
