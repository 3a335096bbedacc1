"""Per-request results of a virtual-time replay and the core metrics over the measured window.
Pure.

`run_trace_replay(capture_per_request=True)` returns one record per request (times in
milliseconds of simulated time): `request_id` (the trace id, `trace_writer.trace_request_id`),
`arrival_time_ms`, `first_token_ms`, `terminal_time_ms`, `ttft_ms`, `itl_ms` (that request's
mean inter-token gap), `input_length`, `output_length`, `reused_input_tokens` (prompt tokens
found in the worker's prefix cache), `terminal_status`. `parse_requests` turns them into
`ReplayedRequest`s (seconds) in plan order.

The screen measures what a live trial measures: `window_report` turns the replayed requests
into the runner's own `RequestRecord`s (sent = arrival, first token, end; the output tokens
spread evenly between the first and the last token, since the replay reports each request's
mean gap only) and applies the live run's rules to them: the study's `workload.window`
(`workload/window.py`: the same steady window on the replay's clock) and the workload
summary's per-metric counting (`workload/summary.py`). `core_of(report)` gives the
`DynamoCoreMetrics` the study's score takes: KVE = Σ reused / Σ prompt tokens, TTFT and ITL
percentiles (s), all over that window. `kv_efficiency_source` stays None: the replay is none
of the live KVE sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynamo_tune.metrics import DynamoCoreMetrics
from dynamo_tune.workload.record import RequestRecord
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.summary import workload_report
from dynamo_tune.workload.window import WindowSpec, choose_window

MS = 1e-3  # seconds per millisecond


@dataclass(frozen=True)
class ReplayedRequest:
    """One replayed request, matched back to its plan index. Times in simulated seconds."""

    index: int
    completed: bool
    input_tokens: int
    reused_tokens: int
    output_tokens: int
    ttft_s: float | None
    itl_s: float | None  # mean inter-token gap; None with fewer than two output tokens
    sent_s: float = 0.0  # arrival at the router
    first_token_s: float | None = None
    end_s: float | None = None
    session: str = ""


def _seconds(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    return None if value is None else float(value) * MS


def parse_requests(
    records: Iterable[Mapping[str, Any]], index_of: Mapping[str, int]
) -> tuple[ReplayedRequest, ...]:
    """The replay's per-request records as `ReplayedRequest`s in plan order.

    `index_of` maps trace request id -> plan index (`ReplayTrace.index_of()`); a record of an
    unknown id is a ValueError naming it.
    """
    out: list[ReplayedRequest] = []
    for record in records:
        request_id = str(record.get("request_id"))
        if request_id not in index_of:
            raise ValueError(f"replay returned an unknown request id {request_id!r}.")
        output = int(record.get("output_length") or 0)
        out.append(
            ReplayedRequest(
                index=index_of[request_id],
                completed=record.get("terminal_status") == "completed",
                input_tokens=int(record.get("input_length") or 0),
                reused_tokens=int(record.get("reused_input_tokens") or 0),
                output_tokens=output,
                ttft_s=_seconds(record, "ttft_ms"),
                itl_s=_seconds(record, "itl_ms") if output > 1 else None,
                sent_s=_seconds(record, "arrival_time_ms") or 0.0,
                first_token_s=_seconds(record, "first_token_ms"),
                end_s=_seconds(record, "terminal_time_ms"),
                session=str(record.get("session_id") or ""),
            )
        )
    return tuple(sorted(out, key=lambda r: r.index))


def request_record(r: ReplayedRequest) -> RequestRecord:
    """`r` as the runner would have recorded it (a request not completed: failed)."""
    record = RequestRecord(index=r.index, session=r.session, turn=0, due=r.sent_s, sent=r.sent_s)
    if not r.completed or r.first_token_s is None:
        record.end = r.end_s
        record.fail("disconnect", "the replay did not complete this request")
        return record
    record.first_token = r.first_token_s
    gap = r.itl_s or 0.0
    record.token_times = [r.first_token_s + k * gap for k in range(max(r.output_tokens, 1))]
    record.end = r.end_s if r.end_s is not None else record.token_times[-1]
    record.status = 200
    record.prompt_tokens = r.input_tokens
    record.cached_tokens = r.reused_tokens
    record.output_tokens = r.output_tokens
    return record


def window_report(
    requests: Sequence[ReplayedRequest],
    window: WindowSpec,
    *,
    closed_loop: bool,
    max_failure_ratio: float = 1.0,
) -> WorkloadReport:
    """The workload report of a replay over the study's measured window (see the module);
    `closed_loop` as for the live run (no root request has an arrival time)."""
    records = [request_record(r) for r in requests]
    chosen = choose_window(records, window, closed_loop=closed_loop, fallback=(0.0, 0.0))
    return workload_report(
        records,
        kve_ceiling=None,
        max_failure_ratio=max_failure_ratio,
        fallback_window=(0.0, 0.0),
        window=chosen,
        include_records=False,
    )


def core_of(report: WorkloadReport) -> DynamoCoreMetrics:
    """The core metrics of a replay's window report (its client-side numbers)."""
    return DynamoCoreMetrics(
        kv_efficiency=report.client_kve,
        ttft_p50_seconds=report.client_ttft_p50_seconds,
        ttft_p95_seconds=report.client_ttft_p95_seconds,
        ttft_p99_seconds=report.client_ttft_p99_seconds,
        itl_p50_seconds=report.client_itl_p50_seconds,
        itl_p95_seconds=report.client_itl_p95_seconds,
        itl_p99_seconds=report.client_itl_p99_seconds,
    )
