"""The search space: dotted names -> `trial.suggest_*` -> `Candidate`. Pure.

A searched name is `<section>.<field>`: `router.*` addresses a `RouterConfig` field,
`hints.*` a `PrefixHints` field and `workload.*` a top-level field of the workload spec
(e.g. `workload.concurrency`). A candidate is the study's fixed configuration (the
deployment's `router`, the workload's `hints`, the workload spec) with the searched values
laid over it and validated again, so a value Dynamo would reject never reaches a frontend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from pydantic import BaseModel

from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.study.spec.conditions import (
    Conditions,
    active_subset,
    conditions_of,
    is_active,
    suggestion_order,
)
from dynamo_tune.study.spec.schema import (
    CategoricalParam,
    FloatParam,
    IntParam,
    ParamSpec,
)
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.spec import WorkloadSpec

SECTIONS = ("router", "hints", "workload")
_NOT_SEARCHABLE = {"workload": {"kind", "hints"}}


class SuggestsValues(Protocol):
    """The part of `optuna.Trial` the space uses."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = ..., log: bool = ...
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = ..., log: bool = ...
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> CategoricalChoiceType: ...


@dataclass(frozen=True)
class Candidate:
    """One configuration to measure: the router to apply, the hints and workload to run."""

    router: RouterConfig
    hints: PrefixHints
    workload: WorkloadSpec


def split_name(name: str) -> tuple[str, str]:
    """`"router.temperature"` -> `("router", "temperature")`; ValueError for any other shape."""
    section, dot, field = name.partition(".")
    if not dot or section not in SECTIONS or not field or "." in field:
        raise ValueError(
            f"a searched name is <section>.<field> with section one of {', '.join(SECTIONS)}, "
            f"but got {name!r}"
        )
    return section, field


def target_fields(section: str, workload: WorkloadSpec) -> set[str]:
    """Fields a dotted name may address in `section`."""
    if section == "router":
        return set(RouterConfig.model_fields)
    if section == "hints":
        return set(PrefixHints.model_fields)
    return set(type(workload).model_fields) - _NOT_SEARCHABLE["workload"]


def distribution(param: ParamSpec) -> BaseDistribution:
    """The Optuna distribution of one parameter (ValueError for an impossible one)."""
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    return CategoricalDistribution(tuple(param.choices))


def contains(param: ParamSpec, value: Any) -> bool:
    """True if `value` is one the parameter can take."""
    if isinstance(param, CategoricalParam):
        return any(type(value) is type(c) and value == c for c in param.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(param, IntParam) and not isinstance(value, int):
        return False
    return param.low <= value <= param.high


def grid_values(param: ParamSpec) -> list[Any] | None:
    """Every value of a finite parameter (for the grid sampler); None for a continuous one."""
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    if isinstance(param, IntParam):
        return list(range(param.low, param.high + 1, param.step))
    if param.step is None:
        return None
    count = int(round((param.high - param.low) / param.step)) + 1
    return [round(param.low + i * param.step, 12) for i in range(count)]


def paste_value(value: float, param: FloatParam) -> float:
    """A float a person can paste: a multiple of `step` from `low` when the parameter has a
    step, else 3 significant digits; kept inside `[low, high]`. Pure.

    Every float the tool suggests goes through this before it is applied, so what is
    measured, stored and printed (`best --format flags`) is the same number.
    """
    if param.step is not None:
        k = round((value - param.low) / param.step)
        rounded = float(f"{param.low + k * param.step:.12g}")
    else:
        rounded = float(f"{value:.3g}")
    return min(param.high, max(param.low, rounded))


class SearchSpace:
    """The searched parameters of a study, in file order, with their conditions."""

    def __init__(
        self, params: Mapping[str, ParamSpec], conditions: Conditions | None = None
    ) -> None:
        self.params = dict(params)
        self.conditions = conditions_of(self.params) if conditions is None else conditions
        self.order = suggestion_order(self.params, self.conditions)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: distribution(p) for name, p in self.params.items()}

    def fingerprint(self) -> str:
        """Canonical JSON of the distributions and conditions (what a resumed study must
        still match)."""
        dists: dict[str, Any] = {
            name: json.loads(distribution_to_json(d)) for name, d in self.distributions().items()
        }
        if self.conditions:
            dists = {
                "distributions": dists,
                "conditions": {
                    k: {d: list(v) for d, v in c.items()} for k, c in self.conditions.items()
                },
            }
        return json.dumps(dists, sort_keys=True)

    def active(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a full configuration a trial would suggest (inactive knobs dropped)."""
        return active_subset({k: v for k, v in values.items() if k in self.params}, self.conditions)

    def suggest(self, trial: SuggestsValues) -> dict[str, Any]:
        """Ask the trial for every active parameter, in dependency order; {dotted name: value}."""
        values: dict[str, Any] = {}
        for name in self.order:
            if not is_active(name, values, self.conditions):
                continue
            p = self.params[name]
            if isinstance(p, FloatParam):
                values[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
            elif isinstance(p, IntParam):
                values[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
            else:
                values[name] = trial.suggest_categorical(name, p.choices)
        return {name: values[name] for name in self.params if name in values}


def make_candidate(
    values: Mapping[str, Any], router: RouterConfig, workload: WorkloadSpec
) -> Candidate:
    """Lay dotted `values` over the fixed router and workload; pydantic ValidationError if bad."""
    groups: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for name, value in values.items():
        section, field = split_name(name)
        groups[section][field] = value
    new_router = RouterConfig.model_validate({**router.model_dump(), **groups["router"]})
    new_workload = workload
    if groups["workload"]:
        new_workload = type(workload).model_validate(
            {**workload.model_dump(), **groups["workload"]}
        )
    hints = PrefixHints.model_validate({**new_workload.hints.model_dump(), **groups["hints"]})
    return Candidate(router=new_router, hints=hints, workload=new_workload)


def fixed_values(
    space: SearchSpace,
    settings: Mapping[str, Any],
    router: RouterConfig,
    workload: WorkloadSpec,
    router_defaults: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fixed configuration (the baseline, a preset) as (params to enqueue, overrides).

    Settings of searched parameters become params; the others are overrides laid over the
    study's fixed configuration. A searched parameter the settings do not name takes the
    study's fixed value (or `router_defaults`, Dynamo's own, for an unset router knob) when
    the space contains it, so the trial runs that configuration rather than a sampled one.
    Parameters inactive under the configuration (a kv-only knob in round-robin) are dropped.
    """
    params = {k: v for k, v in settings.items() if k in space.params}
    overrides = {k: v for k, v in settings.items() if k not in space.params}
    hints = workload.hints
    for name, param in space.params.items():
        if name in params:
            continue
        section, field = split_name(name)
        source: BaseModel = {"router": router, "hints": hints, "workload": workload}[section]
        value = getattr(source, field, None)
        if value is None and section == "router":
            value = router_defaults.get(field)
        if value is not None and contains(param, value):
            params[name] = value
    return space.active(params), overrides
