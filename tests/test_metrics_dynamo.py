"""Both backends on the real local Dynamo stack (frontend + KV router + mockers + Prometheus)."""

from __future__ import annotations

import pytest

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.metrics import PrometheusBackend, ScrapeBackend
from dynamo_tune.workload import AgenticWorkloadSpec, PrefixHints, make_workload

pytestmark = pytest.mark.integration

SPEC = AgenticWorkloadSpec.model_validate(
    {
        "kind": "agentic",
        "sessions": 5,
        "turns": 3,
        "concurrency": 5,
        "seed": 9,
        "system_prompt_tokens": 64,
        "session_context_tokens": 96,
        "appended_tokens": 32,
        "output_tokens": 8,
        "think_time_s": 0.02,
        "request_timeout_s": 30,
        "warmup": {"requests": 3},  # before the window: neither backend may count it
    }
)


async def test_window_metrics_match_the_client_on_real_dynamo(local_stack: LocalStack) -> None:
    endpoints = local_stack.endpoints()
    assert endpoints.prometheus_url is not None
    prometheus = PrometheusBackend(
        endpoints.prometheus_url, scrape_interval_s=endpoints.scrape_interval_s
    )
    scrape = ScrapeBackend(list(endpoints.metrics_urls), sample_interval_s=0.25)
    await prometheus.mark_start()
    await scrape.mark_start()
    workload = make_workload(SPEC, block_size=local_stack.spec.block_size)
    report = await workload.run(endpoints, PrefixHints(dialect="dynamo"))
    start, end = report.window_start, report.window_end
    by_scrape = await scrape.collect(start, end)
    by_prometheus = await prometheus.collect(start, end)

    assert report.requests_failed == 0 and report.requests_ok == 15
    for result in (by_prometheus, by_scrape):
        assert result.errors == []
        core = result.get_core_metrics()
        assert core.kv_efficiency_source == "frontend"
        # token-weighted KVE of the window == the clients' sum(cached) / sum(prompt)
        assert core.kv_efficiency == pytest.approx(report.client_kve, abs=1e-9)
        assert result.requests_per_minute is not None
        assert result.requests_per_minute * (end - start) / 60 == pytest.approx(15)
        assert core.is_complete() and core.to_optimization_score() is not None
    assert by_scrape.get_core_metrics() == by_prometheus.get_core_metrics()
