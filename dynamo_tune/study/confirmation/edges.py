"""Whether a configuration's values sit at the edge of their searched ranges. Pure.

A best value near a bound of its range hints that a better one lies beyond it: the range,
not the search, stopped there. A numeric value is at an edge when its distance to a bound is at
most `share` of the range's width, both measured in log space for a `log: true` range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import ValidationError

from dynamo_tune.study.spec.schema import FloatParam, IntParam, ParamSpec, StudySpec
from dynamo_tune.study.spec.space import make_candidate


@dataclass(frozen=True)
class Edge:
    """Searched name `name` has `value` within `share` of its range's `bound`, whose value is
    `limit` (the highest value a stepped range can take for "high"); `log`: measured in log
    space."""

    name: str
    bound: Literal["low", "high"]
    value: float
    limit: float
    share: float
    log: bool


def near_bounds(
    params: Mapping[str, object], space: Mapping[str, ParamSpec], share: float = 0.05
) -> list[Edge]:
    """The numeric `params` within `share` of a bound of their range in `space`, in `space` order.

    With f = ln for a log range and the identity otherwise, a value v of the range [low, top]
    is at the low edge when (f(v) − f(low)) / (f(top) − f(low)) <= share, at the high edge
    when (f(top) − f(v)) / (f(top) − f(low)) <= share; a value beyond a bound is at it too.
    top is `high`, or for a stepped range the highest value it reaches,
    low + floor((high − low) / step) · step (as Optuna adjusts it). Categorical params, names
    absent from either mapping and ranges without width (low == top) are never at an edge.
    Raises ValueError for `share` outside (0, 0.5) or a value <= 0 in a log range, TypeError
    for a numeric param whose value is not a number.
    """
    if not 0.0 < share < 0.5:  # below 0.5, a value is near at most one bound
        raise ValueError(f"`0 < share < 0.5` must hold, but got {share=}.")
    edges: list[Edge] = []
    for name, spec in space.items():
        if name not in params or not isinstance(spec, FloatParam | IntParam):
            continue
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name}: a {spec.type} param's value must be a number, got {value!r}")
        low, top = spec.low, _top(spec)
        if top <= low:
            continue
        if spec.log and min(low, value) <= 0:
            raise ValueError(f"{name}: a log range needs values > 0, but got {low=}, {value=}")
        f = math.log if spec.log else float
        width = f(top) - f(low)
        from_low, from_top = (f(value) - f(low)) / width, (f(top) - f(value)) / width
        if from_low <= share and from_low <= from_top:
            edges.append(Edge(name, "low", value, low, share, spec.log))
        elif from_top <= share:
            edges.append(Edge(name, "high", value, top, share, spec.log))
    return edges


def _top(spec: FloatParam | IntParam) -> float:
    """The highest value the range takes: low + floor((high − low) / step) · step for a stepped
    range (a float one in decimal arithmetic, as Optuna's distributions adjust it), else `high`."""
    if isinstance(spec, IntParam):
        return spec.low + (spec.high - spec.low) // spec.step * spec.step
    if spec.step is None:
        return spec.high
    low, step = Decimal(str(spec.low)), Decimal(str(spec.step))
    return float(low + (Decimal(str(spec.high)) - low) // step * step)


def suggestion(edge: Edge) -> str:
    """One line for a report, e.g. "router.prefill_load_scale = 7.9 is within 5 % of the upper
    bound 8 of its searched range: widen `high` to search beyond it"."""
    side, action = (
        ("upper", "widen `high` to search beyond it")
        if edge.bound == "high"
        else ("lower", "lower `low` to search below it")
    )
    scale = " (in log scale)" if edge.log else ""
    return (
        f"{edge.name} = {edge.value:g} is within {100 * edge.share:g} %{scale} of the {side} "
        f"bound {edge.limit:g} of its searched range: {action}"
    )


def can_widen(spec: StudySpec, edge: Edge) -> bool:
    """Whether the searched range of `edge.name` could extend past `edge.limit`: a value half
    a range width beyond it is still one the study's configuration accepts (Dynamo's own
    limits, e.g. temperature >= 0, are not widened past)."""
    param = spec.search_space.get(edge.name)
    if not isinstance(param, FloatParam | IntParam):
        return False
    if param.log:
        beyond = edge.limit * 2 if edge.bound == "high" else edge.limit / 2
    else:
        step = (param.high - param.low) / 2 or 1
        beyond = edge.limit + step if edge.bound == "high" else edge.limit - step
    if isinstance(param, IntParam):
        beyond = int(round(beyond))
    try:
        make_candidate({edge.name: beyond}, spec.deployment.router, spec.workload)
    except (ValidationError, ValueError):
        return False
    return True
