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
from dynamo_tune.study.schema import CategoricalParam, FloatParam, IntParam, ParamSpec
from dynamo_tune.workload.hints import PrefixHints

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
    workload: BaseModel


def split_name(name: str) -> tuple[str, str]:
    """`"router.temperature"` -> `("router", "temperature")`; ValueError for any other shape."""
    section, dot, field = name.partition(".")
    if not dot or section not in SECTIONS or not field or "." in field:
        raise ValueError(
            f"a searched name is <section>.<field> with section one of {', '.join(SECTIONS)}, "
            f"but got {name!r}"
        )
    return section, field


def target_fields(section: str, workload: BaseModel) -> set[str]:
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


class SearchSpace:
    """The searched parameters of a study, in file order."""

    def __init__(self, params: Mapping[str, ParamSpec]) -> None:
        self.params = dict(params)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: distribution(p) for name, p in self.params.items()}

    def fingerprint(self) -> str:
        """Canonical JSON of the distributions (what a resumed study must still match)."""
        dists = {
            name: json.loads(distribution_to_json(d)) for name, d in self.distributions().items()
        }
        return json.dumps(dists, sort_keys=True)

    def suggest(self, trial: SuggestsValues) -> dict[str, Any]:
        """Ask the trial for every parameter; returns {dotted name: value}."""
        values: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, FloatParam):
                values[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
            elif isinstance(p, IntParam):
                values[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
            else:
                values[name] = trial.suggest_categorical(name, p.choices)
        return values


def make_candidate(
    values: Mapping[str, Any], router: RouterConfig, workload: BaseModel
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
    base_hints = getattr(new_workload, "hints", PrefixHints())
    hints = PrefixHints.model_validate({**base_hints.model_dump(), **groups["hints"]})
    return Candidate(router=new_router, hints=hints, workload=new_workload)


DYNAMO_ROUTER_DEFAULTS: dict[str, Any] = {
    "overlap_score_credit": 1.0,
    "prefill_load_scale": 1.0,
    "temperature": 0.0,
    "overlap_score_credit_decay": 0.0,
    "decode_active_request_weight": 0.0,
}
"""What `python -m dynamo.frontend` 1.6.1 uses when a router flag is not passed (design.md §3)."""


def baseline_values(
    space: SearchSpace, baseline: Mapping[str, Any], router: RouterConfig, workload: BaseModel
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the baseline into (searched params to enqueue, fixed overrides outside the space).

    A searched parameter the baseline does not name takes the study's fixed value (or Dynamo's
    default for an unset router knob) when the space contains it, so the baseline trial runs
    the reference configuration rather than a sampled one.
    """
    params = {k: v for k, v in baseline.items() if k in space.params}
    overrides = {k: v for k, v in baseline.items() if k not in space.params}
    hints = getattr(workload, "hints", PrefixHints())
    for name, param in space.params.items():
        if name in params:
            continue
        section, field = split_name(name)
        source: BaseModel = {"router": router, "hints": hints, "workload": workload}[section]
        value = getattr(source, field, None)
        if value is None and section == "router":
            value = DYNAMO_ROUTER_DEFAULTS.get(field)
        if value is not None and contains(param, value):
            params[name] = value
    return params, overrides
