"""Values at the edge of their searched range (study.confirmation.edges), by hand arithmetic."""

from __future__ import annotations

import pytest

from dynamo_tune.study.confirmation.edges import Edge, near_bounds, suggestion
from dynamo_tune.study.spec.schema import CategoricalParam, FloatParam, IntParam

LINEAR = FloatParam(type="float", low=0.0, high=2.0)
LOG = FloatParam(type="float", low=0.25, high=8.0, log=True)


def _at(value: float, spec: FloatParam | IntParam, share: float = 0.05) -> list[Edge]:
    return near_bounds({"router.x": value}, {"router.x": spec}, share)


def test_a_linear_range() -> None:
    # width 2; 5 % of it is 0.1
    assert _at(1.95, LINEAR) == [Edge("router.x", "high", 1.95, 2.0, 0.05, False)]  # 0.05 / 2
    assert _at(0.05, LINEAR) == [Edge("router.x", "low", 0.05, 0.0, 0.05, False)]  # 0.05 / 2
    assert _at(2.0, LINEAR)[0].bound == "high"  # on the bound
    assert _at(0.0, LINEAR)[0].bound == "low"
    assert _at(1.0, LINEAR) == []  # 0.5 of the width from either bound
    assert _at(1.85, LINEAR) == []  # 0.15 / 2 = 0.075 > 0.05


def test_the_share_is_inclusive() -> None:
    spec = FloatParam(type="float", low=0.0, high=100.0)
    assert _at(95.0, spec)[0].bound == "high"  # (100 - 95) / 100 = 0.05 exactly
    assert _at(5.0, spec)[0].bound == "low"  # 5 / 100 = 0.05
    assert _at(94.9, spec) == []  # 0.051
    assert _at(0.5, LINEAR, share=0.25)[0].bound == "low"  # 0.5 / 2 = 0.25
    assert _at(0.6, LINEAR, share=0.25) == []  # 0.3


def test_a_value_beyond_a_bound_is_at_it() -> None:
    # e.g. a baseline setting outside the searched range
    assert _at(2.5, LINEAR)[0].bound == "high"
    assert _at(-1.0, LINEAR)[0].bound == "low"


def test_a_log_range_is_measured_in_log_space() -> None:
    # log-width ln(8 / 0.25) = ln 32 = 3.465736
    # 7.0: ln(8 / 7) / ln 32 = 0.133531 / 3.465736 = 0.0385 <= 0.05 -> at high
    #      (linearly it would not be: (8 - 7) / 7.75 = 0.129)
    assert _at(7.0, LOG) == [Edge("router.x", "high", 7.0, 8.0, 0.05, True)]
    # 6.0: ln(8 / 6) / ln 32 = 0.287682 / 3.465736 = 0.0830 -> nowhere
    assert _at(6.0, LOG) == []
    # 0.26: ln(0.26 / 0.25) / ln 32 = 0.039221 / 3.465736 = 0.0113 -> at low
    assert _at(0.26, LOG) == [Edge("router.x", "low", 0.26, 0.25, 0.05, True)]
    # 0.5: ln 2 / ln 32 = 0.2 -> nowhere (linearly it would be: 0.25 / 7.75 = 0.032)
    assert _at(0.5, LOG) == []


def test_int_ranges() -> None:
    ints = IntParam(type="int", low=1, high=16)
    # width 15; 5 % of it is 0.75: only the bounds themselves
    assert _at(16, ints) == [Edge("router.x", "high", 16, 16, 0.05, False)]
    assert _at(1, ints) == [Edge("router.x", "low", 1, 1, 0.05, False)]
    assert _at(15, ints) == []  # 1 / 15 = 0.067
    log_ints = IntParam(type="int", low=1, high=64, log=True)
    # log-width ln 64 = 4.158883
    assert _at(52, log_ints)[0].bound == "high"  # ln(64 / 52) = 0.207639 -> 0.0499
    assert _at(50, log_ints) == []  # ln(64 / 50) = 0.246860 -> 0.0594


def test_a_stepped_range_ends_at_its_last_step() -> None:
    # 0..10 step 3 takes 0, 3, 6, 9: 9 is its upper bound (width 9)
    stepped = IntParam(type="int", low=0, high=10, step=3)
    assert _at(9, stepped) == [Edge("router.x", "high", 9, 9, 0.05, False)]
    assert _at(6, stepped) == []  # 3 / 9
    # 0..1 step 0.3 takes 0, 0.3, 0.6, 0.9
    stepped_floats = FloatParam(type="float", low=0.0, high=1.0, step=0.3)
    assert _at(0.9, stepped_floats) == [Edge("router.x", "high", 0.9, 0.9, 0.05, False)]
    # 0..1 step 0.25 reaches 1 itself
    assert _at(1.0, FloatParam(type="float", low=0.0, high=1.0, step=0.25))[0].limit == 1.0


def test_categorical_absent_and_widthless_params_are_never_at_an_edge() -> None:
    space = {
        "router.mode": CategoricalParam(type="categorical", choices=["kv", "round-robin"]),
        "router.fixed": FloatParam(type="float", low=1.0, high=1.0),
        "router.unsearched": LINEAR,
        "router.a": LINEAR,
    }
    params = {"router.mode": "kv", "router.fixed": 1.0, "hints.other": 2.0, "router.a": 2.0}
    assert near_bounds(params, space) == [Edge("router.a", "high", 2.0, 2.0, 0.05, False)]


def test_edges_come_in_the_order_of_the_space() -> None:
    space = {"router.b": LINEAR, "router.a": LOG}
    params = {"router.a": 8.0, "router.b": 0.0}
    assert [(e.name, e.bound) for e in near_bounds(params, space)] == [
        ("router.b", "low"),
        ("router.a", "high"),
    ]


@pytest.mark.parametrize("share", [0.0, 0.5, -0.1, 1.0])
def test_share_must_lie_between_0_and_a_half(share: float) -> None:
    with pytest.raises(ValueError, match="0 < share < 0.5"):
        _at(1.0, LINEAR, share)


def test_bad_values_are_errors() -> None:
    with pytest.raises(ValueError, match="log range needs values > 0"):
        _at(0.0, LOG)
    with pytest.raises(TypeError, match="router.x: a float param's value must be a number"):
        near_bounds({"router.x": "1.0"}, {"router.x": LINEAR})
    with pytest.raises(TypeError, match="must be a number"):
        near_bounds({"router.x": True}, {"router.x": IntParam(type="int", low=0, high=1)})


def test_suggestion_texts() -> None:
    high = Edge("router.prefill_load_scale", "high", 7.9, 8.0, 0.05, False)
    assert suggestion(high) == (
        "router.prefill_load_scale = 7.9 is within 5 % of the upper bound 8 of its searched "
        "range: widen `high` to search beyond it"
    )
    low = Edge("router.router_temperature", "low", 0.26, 0.25, 0.05, True)
    assert suggestion(low) == (
        "router.router_temperature = 0.26 is within 5 % (in log scale) of the lower bound 0.25 "
        "of its searched range: lower `low` to search below it"
    )
    assert suggestion(_at(0.5, LINEAR, share=0.25)[0]).startswith(
        "router.x = 0.5 is within 25 % of the lower bound 0 "
    )
