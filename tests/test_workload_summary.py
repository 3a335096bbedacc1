"""From records to the report: window, percentiles, KVE, failure ratio."""

from __future__ import annotations

import pytest

from dynamo_tune.workload.record import RequestRecord, cause_for_status
from dynamo_tune.workload.summary import percentile, workload_report


def ok(index: int, sent: float, tokens: list[float], prompt: int, cached: int) -> RequestRecord:
    return RequestRecord(
        index=index,
        session=f"s{index}",
        turn=0,
        due=sent,
        sent=sent,
        first_token=tokens[0],
        end=tokens[-1] + 0.01,
        token_times=tokens,
        status=200,
        prompt_tokens=prompt,
        cached_tokens=cached,
        output_tokens=len(tokens),
    )


def test_percentile_interpolates_linearly() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([4.0, 1.0, 3.0, 2.0], 95) == pytest.approx(3.85)
    with pytest.raises(ValueError, match="q"):
        percentile([1.0], 101)


def test_report_from_hand_made_records() -> None:
    a = ok(0, 100.0, [100.2, 100.3, 100.5], prompt=100, cached=0)
    b = ok(1, 100.1, [100.2, 100.25], prompt=300, cached=200)
    bad = RequestRecord(index=2, session="s2", turn=0, due=100.5, sent=100.5, end=101.0)
    bad.fail(cause_for_status(529), "HTTP 529: busy")
    report = workload_report(
        [b, bad, a], kve_ceiling=0.6, max_failure_ratio=0.5, fallback_window=(0.0, 0.0)
    )
    assert (report.window_start, report.window_end) == (100.0, 101.0)
    assert (report.requests_sent, report.requests_ok, report.requests_failed) == (3, 2, 1)
    assert report.failures == {"busy_529": 1}
    assert report.first_errors == ["busy_529: HTTP 529: busy"]
    assert report.failed is False
    assert report.client_ttft_p50_seconds == pytest.approx((0.2 + 0.1) / 2)
    # gaps: a -> 0.1, 0.2; b -> 0.05
    assert report.client_itl_p50_seconds == pytest.approx(0.1)
    assert report.client_request_itl_p50_seconds == pytest.approx((0.15 + 0.05) / 2)
    assert report.client_kve == pytest.approx(200 / 400)
    assert report.kve_ceiling == 0.6
    assert report.output_tokens == 5
    assert report.output_tokens_per_s == pytest.approx(5 / 1.0)
    assert [r.index for r in report.records] == [0, 1, 2]
    assert report.records[2].cause == "busy_529"


def test_failure_ratio_above_threshold_fails_the_run() -> None:
    bad = RequestRecord(index=0, session="s", turn=0, due=1.0, sent=1.0, end=2.0)
    bad.fail("timeout", "slow")
    bad.fail("disconnect", "later failure does not overwrite")
    report = workload_report([bad], kve_ceiling=None, max_failure_ratio=0.5, fallback_window=(0, 0))
    assert report.failed and report.failures == {"timeout": 1}
    assert report.client_kve is None and report.client_ttft_p95_seconds is None


def test_nothing_sent_is_a_failed_run() -> None:
    report = workload_report(
        [], kve_ceiling=None, max_failure_ratio=1.0, fallback_window=(5.0, 6.0)
    )
    assert report.failed
    assert (report.window_start, report.window_end) == (5.0, 6.0)


@pytest.mark.parametrize(
    ("status", "cause"),
    [(400, "http_4xx"), (404, "http_4xx"), (500, "http_5xx"), (529, "busy_529")],
)
def test_status_causes(status: int, cause: str) -> None:
    assert cause_for_status(status) == cause
