"""The optimization score and the KVE source chain (docs/architecture.md#score)."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field, ValidationError

from dynamo_tune.metrics import (
    DynamoCoreMetrics,
    DynamoMetricsResult,
    ScoreConfig,
    optimization_score,
    validate_weights,
)


def core(kve: float | None = 0.5, ttft: float | None = 0.25, itl: float | None = 0.025) -> (
    DynamoCoreMetrics
):  # fmt: skip
    return DynamoCoreMetrics(kv_efficiency=kve, ttft_p95_seconds=ttft, itl_p95_seconds=itl)


def test_within_targets_latency_scores_are_one() -> None:
    # 0.4*0.5 + 0.4*1 + 0.2*1
    assert core().to_optimization_score() == pytest.approx(0.8)


def test_over_target_scores_target_over_actual() -> None:
    # ttft 1.0 s vs 0.5 s target -> 0.5; itl 0.2 s vs 0.05 s -> 0.25
    score = core(kve=0.25, ttft=1.0, itl=0.2).to_optimization_score()
    assert score == pytest.approx(0.4 * 0.25 + 0.4 * 0.5 + 0.2 * 0.25)


def test_zero_latency_is_floored_at_one_millisecond() -> None:
    assert core(kve=0.0, ttft=0.0, itl=0.0).to_optimization_score() == pytest.approx(0.6)
    # with a target below 1 ms the floor shows: 0.0005 / 0.001
    assert core(kve=1.0, ttft=0.0, itl=0.0).to_optimization_score(
        ttft_target_seconds=0.0005, itl_target_seconds=0.0005
    ) == pytest.approx(0.4 + 0.4 * 0.5 + 0.2 * 0.5)


def test_incomplete_metrics_give_none() -> None:
    for incomplete in (core(kve=None), core(ttft=None), core(itl=None)):
        assert not incomplete.is_complete()
        assert incomplete.to_optimization_score() is None


def test_kve_is_clamped_into_zero_one() -> None:
    assert core(kve=1.7).to_optimization_score() == pytest.approx(1.0)
    assert core(kve=-0.2).to_optimization_score() == pytest.approx(0.6)
    assert core(kve=1.7).get_effective_kv_efficiency() == 1.7  # the value itself is kept


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"kv_weight": 0.5}, "kv_weight \\+ ttft_weight \\+ itl_weight == 1"),
        ({"kv_weight": -0.2, "ttft_weight": 1.0}, "kv_weight"),
        ({"itl_weight": float("nan")}, "itl_weight"),
    ],
)
def test_weights_are_validated_even_when_incomplete(
    weights: dict[str, float], message: str
) -> None:
    for metrics in (core(), core(kve=None)):
        with pytest.raises(ValueError, match=message):
            metrics.to_optimization_score(**weights)


def test_targets_are_validated() -> None:
    with pytest.raises(ValueError, match="ttft_target_seconds"):
        core().to_optimization_score(ttft_target_seconds=0)


def test_pure_score_and_the_method_give_the_hand_computed_value() -> None:
    options = {"kv_weight": 0.5, "ttft_weight": 0.3, "itl_weight": 0.2}
    # 0.5*0.3 + 0.3*(0.5/0.9) + 0.2*(0.05/0.07) = 0.15 + 1/6 + 1/7
    expected = 0.15 + 1 / 6 + 1 / 7
    assert optimization_score(0.3, 0.9, 0.07, **options) == pytest.approx(expected)
    assert core(kve=0.3, ttft=0.9, itl=0.07).to_optimization_score(**options) == (
        pytest.approx(expected)
    )


def test_defaults_are_0_4_0_4_0_2_and_targets_half_second_and_50_ms() -> None:
    # kve 0.5, ttft 1.0 s (target 0.5 -> 0.5), itl 0.1 s (target 0.05 -> 0.5)
    expected = 0.4 * 0.5 + 0.4 * 0.5 + 0.2 * 0.5
    assert optimization_score(0.5, 1.0, 0.1) == pytest.approx(expected)
    assert core(kve=0.5, ttft=1.0, itl=0.1).to_optimization_score() == pytest.approx(expected)
    assert ScoreConfig().score_kwargs() == {
        "kv_weight": 0.4,
        "ttft_weight": 0.4,
        "itl_weight": 0.2,
        "ttft_target_seconds": 0.5,
        "itl_target_seconds": 0.05,
    }


def test_a_score_config_is_the_keyword_arguments_of_the_score() -> None:
    config = ScoreConfig(kv_weight=0.2, ttft_weight=0.2, itl_weight=0.6, itl_target_seconds=0.2)
    # kve 0.5; ttft 0.25 s is under its 0.5 s target -> 1; itl 0.4 s vs 0.2 s target -> 0.5
    expected = 0.2 * 0.5 + 0.2 * 1.0 + 0.6 * 0.5
    assert core(kve=0.5, ttft=0.25, itl=0.4).to_optimization_score(
        **config.score_kwargs()
    ) == pytest.approx(expected)
    with pytest.raises(ValidationError, match="frozen"):
        config.kv_weight = 0.3


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kv_weight": -0.2, "ttft_weight": 1.0}, "kv_weight", "greater than or equal to 0"),
        ({"itl_weight": 1.5}, "itl_weight", "less than or equal to 1"),
        ({"itl_weight": float("nan")}, "itl_weight", "finite"),
        ({"ttft_target_seconds": 0}, "ttft_target_seconds", "greater than 0"),
        ({"itl_target_seconds": float("inf")}, "itl_target_seconds", "finite"),
        ({"kv_wieght": 0.4}, "kv_wieght", "Extra inputs are not permitted"),
    ],
)
def test_score_config_errors_name_the_field(
    fields: dict[str, float], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ScoreConfig.model_validate(fields)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert message in errors[0]["msg"]


def test_score_config_weight_sum_rule_is_validate_weights_rule() -> None:
    with pytest.raises(ValidationError) as caught:
        ScoreConfig(kv_weight=0.5)  # 0.5 + 0.4 + 0.2 = 1.1
    with pytest.raises(ValueError) as plain:
        validate_weights(0.5, 0.4, 0.2)
    message = caught.value.errors()[0]["msg"]
    assert message == f"Value error, {plain.value}"
    assert "`kv_weight + ttft_weight + itl_weight == 1` must hold" in message
    assert "sum=1.1" in message
    # within the 1e-6 tolerance
    assert ScoreConfig(kv_weight=0.4 + 5e-7).kv_weight == pytest.approx(0.4000005)


class _Objective(ScoreConfig):
    """What a study's objective section adds to the score options (as study/schema.py)."""

    repeats: int = Field(default=1, ge=1, le=15)
    constraints: list[str] = Field(default_factory=list)
    directions: list[dict[Literal["maximize", "minimize"], str]] | None = None


def test_score_config_can_be_subclassed_with_more_fields() -> None:
    objective = _Objective.model_validate(
        {"kv_weight": 0.6, "ttft_weight": 0.2, "itl_weight": 0.2, "repeats": 3,
         "directions": [{"maximize": "kv_efficiency"}]}
    )  # fmt: skip
    assert objective.repeats == 3 and objective.directions == [{"maximize": "kv_efficiency"}]
    assert objective.score_kwargs() == {
        "kv_weight": 0.6,
        "ttft_weight": 0.2,
        "itl_weight": 0.2,
        "ttft_target_seconds": 0.5,
        "itl_target_seconds": 0.05,
    }
    for fields, loc in (
        ({"repeats": 0}, ("repeats",)),
        ({"ttft_weight": -1}, ("ttft_weight",)),
        ({"repeat": 2}, ("repeat",)),  # a typo is an error, not ignored
        ({"directions": [{"up": "score"}]}, ("directions", 0, "up", "[key]")),
    ):
        with pytest.raises(ValidationError) as caught:
            _Objective.model_validate(fields)
        assert [e["loc"] for e in caught.value.errors()] == [loc], fields
    with pytest.raises(ValidationError, match="kv_weight \\+ ttft_weight \\+ itl_weight == 1"):
        _Objective(kv_weight=0.1, repeats=2)


def test_kve_source_chain_order_and_recorded_source() -> None:
    latencies = {"ttft_p95": 0.1, "itl_p95": 0.01}
    sources = {
        "thompson": {"kve_cached_tokens_rate": 1.0, "kve_prompt_tokens_rate": 4.0},
        "frontend": {"frontend_cached_tokens_rate": 3.0, "frontend_input_tokens_rate": 4.0},
        "engine": {"kv_cache_hit_rate_engine": 0.6},
        "sglang": {"kv_cache_hit_rate_sglang": 0.9},
    }
    expected = {"thompson": 0.25, "frontend": 0.75, "engine": 0.6, "sglang": 0.9}
    order = ["thompson", "frontend", "engine", "sglang"]
    for i, name in enumerate(order):
        fields: dict[str, float] = dict(latencies)
        for later in order[i:]:
            fields.update(sources[later])
        result = DynamoMetricsResult.model_validate(fields)
        metrics = result.get_core_metrics()
        assert result.kv_efficiency_source == name
        assert metrics.kv_efficiency_source == name
        assert metrics.get_effective_kv_efficiency() == pytest.approx(expected[name])
        assert metrics.get_optimization_summary()["kv_efficiency_source"] == name
    sglang_only = DynamoMetricsResult(kv_cache_hit_rate_sglang=0.9).get_core_metrics()
    assert sglang_only.kv_efficiency is None and sglang_only.kv_efficiency_fallback == 0.9


def test_vllm_counters_serve_the_engine_source_and_zero_prompt_is_no_data() -> None:
    result = DynamoMetricsResult(
        frontend_cached_tokens_rate=0.0,
        frontend_input_tokens_rate=0.0,  # no prompt tokens: no data, not KVE 0
        vllm_prefix_cache_hits_rate=2.0,
        vllm_prefix_cache_queries_rate=8.0,
    )
    assert result.kv_efficiency_source == "engine"
    assert result.get_core_metrics().kv_efficiency == pytest.approx(0.25)
    genuine_zero = DynamoMetricsResult(
        frontend_cached_tokens_rate=0.0, frontend_input_tokens_rate=5
    )
    assert genuine_zero.get_core_metrics().kv_efficiency == 0.0
    assert DynamoMetricsResult().kv_efficiency_source is None
