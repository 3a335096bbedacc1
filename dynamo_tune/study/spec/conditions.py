"""When a searched parameter is suggested: explicit `when:` plus the router modes that use it. Pure.

A parameter is *active* in a trial when every condition on it holds: each names another
searched parameter and the values it must take (`when: {router.mode: kv}`). Router knobs
carry an implicit condition from the flag table: a knob Dynamo does not use under a router
mode (`dynamo_tune.deploy.router_flags`) is only suggested in trials whose `router.mode` is
one that uses it. An inactive parameter is not suggested (Optuna define-by-run), so it is
absent from the trial's params and samplers and importances see the real structure.

`Conditions` maps a parameter to {parameter it depends on: allowed values}; only searched
parameters appear on either side (`checks.py` rejects anything else with its location).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamo_tune.deploy.router_flags import knob_used_in
from dynamo_tune.study.spec.schema import CategoricalParam, ParamSpec

ROUTER_MODE = "router.mode"

Conditions = dict[str, dict[str, tuple[Any, ...]]]


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def router_mode_values(params: Mapping[str, ParamSpec]) -> tuple[Any, ...] | None:
    """The modes a study searches (`router.mode` choices), None when the mode is fixed."""
    mode = params.get(ROUTER_MODE)
    return tuple(mode.choices) if isinstance(mode, CategoricalParam) else None


def implicit_modes(name: str, modes: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The searched modes under which router knob `name` acts; None when it acts in all."""
    section, _, field = name.partition(".")
    if section != "router" or name == ROUTER_MODE:
        return None
    used = tuple(m for m in modes if knob_used_in(field, str(m)))
    return None if used == modes else used


def conditions_of(params: Mapping[str, ParamSpec]) -> Conditions:
    """Every parameter's conditions: its explicit `when`, and for a router knob the searched
    router modes that use it (intersected with an explicit `when` on `router.mode`)."""
    modes = router_mode_values(params)
    out: Conditions = {}
    for name, param in params.items():
        conds = {k: _as_tuple(v) for k, v in (param.when or {}).items()}
        implicit = implicit_modes(name, modes) if modes is not None else None
        if implicit is not None:
            explicit = conds.get(ROUTER_MODE)
            conds[ROUTER_MODE] = (
                implicit if explicit is None else tuple(m for m in explicit if m in implicit)
            )
        if conds:
            out[name] = conds
    return out


def suggestion_order(params: Mapping[str, ParamSpec], conditions: Conditions) -> list[str]:
    """File order, except that a parameter comes after those its conditions name.

    ValueError naming the parameters when conditions form a cycle.
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 placed

    def place(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"`when` conditions form a cycle: {' -> '.join((*path, name))}")
        state[name] = 1
        for dep in conditions.get(name, {}):
            place(dep, (*path, name))
        state[name] = 2
        order.append(name)

    for name in params:
        place(name, ())
    return order


def is_active(name: str, values: Mapping[str, Any], conditions: Conditions) -> bool:
    """True if every condition of `name` holds for the values suggested so far (a condition
    on a parameter that was not suggested does not hold)."""
    return all(
        dep in values and any(_same(values[dep], v) for v in allowed)
        for dep, allowed in conditions.get(name, {}).items()
    )


def active_subset(values: Mapping[str, Any], conditions: Conditions) -> dict[str, Any]:
    """The part of a full configuration a trial with these values would suggest (for
    enqueueing a fixed configuration: presets, baseline)."""
    kept: dict[str, Any] = {}
    remaining = dict(values)  # decided in dependency order: a condition names earlier values
    progress = True
    while progress:
        progress = False
        for name in list(remaining):
            deps = conditions.get(name, {})
            if all(d in kept or d not in values for d in deps):
                if is_active(name, kept, conditions):
                    kept[name] = remaining[name]
                del remaining[name]
                progress = True
    return kept


def _same(a: Any, b: Any) -> bool:
    """Equal, with a bool never equal to a number (True is not 1)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b
