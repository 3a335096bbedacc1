"""The measured window: the steady rule and what each client number counts inside it.

Six hand-made requests (times in seconds; the first and last token are the only chunks):

    req  sent  first  last  end   prompt  cached
    r0   0.0   1.0    1.5   1.6   100     0
    r1   0.0   1.2    1.8   1.9   100     50
    r2   1.6   4.0    4.4   4.5   200     100
    r3   1.9   4.2    6.0   6.1   200     150
    r4   4.5   7.5    7.7   7.8   300     250
    r5   6.1   9.0    9.2   9.3   300     270

Two in flight from 0.0 to 7.8 (each send fills the slot a finish freed), then one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import write_study
from pydantic import ValidationError

from dynamo_tune.errors import SpecError
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.workload import AgenticWorkloadSpec
from dynamo_tune.workload.record import RequestRecord
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.summary import workload_report
from dynamo_tune.workload.window import Window, WindowSpec, choose_window, peak_load_end

ROWS = [
    (0.0, 1.0, 1.5, 1.6, 100, 0),
    (0.0, 1.2, 1.8, 1.9, 100, 50),
    (1.6, 4.0, 4.4, 4.5, 200, 100),
    (1.9, 4.2, 6.0, 6.1, 200, 150),
    (4.5, 7.5, 7.7, 7.8, 300, 250),
    (6.1, 9.0, 9.2, 9.3, 300, 270),
]
STEADY = WindowSpec(mode="steady", warmup_share=1 / 3)


def requests() -> list[RequestRecord]:
    return [
        RequestRecord(
            index=i,
            session=f"s{i}",
            turn=0,
            due=sent,
            sent=sent,
            first_token=first,
            end=end,
            token_times=[first, last],
            status=200,
            prompt_tokens=prompt,
            cached_tokens=cached,
            output_tokens=2,
        )
        for i, (sent, first, last, end, prompt, cached) in enumerate(ROWS)
    ]


def late(sent: float) -> RequestRecord:
    """r6: one more turn sent at `sent`, after every other request finished."""
    return RequestRecord(
        index=6,
        session="s6",
        turn=1,
        due=sent,
        sent=sent,
        first_token=sent + 0.4,
        end=sent + 0.7,
        token_times=[sent + 0.4, sent + 0.6],
        status=200,
        prompt_tokens=400,
        cached_tokens=300,
        output_tokens=2,
    )


def test_full_window_is_first_sent_to_last_finished() -> None:
    window = choose_window(requests(), WindowSpec(), closed_loop=True, fallback=(0.0, 0.0))
    assert (window.start, window.end, window.mode, window.note) == (0.0, 9.3, "full", None)


def test_steady_edges_open_after_the_warmup_share_and_close_at_the_last_send() -> None:
    # ceil(6 / 3) = 2 requests finished first: r0 at 1.6, r1 at 1.9. The last send, 6.1,
    # still had two in flight, the run's peak.
    for closed_loop in (True, False):
        window = choose_window(requests(), STEADY, closed_loop=closed_loop, fallback=(0.0, 0.0))
        assert (window.start, window.end, window.mode, window.note) == (1.9, 6.1, "steady", None)


def test_a_closed_loop_closes_at_the_last_send_at_peak_load() -> None:
    # r6 goes at 9.4 with nothing else in flight: the drain began after the send at 6.1.
    # ceil(7 / 4) = 2 requests finished first: 1.6, 1.9.
    records = [*requests(), late(9.4)]
    spec = WindowSpec(mode="steady", warmup_share=0.25)
    assert peak_load_end(records) == 6.1
    closed = choose_window(records, spec, closed_loop=True, fallback=(0.0, 0.0))
    assert (closed.start, closed.end) == (1.9, 6.1)
    # An open loop's arrivals keep coming until the last one: it closes at 9.4.
    opened = choose_window(records, spec, closed_loop=False, fallback=(0.0, 0.0))
    assert (opened.start, opened.end) == (1.9, 9.4)


def test_it_opens_only_once_the_start_up_burst_has_its_first_tokens() -> None:
    # With no warmup share it could open at the first send (0.0), but r0 and r1 went before
    # anything finished (1.6): it opens at the later of their first tokens, 1.2.
    spec = WindowSpec(mode="steady", warmup_share=0.0)
    window = choose_window(requests(), spec, closed_loop=True, fallback=(0.0, 0.0))
    assert (window.start, window.end) == (1.2, 6.1)


def test_an_empty_steady_window_falls_back_to_the_full_run() -> None:
    # One request: it must finish (1.6) before the window opens, after the last send (0.0).
    (first,) = requests()[:1]
    spec = WindowSpec(mode="steady", warmup_share=0.5)
    window = choose_window([first], spec, closed_loop=True, fallback=(0.0, 0.0))
    assert (window.start, window.end, window.mode) == (0.0, 1.6, "full")
    assert window.note is not None and "full run" in window.note


def test_nothing_sent_gives_the_fallback_window() -> None:
    window = choose_window([], STEADY, closed_loop=True, fallback=(5.0, 6.0))
    assert (window.start, window.end, window.mode) == (5.0, 6.0, "full")


def _steady_report(start: float, end: float) -> WorkloadReport:
    """The report of `requests()` over the steady window [start, end]."""
    return workload_report(
        requests(),
        kve_ceiling=None,
        max_failure_ratio=0.5,
        fallback_window=(0.0, 0.0),
        window=Window(start, end, "steady"),
    )


def test_each_client_number_counts_what_the_frontend_counts_in_the_window() -> None:
    report = _steady_report(2.9, 6.1)
    assert (report.window_start, report.window_end, report.window_mode) == (2.9, 6.1, "steady")
    assert (report.traffic_start, report.traffic_end, report.last_traffic) == (0.0, 9.3, 9.3)
    # First token inside: r2 (TTFT 2.4), r3 (TTFT 2.3).
    assert report.window_requests == 2
    assert report.client_ttft_p50_seconds == pytest.approx(2.35)
    assert report.client_ttft_p95_seconds == pytest.approx(2.3 + 0.1 * 0.95)
    # Finished inside: r2 (4.5), r3 (6.1, the edge counts): gaps 0.4 and 1.8, e2e 2.9 and 4.2.
    assert report.client_itl_p50_seconds == pytest.approx(1.1)
    assert report.client_e2e_p50_seconds == pytest.approx(3.55)
    # Cached of r2 + r3 (finished inside) over the prompts of r2 + r3 (first token inside).
    assert (report.cached_tokens, report.prompt_tokens) == (250, 400)
    assert report.client_kve == pytest.approx(0.625)
    assert report.output_tokens == 4
    assert report.output_tokens_per_s == pytest.approx(4 / 3.2)
    # Sent, ok and failed describe every measured request.
    assert (report.requests_sent, report.requests_ok, len(report.records)) == (6, 6, 6)


def test_at_a_mid_run_edge_cached_and_prompt_tokens_count_different_requests() -> None:
    report = _steady_report(1.9, 6.1)
    # r1 finishes at 1.9 (its cached 50 counts) but had its first token at 1.2 (its prompt
    # does not): 50 + 100 + 150 over 200 + 200.
    assert (report.cached_tokens, report.prompt_tokens) == (300, 400)
    assert report.client_kve == pytest.approx(0.75)
    assert report.window_requests == 2


def test_a_full_window_counts_every_request() -> None:
    report = workload_report(
        requests(), kve_ceiling=None, max_failure_ratio=0.5, fallback_window=(0.0, 0.0)
    )
    assert (report.window_start, report.window_end, report.window_mode) == (0.0, 9.3, "full")
    assert report.window_requests == 6
    assert (report.cached_tokens, report.prompt_tokens) == (820, 1200)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"mode": "steady-state"}, "'full' or 'steady'"),
        ({"mode": "steady", "warmup_share": 1.0}, "less than 1"),
        ({"mode": "steady", "warmup_share": -0.1}, "greater than or equal to 0"),
        ({"mode": "steady", "warmup": 0.2}, "Extra inputs are not permitted"),
        ({"warmup_share": 0.3}, "warmup_share only applies to mode 'steady', but got mode 'full'"),
        ({"mode": "full", "warmup_share": 0.0}, "and warmup_share=0.0"),
    ],
)
def test_bad_window_settings_say_what_is_wrong(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AgenticWorkloadSpec.model_validate({"window": doc})


def test_a_study_file_names_the_bad_window_field(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"workload.window": {"mode": "steady", "warmup_share": 2}})
    with pytest.raises(SpecError, match=r"workload\.window\.warmup_share"):
        load_spec(path)


def test_window_settings_survive_the_candidate_round_trip() -> None:
    for doc in ({}, {"mode": "steady"}, {"mode": "steady", "warmup_share": 0.3}):
        spec = AgenticWorkloadSpec.model_validate({"window": doc})
        again = AgenticWorkloadSpec.model_validate(spec.model_dump())
        assert again.window == spec.window
    assert WindowSpec().share == 0.1 and WindowSpec(mode="steady", warmup_share=0).share == 0
