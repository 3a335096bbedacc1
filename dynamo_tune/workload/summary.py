"""From per-request records and the measured window to a `WorkloadReport`. Pure.

The window (`window.py`) is `[start, end]`, both edges included. Each client number counts
the requests Dynamo's frontend counts in that window, and the frontend records each metric at
its own moment of a request (Dynamo 1.6.1, measured: docs/architecture.md, "The measured
window"; tests/test_workload_window_stack.py checks it on the real frontend):

- TTFT p50/p95/p99 and `window_requests`: successful requests whose first token lies inside
  (TTFT and the input-token histogram are recorded when the first token is sent);
- ITL, both definitions: successful requests that finished inside (the frontend observes all
  of a request's gaps at its end);
- KVE = sum(cached) / sum(prompt), over requests with `usage`: cached tokens of those that
  finished inside, prompt tokens of those whose first token lies inside (a request without a
  first token: its end). The frontend counts cached tokens at the end and input tokens at the
  first token, so at a mid-run edge the two sums count different requests, as on the server;
- e2e p50/p95 and output tokens: successful requests that finished inside (requests and output
  sequence tokens are recorded at the end); output tokens/s = output tokens / window length;
- sent, ok, failed, failures, scheduling lag and `failed` (failed / sent > max_failure_ratio,
  or nothing sent) describe every measured request, inside the window or not;
  `traffic_start` / `traffic_end`: first measured request sent -> last finished.

TTFT = first content chunk - sent; e2e = end - sent; ITL = every gap between consecutive
content chunks (the seed's definition); `client_request_itl_*` = per-request mean gap, then a
percentile across requests (AIPerf's definition), named apart. Over a full window every event
lies inside, so each number covers every request. Percentiles interpolate linearly between
order statistics (numpy's default).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from dynamo_tune.workload.record import RequestRecord
from dynamo_tune.workload.result import RequestOutcome, WorkloadReport
from dynamo_tune.workload.window import Window, full_window

FIRST_ERRORS = 5


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0..100) with linear interpolation; None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"`0 <= q <= 100` must hold, but got {q=}.")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def request_outcome(record: RequestRecord) -> RequestOutcome:
    """The compact per-request line of the report (TTFT and e2e from `record`'s times)."""
    return RequestOutcome(
        index=record.index,
        session=record.session,
        turn=record.turn,
        sent=record.sent,
        ttft_s=None if record.first_token is None else record.first_token - record.sent,
        e2e_s=None if record.end is None else record.end - record.sent,
        prompt_tokens=record.prompt_tokens,
        cached_tokens=record.cached_tokens,
        output_tokens=record.output_tokens,
        status=record.status,
        cause=record.cause,
        error=record.error,
    )


def _first_token_in(window: Window, r: RequestRecord) -> bool:
    return r.first_token is not None and window.holds(r.first_token)


def _finished_in(window: Window, r: RequestRecord) -> bool:
    return r.end is not None and window.holds(r.end)


def _prompt_counted_in(window: Window, r: RequestRecord) -> bool:
    moment = r.first_token if r.first_token is not None else r.end
    return moment is not None and window.holds(moment)


def workload_report(
    records: Sequence[RequestRecord],
    *,
    kve_ceiling: float | None,
    max_failure_ratio: float,
    fallback_window: tuple[float, float],
    window: Window | None = None,
    warmup_requests: int = 0,
    include_records: bool = True,
) -> WorkloadReport:
    """The report of `records` (measured requests only; warmup is not among them) over
    `window` (None: the full window, `fallback_window` when nothing was sent)."""
    sent = sorted(records, key=lambda r: (r.sent, r.index))
    ok = [r for r in sent if r.ok]
    failed = [r for r in sent if not r.ok]
    traffic = full_window(sent, fallback_window)
    if window is None:
        window = traffic
    started = [r for r in ok if _first_token_in(window, r)]
    finished = [r for r in ok if _finished_in(window, r)]
    ttft = [r.first_token - r.sent for r in started if r.first_token is not None]
    e2e = [r.end - r.sent for r in finished if r.end is not None]
    gaps: list[float] = []
    request_itl: list[float] = []
    for r in finished:
        g = _gaps(r.token_times)
        gaps.extend(g)
        if g:
            request_itl.append(sum(g) / len(g))
    with_usage = [r for r in ok if r.prompt_tokens is not None]
    prompt = sum(r.prompt_tokens or 0 for r in with_usage if _prompt_counted_in(window, r))
    cached_in = [r for r in with_usage if _finished_in(window, r)]
    cached = sum(r.cached_tokens or 0 for r in cached_in)
    knows_cache = any(r.cached_tokens is not None for r in cached_in)
    output = sum(r.output_tokens or 0 for r in finished)
    duration = window.end - window.start
    lags = [r.sent - r.due for r in sent]
    ratio = len(failed) / len(sent) if sent else 0.0
    errors = [f"{r.cause}: {r.error}" for r in failed[:FIRST_ERRORS]]
    if not sent:
        errors = ["no measured request was sent"]
    return WorkloadReport(
        window_start=window.start,
        window_end=window.end,
        window_mode=window.mode,
        window_note=window.note,
        window_requests=len(started),
        traffic_start=traffic.start,
        traffic_end=traffic.end,
        requests_sent=len(sent),
        requests_ok=len(ok),
        requests_failed=len(failed),
        failures=dict(Counter(r.cause for r in failed if r.cause is not None)),
        first_errors=errors,
        failed=not sent or ratio > max_failure_ratio,
        client_ttft_p50_seconds=percentile(ttft, 50),
        client_ttft_p95_seconds=percentile(ttft, 95),
        client_ttft_p99_seconds=percentile(ttft, 99),
        client_itl_p50_seconds=percentile(gaps, 50),
        client_itl_p95_seconds=percentile(gaps, 95),
        client_itl_p99_seconds=percentile(gaps, 99),
        client_e2e_p50_seconds=percentile(e2e, 50),
        client_e2e_p95_seconds=percentile(e2e, 95),
        prompt_tokens=prompt,
        cached_tokens=cached,
        client_kve=cached / prompt if prompt > 0 and knows_cache else None,
        kve_ceiling=kve_ceiling,
        output_tokens=output,
        output_tokens_per_s=output / duration if duration > 0 else None,
        client_request_itl_p50_seconds=percentile(request_itl, 50),
        client_request_itl_p95_seconds=percentile(request_itl, 95),
        scheduling_lag_p50_seconds=percentile(lags, 50),
        scheduling_lag_p99_seconds=percentile(lags, 99),
        warmup_requests=warmup_requests,
        records=[request_outcome(r) for r in sent] if include_records else [],
    )
