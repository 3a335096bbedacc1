"""Pure parts of the collector: quantiles, windows, registry, config, PromQL, parsing."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from dynamo_tune.metrics import (
    METRIC_QUERIES,
    METRIC_REGISTRY,
    DynamoMetricsConfig,
    DynamoMetricsResult,
    MetricSpec,
    histogram_quantile,
    parse_duration,
    window_delta_query,
)
from dynamo_tune.metrics._durations import format_duration
from dynamo_tune.metrics._edges import end_edge, first_scrapes_after, pending, scrape_interval
from dynamo_tune.metrics._histogram import cumulative_from_observations
from dynamo_tune.metrics._prom_parse import TargetState, parse_targets, parse_timestamp
from dynamo_tune.metrics._promql import window_gauge_query
from dynamo_tune.metrics._queries import METRIC_SPECS
from dynamo_tune.metrics._series import counter_deltas, decreasing, labels_of
from dynamo_tune.metrics._snapshots import (
    first_after,
    last_at_or_before,
    over_time,
    window_from_snapshots,
)
from dynamo_tune.metrics._window import WindowData, evaluate_window

INF = math.inf
SEED_KEYS = [
    "ttft_p50",
    "ttft_p95",
    "ttft_p99",
    "itl_p50",
    "itl_p95",
    "itl_p99",
    "kve_cached_tokens_rate",
    "kve_prompt_tokens_rate",
    "kve_device_blocks_rate",
    "kve_host_blocks_rate",
    "kve_disk_blocks_rate",
    "kv_cache_usage_percent",
    "kv_cache_hit_rate_sglang",
    "kv_cache_hit_rate_dynamo",
    "inflight_requests_frontend",
    "inflight_requests_worker",
    "queued_requests",
    "requests_per_minute",
    "token_throughput",
    "sglang_running_requests",
    "sglang_queue_depth",
    "sglang_gen_throughput",
    "sglang_utilization",
    "thompson_routing_decisions_rate",
    "thompson_requests_rate",
]


# --- histogram_quantile (Prometheus semantics) ------------------------------------------


def test_quantile_interpolates_linearly_inside_the_bucket() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (INF, 30.0)]
    # rank 0.5*30 = 15 -> bucket (0.1, 0.2], 5 of its 20 -> 0.1 + 0.1 * 5/20
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.125)


def test_quantile_lowest_bucket_starts_at_zero_and_le_zero_returns_zero() -> None:
    assert histogram_quantile(0.5, [(0.4, 10.0), (INF, 10.0)]) == pytest.approx(0.2)
    assert histogram_quantile(0.5, [(0.0, 10.0), (1.0, 10.0), (INF, 10.0)]) == 0.0


def test_quantile_in_inf_bucket_returns_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, [(0.1, 1.0), (0.5, 2.0), (INF, 10.0)]) == 0.5


def test_quantile_without_data_is_nan_and_q_out_of_range_is_infinite() -> None:
    assert math.isnan(histogram_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]))
    assert math.isnan(histogram_quantile(0.5, [(0.1, 3.0), (1.0, 3.0)]))  # no +Inf
    assert math.isnan(histogram_quantile(0.5, [(INF, 3.0)]))  # a single bucket
    assert histogram_quantile(-0.1, [(0.1, 1.0), (INF, 1.0)]) == -INF
    assert histogram_quantile(1.1, [(0.1, 1.0), (INF, 1.0)]) == INF


def test_quantile_sorts_merges_and_fixes_non_monotonic_buckets() -> None:
    shuffled = [(INF, 4.0), (0.2, 4.0), (0.1, 2.0), (0.2, 0.0)]
    assert histogram_quantile(0.75, shuffled) == pytest.approx(0.15)
    # A dip (0.2 -> 1) is raised to the running maximum, like Prometheus's ensureMonotonic.
    assert histogram_quantile(0.5, [(0.1, 2.0), (0.2, 1.0), (INF, 4.0)]) == pytest.approx(0.1)


def test_observations_to_buckets_use_le_semantics() -> None:
    assert cumulative_from_observations([0.1, 0.2], [0.1, 0.15, 0.3]) == [
        (0.1, 1.0),
        (0.2, 2.0),
        (INF, 3.0),
    ]


# --- window evaluation (shared by both backends) ----------------------------------------


def _bucket_vector(
    worker: str, counts: dict[str, float]
) -> dict[frozenset[tuple[str, str]], float]:
    return {labels_of({"worker": worker, "le": le}): c for le, c in counts.items()}


def test_window_sums_series_by_le_and_counters_across_series() -> None:
    ttft = METRIC_SPECS["ttft_p50"]
    rpm = METRIC_SPECS["requests_per_minute"]
    deltas = {
        ttft.series: {
            **_bucket_vector("a", {"0.1": 4, "1": 4, "+Inf": 4}),
            **_bucket_vector("b", {"0.1": 0, "1": 4, "+Inf": 4}),
        },
        rpm.series: {labels_of({"worker": "a"}): 3.0, labels_of({"worker": "b"}): 5.0},
    }
    values, errors = evaluate_window([ttft, rpm], WindowData(deltas=deltas), duration_s=4.0)
    assert errors == []
    assert values["ttft_p50"] == pytest.approx(0.1)  # rank 4 of 8: top of the first bucket
    assert values["requests_per_minute"] == pytest.approx(8 / 4.0 * 60)


def test_window_reports_a_reset_once_and_withholds_the_metric() -> None:
    spec = METRIC_SPECS["ttft_p95"]
    vector = _bucket_vector("a", {"0.1": -3, "1": -2, "+Inf": -2})
    values, errors = evaluate_window(
        [spec, METRIC_SPECS["ttft_p50"]], WindowData(deltas={spec.series: vector}), 1.0
    )
    assert values == {"ttft_p95": None, "ttft_p50": None}
    assert len(errors) == 1 and "counter reset inside the window in 3 series" in errors[0]


def test_window_gauges_combine_and_genuine_zero_is_a_value() -> None:
    inflight = METRIC_SPECS["inflight_requests_frontend"]  # sum of per-series max
    usage = METRIC_SPECS["kv_cache_usage_percent"]  # avg across series
    gauges = {
        inflight.key: {labels_of({"w": "a"}): 0.0, labels_of({"w": "b"}): 0.0},
        usage.key: {labels_of({"w": "a"}): 20.0, labels_of({"w": "b"}): 40.0},
    }
    values, _ = evaluate_window([inflight, usage], WindowData(gauges=gauges), 1.0)
    assert values == {"inflight_requests_frontend": 0.0, "kv_cache_usage_percent": 30.0}


def test_window_without_traffic_gives_none_not_zero_for_quantiles() -> None:
    spec = METRIC_SPECS["itl_p95"]
    vector = _bucket_vector("a", {"0.1": 0, "+Inf": 0})
    values, errors = evaluate_window([spec], WindowData(deltas={spec.series: vector}), 1.0)
    assert values == {"itl_p95": None} and errors == []
    with pytest.raises(ValueError, match="duration_s > 0"):
        evaluate_window([spec], WindowData(), 0.0)


def test_snapshots_give_deltas_resets_and_gauge_stats() -> None:
    rpm, inflight = METRIC_SPECS["requests_per_minute"], METRIC_SPECS["inflight_requests_frontend"]
    a, b = labels_of({"w": "a"}), labels_of({"w": "b"})
    samples = [
        {rpm.series: {a: 10.0}, inflight.series: {a: 1.0}},
        {rpm.series: {a: 2.0, b: 1.0}, inflight.series: {a: 4.0}},  # a reset; b is new
        {rpm.series: {a: 12.0, b: 3.0}, inflight.series: {a: 2.0}},
    ]
    data = window_from_snapshots([rpm, inflight], samples)
    assert data.deltas[rpm.series] == {a: 2.0, b: 3.0}
    assert data.resets[rpm.series] == {a}
    assert data.gauges[inflight.key] == {a: 4.0}
    assert over_time([{a: 1.0}, {a: 3.0}], "avg") == {a: 2.0}
    assert counter_deltas({a: 1.0}, {a: 4.0, b: 2.0}) == {a: 3.0, b: 2.0}
    assert decreasing([{a: 3.0}, {}, {a: 5.0}]) == set()
    assert [last_at_or_before([1.0, 2.0, 3.0], t) for t in (0.5, 2.0, 2.5, 9.0)] == [0, 1, 1, 2]
    assert [first_after([1.0, 2.0, 3.0], t) for t in (0.5, 2.0, 2.5, 9.0)] == [0, 2, 2, 2]


# --- registry and result fields ---------------------------------------------------------


def test_registry_has_the_seed_keys_and_every_key_is_a_result_field() -> None:
    assert set(SEED_KEYS) <= set(METRIC_QUERIES)
    assert set(METRIC_QUERIES) <= set(DynamoMetricsResult.model_fields)
    for spec in METRIC_REGISTRY:
        assert ("{range}" in METRIC_QUERIES[spec.key]) == (spec.kind != "gauge"), spec.key
    assert METRIC_QUERIES["ttft_p95"] == (
        "histogram_quantile(0.95, sum by (le) "
        "(rate(dynamo_frontend_time_to_first_token_seconds_bucket[{range}])))"
    )
    assert METRIC_QUERIES["requests_per_minute"].endswith(" * 60")
    assert len({spec.key for spec in METRIC_REGISTRY}) == len(METRIC_REGISTRY)


def test_metric_spec_rejects_inconsistent_entries() -> None:
    with pytest.raises(ValueError, match="quantile"):
        MetricSpec("x", "gauge", "m", "context", quantile=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MetricSpec("x", "quantile", "m", "ttft", quantile=1.5)


def test_promql_builders_use_at_differences_not_rate() -> None:
    query = window_delta_query("x_bucket", 100.0, 130.5, 1.0)
    assert query.startswith("(x_bucket @ 130.500 - (x_bucket @ 100.000 or x_bucket @ 130.500 * 0))")
    assert "resets(x_bucket[31500ms] @ 130.500)" in query
    assert "rate(" not in query and "increase(" not in query
    gauge = window_gauge_query(METRIC_SPECS["queued_requests"], 100.0, 110.0)
    assert gauge == "max_over_time(dynamo_frontend_queued_requests[10000ms] @ 110.000)"


# --- config, durations ------------------------------------------------------------------


def test_config_validates_and_names_the_field() -> None:
    with pytest.raises(ValidationError, match="prometheus_url"):
        DynamoMetricsConfig(prometheus_url="localhost:9090")
    with pytest.raises(ValidationError, match="query_range"):
        DynamoMetricsConfig(query_range="30 seconds")
    with pytest.raises(ValidationError, match="lookback_seconds"):
        DynamoMetricsConfig(lookback_seconds=-1)
    with pytest.raises(ValidationError, match="workflow_start_timestamp < workflow_end"):
        DynamoMetricsConfig(workflow_start_timestamp=20.0, workflow_end_timestamp=10.0)
    with pytest.raises(ValidationError, match="extra"):
        DynamoMetricsConfig(prometheus_ulr="http://x")  # type: ignore[call-arg]
    config = DynamoMetricsConfig(prometheus_url="http://127.0.0.1:9090/", query_range="1m30s")
    assert config.prometheus_url == "http://127.0.0.1:9090" and not config.has_window


def test_core_metrics_only_keeps_the_core_groups() -> None:
    keys = DynamoMetricsConfig.core_metrics_only().enabled_keys()
    assert {"ttft_p95", "itl_p95", "frontend_cached_tokens_rate"} <= set(keys)
    assert "requests_per_minute" not in keys and "queued_requests" not in keys


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25
    for bad in ("", "5", "5x", "0s", "-1m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_duration(1.2345) == "1234ms" and format_duration(0) == "1ms"


# --- scrape edges and API parsing -------------------------------------------------------


def test_first_scrape_after_end_pins_t1() -> None:
    a, b = labels_of({"instance": "a"}), labels_of({"instance": "b"})
    up = [(a, [(9.5, 1.0), (10.4, 1.0), (11.4, 1.0)]), (b, [(10.9, 1.0), (11.9, 1.0)])]
    first = first_scrapes_after(up, end=10.0)
    assert first == {a: 10.4, b: 10.9}
    assert end_edge(first, expected=2) == pytest.approx(10.901)
    assert end_edge(first, expected=3) is None


def test_targets_parse_with_nanosecond_times() -> None:
    data = {
        "activeTargets": [
            {
                "labels": {"instance": "127.0.0.1:1"},
                "health": "up",
                "lastScrape": "2026-11-27T21:00:00.123456789Z",
                "scrapeInterval": "1s",
            },
            {"labels": {"instance": "127.0.0.1:2"}, "lastScrape": "0001-01-01T00:00:00Z"},
        ]
    }
    first, second = parse_targets(data)
    # 2026-11-27 is 56*365 + 14 leap days + 304 (Jan-Oct 2026) + 26 = 20784 days after 1970-01-01
    days = 56 * 365 + 14 + 304 + 26
    assert first.last_scrape == pytest.approx(days * 86400 + 21 * 3600 + 0.123456789, abs=1e-6)
    assert parse_timestamp("1970-01-02T00:00:01.5Z") == pytest.approx(86401.5)
    assert first.interval_s == 1.0 and second.last_scrape is None
    assert pending([first, second], end=first.last_scrape - 1) == ["127.0.0.1:2"]
    assert scrape_interval([first, second], None) == 1.0
    assert scrape_interval([], 2.0) == 2.0
    assert scrape_interval([TargetState("x", "up", None, None)], None) == 15.0


EXPOSITION = """# HELP dynamo_frontend_time_to_first_token_seconds TTFT
# TYPE dynamo_frontend_time_to_first_token_seconds histogram
dynamo_frontend_time_to_first_token_seconds_bucket{model="tiny",le="0.1"} 3
dynamo_frontend_time_to_first_token_seconds_bucket{model="tiny",le="+Inf"} 4
dynamo_frontend_time_to_first_token_seconds_sum{model="tiny"} 0.5
dynamo_frontend_time_to_first_token_seconds_count{model="tiny"} 4
# TYPE dynamo_frontend_requests_total counter
dynamo_frontend_requests_total{model="tiny",status="success"} 4
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0"} 0
"""


def test_exposition_parse_keeps_wanted_samples_with_an_instance_label() -> None:
    from dynamo_tune.metrics._exposition import parse_exposition

    wanted = {"dynamo_frontend_time_to_first_token_seconds_bucket", "vllm:num_requests_running"}
    snapshot = parse_exposition(EXPOSITION, "http://w0/metrics", wanted)
    assert set(snapshot) == wanted
    buckets = snapshot["dynamo_frontend_time_to_first_token_seconds_bucket"]
    inf = labels_of({"model": "tiny", "le": "+Inf", "instance": "http://w0/metrics"})
    assert buckets[inf] == 4.0 and len(buckets) == 2
    everything = parse_exposition(EXPOSITION, "i")
    assert everything["dynamo_frontend_requests_total"] == {
        labels_of({"model": "tiny", "status": "success", "instance": "i"}): 4.0
    }
    assert "dynamo_frontend_time_to_first_token_seconds_count" in everything


def test_range_mode_takes_the_latest_sample_and_combines_series_by_kind() -> None:
    from dynamo_tune.metrics._rangemode import fallback_span, instant_value, latest_value

    a, b = labels_of({"w": "a"}), labels_of({"w": "b"})
    matrix = [(a, [(10.0, 1.0), (20.0, 2.0)]), (b, [(10.0, 5.0), (20.0, 3.0), (30.0, math.nan)])]
    assert latest_value(METRIC_SPECS["token_throughput"], matrix) == 5.0  # sum at t=20
    assert latest_value(METRIC_SPECS["ttft_p95"], matrix) == 3.0  # max at t=20
    assert latest_value(METRIC_SPECS["ttft_p95"], [(a, [(1.0, math.nan)])]) is None
    assert instant_value(METRIC_SPECS["kv_cache_hit_rate_sglang"], {a: 0.2, b: 0.4}) == (
        pytest.approx(0.3)
    )
    assert instant_value(METRIC_SPECS["queued_requests"], {a: 0.0}) == 0.0
    assert fallback_span(1000.0, 0.0, None) == (400.0, 1000.0)
    assert fallback_span(1000.0, 30.0, None) == (970.0, 1000.0)
    assert fallback_span(1000.0, 30.0, 900.0) == (900.0, 1000.0)


def test_router_kv_events_rate_counts_only_events_applied_ok() -> None:
    spec = METRIC_SPECS["router_kv_events_rate"]
    ok = (("event_type", "stored"), ("status", "ok"))
    failed = (("event_type", "stored"), ("status", "block_not_found"))
    removed_ok = (("event_type", "removed"), ("status", "ok"))
    vector = {ok: 20.0, failed: 6.0, removed_ok: 4.0}
    values, _ = evaluate_window([spec], WindowData(deltas={spec.series: vector}), 2.0)
    assert values == {"router_kv_events_rate": (20.0 + 4.0) / 2.0}
    only_failed = {failed: 6.0}  # the family is there, no event was applied ok: 0, not missing
    values, _ = evaluate_window([spec], WindowData(deltas={spec.series: only_failed}), 2.0)
    assert values == {"router_kv_events_rate": 0.0}
    values, _ = evaluate_window([spec], WindowData(), 2.0)
    assert values == {"router_kv_events_rate": None}


def test_a_label_match_is_refused_on_a_gauge() -> None:
    with pytest.raises(ValueError, match="counters and quantiles only"):
        MetricSpec("g", "gauge", "some_gauge", "kv_cache", match=(("status", "ok"),))


def test_the_seed_query_of_a_matched_counter_carries_the_matcher() -> None:
    query = METRIC_QUERIES["router_kv_events_rate"]
    assert query == 'sum(rate(dynamo_component_kv_cache_events_applied{status="ok"}[{range}]))'
