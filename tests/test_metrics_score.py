"""The optimization score and the KVE source chain (design.md §2)."""

from __future__ import annotations

import pytest

from dynamo_tune.metrics import DynamoCoreMetrics, DynamoMetricsResult, optimization_score


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


def test_pure_score_equals_the_method() -> None:
    metrics = core(kve=0.3, ttft=0.9, itl=0.07)
    options = {"kv_weight": 0.5, "ttft_weight": 0.3, "itl_weight": 0.2}
    assert metrics.to_optimization_score(**options) == optimization_score(0.3, 0.9, 0.07, **options)


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
