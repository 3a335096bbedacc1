"""`trace summarize`: the figures of a hand-made trace, the CLI's text and JSON, bad input.

The trace (block size 4; hashes are small made-up sequence hashes):

| # | ms   | session | model | input | hashes         | out | cached | reusable (by hand)        |
|---|------|---------|-------|-------|----------------|-----|--------|---------------------------|
| 1 | 1000 | A       | tiny  | 10    | 11 12 13(2)    | 5   | 0      | 0: nothing seen yet       |
| 2 | 1500 | B       | tiny  | 8     | 11 22          | 3   | 4      | 4: 11 seen, 22 not        |
| - | 1700 | -       | -     | -     | tool_start     | -   | -      | skipped event             |
| 3 | 2000 | A       | tiny  | 14    | 11 12 14 15(2) | 7   | 4      | 8: 11, 12 seen, 14 not    |
| 4 | 2500 | C       | other | 10    | 11 12 13(2)    | 2   | 0      | 0: another model's cache  |
| 5 | 3000 | A       | tiny  | 10    | 11 12 13(2)    | 5   | 8      | 8: partial 13 not reusable|

(n) marks a partial last block of n tokens. Each request takes 100 ms, the last 400 ms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dynamo_tune.cli.main import main
from dynamo_tune.workload.dynamo_trace import read_dynamo_trace
from dynamo_tune.workload.trace_summary import summarize_trace

ROWS = [  # ms, session, model, input, hashes, output, cached, total_time_ms
    (1000, "A", "tiny", 10, [11, 12, 13], 5, 0, 100),
    (1500, "B", "tiny", 8, [11, 22], 3, 4, 100),
    (2000, "A", "tiny", 14, [11, 12, 14, 15], 7, 4, 100),
    (2500, "C", "other", 10, [11, 12, 13], 2, 0, 100),
    (3000, "A", "tiny", 10, [11, 12, 13], 5, 8, 400),
]


def _event(n: int, row: tuple[Any, ...]) -> dict[str, Any]:
    ms, session, model, length, hashes, output, cached, total = row
    return {
        "schema": "dynamo.request.trace.v1",
        "event_type": "request_end",
        "agent_context": {"session_id": session},
        "request": {
            "request_id": f"r{n}",
            "model": model,
            "input_tokens": length,
            "output_tokens": output,
            "cached_tokens": cached,
            "request_received_ms": ms,
            "ttft_ms": 10.0,
            "total_time_ms": total,
            "replay": {
                "trace_block_size": 4,
                "input_length": length,
                "input_sequence_hashes": hashes,
            },
        },
    }


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """The table above as a JSONL file: wrapped lines (as Dynamo writes them) and one bare."""
    lines = [json.dumps({"timestamp": n, "event": _event(n, row)}) for n, row in enumerate(ROWS)]
    tool = {"event_type": "tool_start", "agent_context": {"session_id": "A"}}
    lines.insert(2, json.dumps({"timestamp": 9, "event": tool}))
    lines[1] = json.dumps(_event(1, ROWS[1]))  # a bare event is read as well
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_figure_of_the_hand_made_trace(trace: Path) -> None:
    s = summarize_trace(read_dynamo_trace(trace))
    assert (s.requests, s.sessions, s.requests_without_session) == (5, 3, 0)
    assert s.models == ["other", "tiny"] and s.block_sizes == [4]
    assert s.files == [str(trace)]
    assert (s.start_unix_s, s.end_unix_s) == (1.0, 3.4)
    assert s.span_s == pytest.approx(2.4)  # first received 1000 ms -> last finished 3400 ms
    assert s.request_rate_per_s == pytest.approx(5 / 2.4)
    # inputs sorted 8 10 10 10 14: p50 10, p95 at rank 3.8 = 10 + 0.8 * 4
    assert (s.input_tokens_p50, s.input_tokens_p95) == (10, pytest.approx(13.2))
    # outputs sorted 2 3 5 5 7: p50 5, p95 = 5 + 0.8 * 2
    assert (s.output_tokens_p50, s.output_tokens_p95) == (5, pytest.approx(6.6))
    # A 3, B 1, C 1
    assert (s.requests_per_session_p50, s.requests_per_session_max) == (1, 3)
    assert (s.input_tokens, s.hashed_tokens) == (52, 52)
    assert s.reusable_tokens == 0 + 4 + 8 + 0 + 8
    assert s.kve_ceiling == pytest.approx(20 / 52)
    assert s.cached_tokens == 16 and s.requests_without_cached == 0
    assert s.kve_achieved == pytest.approx(16 / 52)
    assert s.skipped_events == {"tool_start": 1} and s.skipped_models == {}


def test_one_model_only(trace: Path) -> None:
    s = summarize_trace(read_dynamo_trace(trace, ["tiny"]))
    assert (s.requests, s.sessions, s.models) == (4, 2, ["tiny"])
    assert (s.requests_per_session_p50, s.requests_per_session_max) == (2, 3)  # A 3, B 1
    assert s.kve_ceiling == pytest.approx(20 / 42)
    assert s.kve_achieved == pytest.approx(16 / 42)
    assert s.skipped_models == {"other": 1}


def test_requests_without_session_or_cached_count(tmp_path: Path) -> None:
    lone = _event(0, (1000, None, "tiny", 8, [1, 2], 3, None, 0))
    lone["agent_context"] = None
    second = _event(1, (1000, None, "tiny", 8, [1, 2], 3, 4, 0))
    del second["agent_context"]
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(lone) + "\n" + json.dumps(second) + "\n")
    s = summarize_trace(read_dynamo_trace(path))
    assert (s.sessions, s.requests_without_session) == (2, 2)  # each its own session
    assert s.span_s == 0 and s.request_rate_per_s is None
    assert s.kve_ceiling == pytest.approx(8 / 16)  # the second repeats both full blocks
    assert (s.requests_without_cached, s.kve_achieved) == (1, pytest.approx(4 / 8))
    assert (s.cached_tokens, s.cached_of_tokens, s.input_tokens) == (4, 8, 16)


def test_cli_prints_text(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "summarize", str(trace)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"trace             {trace}",
        "requests          5 in 3 sessions (0 without a session id); model other, tiny",
        "time span         2.40 s (2.08 req/s)",
        "input tokens      p50 10  p95 13.2",
        "output tokens     p50 5  p95 6.6",
        "requests/session  p50 1  max 3",
        "KVE ceiling       0.385  (20 of 52 input tokens in full blocks seen earlier; "
        "block size 4)",
        "KVE achieved      0.308  (16 of 52 input tokens cached, as the router counted them)",
        "skipped           1 other events (tool_start 1), 0 requests of other models",
    ]


def test_cli_prints_json(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "summarize", str(trace), "--json", "--model", "tiny"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["requests"] == 4 and doc["sessions"] == 2
    assert doc["reusable_tokens"] == 20 and doc["hashed_tokens"] == 42
    assert doc["kve_ceiling"] == pytest.approx(20 / 42)
    assert doc["skipped_models"] == {"other": 1}
    assert doc["skipped_events"] == {"tool_start": 1}


def test_cli_reads_several_models(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["trace", "summarize", str(trace), "--json", "--model", "tiny", "--model", "other"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no trace file at"),
        ('{"event": {"event_type": "request_end"}}\n', "capture.jsonl:1: not a dynamo"),
        ("not json\n", "capture.jsonl:1: not a dynamo"),
        ('{"event": {"event_type": "tool_start"}}\n', "has no request_end record"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "capture.jsonl"
    if content is not None:
        path.write_text(content)
    assert main(["trace", "summarize", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("dynamo-tune: error: ") and message in captured.err
    assert "Traceback" not in captured.err


def test_a_model_not_in_the_trace_is_an_error(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", "summarize", str(trace), "--model", "nope"]) == 2
    assert "of model(s) nope" in capsys.readouterr().err


def test_a_record_without_model_or_session_reads(tmp_path: Path) -> None:
    """Dynamo 1.6.1 leaves `model`, `agent_context` and `event_source` out of the record of
    a request sent without a session header."""
    line = {
        "timestamp": 5,
        "event": {
            "schema": "dynamo.request.trace.v1",
            "event_type": "request_end",
            "request": {
                "request_id": "r1",
                "input_tokens": 20,
                "output_tokens": 2,
                "request_received_ms": 1000,
                "total_time_ms": 10.0,
                "replay": {"trace_block_size": 16, "input_length": 20,
                           "input_sequence_hashes": [1, 2]},
            },
        },
    }  # fmt: skip
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(line) + "\n")
    (record,) = read_dynamo_trace(path).records
    assert record.model is None and record.session_id is None and record.session == "request:r1"
    summary = summarize_trace(read_dynamo_trace(path))
    assert summary.models == ["(no model recorded)"] and summary.requests == 1
