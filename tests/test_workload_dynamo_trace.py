"""Dynamo request-trace replay: reading, prompts from block hashes, session order, slicing.

The hand-made trace `ROWS` (trace block size 4) has three sessions; expected values below come
from arithmetic on these rows (times in ms, first arrival 1000):

    idx  id  session  received  total  input  hashes       output
    0    a1  sa       1000      500    10     [1, 2, 3]    3
    1    b1  sb       1200      300    8      [1, 4]       0
    2    a2  sa       1400      200    14     [1, 2, 5, 6] 5
    3    c1  -        2000      -      5      [7, 8]       2
    4    b2  sb       2100      -      8      [1, 4]       4
    5    b3  sb       2400      100    9      [1, 4, 9]    2
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
import respx
from fakes import write_study
from pydantic import TypeAdapter, ValidationError

from dynamo_tune.cli.main import main
from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.errors import SpecError
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.trial.record import records as stored_records
from dynamo_tune.workload import (
    DynamoTraceWorkload,
    DynamoTraceWorkloadSpec,
    PrefixHints,
    WorkloadSpec,
    make_workload,
)
from dynamo_tune.workload.dynamo_replay import dynamo_trace_plan
from dynamo_tune.workload.dynamo_trace import DynamoTraceRecord, read_dynamo_trace, select
from dynamo_tune.workload.payload import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    request_body,
    request_path,
)
from dynamo_tune.workload.plan import Message, PlannedRequest

SAMPLE = Path(__file__).parent / "fixtures" / "traces" / "dynamo-request-trace-sample.jsonl"
ADAPTER: TypeAdapter[object] = TypeAdapter(WorkloadSpec)
ROUNDING_S = 1e-6


def event(
    rid: str,
    session: str | None,
    received_ms: float,
    input_length: int,
    hashes: list[int],
    *,
    output: int = 2,
    total_ms: float | None = None,
    block: int = 4,
    model: str = "tiny",
    event_type: str = "request_end",
) -> dict[str, Any]:
    """A bare `dynamo.request.trace.v1` event."""
    request: dict[str, Any] = {
        "request_id": rid,
        "model": model,
        "input_tokens": input_length,
        "output_tokens": output,
        "cached_tokens": 0,
        "request_received_ms": received_ms,
        "ttft_ms": 1.0,
        "total_time_ms": total_ms,
        "replay": {
            "trace_block_size": block,
            "input_length": input_length,
            "input_sequence_hashes": hashes,
        },
    }
    return {
        "schema": "dynamo.request.trace.v1",
        "event_type": event_type,
        "agent_context": None if session is None else {"session_id": session},
        "request": request,
    }


def wrapped(doc: dict[str, Any]) -> dict[str, Any]:
    """The sink's line: the event under `event`, with the sink's timestamp."""
    return {"timestamp": 1, "event": doc}


ROWS = [
    event("a1", "sa", 1000, 10, [1, 2, 3], output=3, total_ms=500),
    event("b1", "sb", 1200, 8, [1, 4], output=0, total_ms=300),
    event("a2", "sa", 1400, 14, [1, 2, 5, 6], output=5, total_ms=200),
    event("c1", None, 2000, 5, [7, 8], output=2),
    event("b2", "sb", 2100, 8, [1, 4], output=4),
    event("b3", "sb", 2400, 9, [1, 4, 9], output=2, total_ms=100),
]


def write_lines(path: Path, docs: list[dict[str, Any]], *, extra: str = "") -> Path:
    text = "".join(json.dumps(d) + "\n" for d in docs) + extra
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def trace_file(tmp_path: Path, docs: list[dict[str, Any]] | None = None) -> Path:
    # shuffled order: the reader sorts by arrival
    rows = docs if docs is not None else [ROWS[i] for i in (3, 0, 5, 1, 4, 2)]
    return write_lines(tmp_path / "trace.jsonl", [wrapped(d) for d in rows])


def spec(path: Path | str, **fields: Any) -> DynamoTraceWorkloadSpec:
    return DynamoTraceWorkloadSpec.model_validate(
        {"kind": "dynamo-trace", "path": str(path), **fields}
    )


def records(path: Path) -> list[DynamoTraceRecord]:
    return read_dynamo_trace(path).records


# ---- reading -------------------------------------------------------------------------------


def test_wrapped_and_bare_lines_are_read_and_sorted_by_arrival(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [wrapped(ROWS[2]), ROWS[0], wrapped(ROWS[3]), ROWS[1]])
    read = read_dynamo_trace(path)
    assert [r.request_id for r in read.records] == ["a1", "b1", "a2", "c1"]
    a2 = read.records[2]
    assert (a2.session_id, a2.received_ms, a2.total_time_ms, a2.finished_ms) == (
        "sa",
        1400.0,
        200.0,
        1600.0,
    )
    assert (a2.block_size, a2.input_length, a2.hashes, a2.output_tokens) == (4, 14, (1, 2, 5, 6), 5)
    c1 = read.records[3]
    assert (c1.session_id, c1.session, c1.finished_ms) == (None, "request:c1", None)
    assert read.files == [path]


def test_a_folder_of_plain_and_gzip_segments_and_a_glob(tmp_path: Path) -> None:
    folder = tmp_path / "segments"
    folder.mkdir()
    write_lines(folder / "seg-0.jsonl.gz", [wrapped(d) for d in ROWS[:3]])
    write_lines(folder / "seg-1.jsonl", [wrapped(d) for d in ROWS[3:]])
    (folder / "notes.txt").write_text("not a segment\n")
    by_folder = read_dynamo_trace(folder)
    assert [p.name for p in by_folder.files] == ["seg-0.jsonl.gz", "seg-1.jsonl"]
    assert [r.request_id for r in by_folder.records] == ["a1", "b1", "a2", "c1", "b2", "b3"]
    by_glob = read_dynamo_trace(str(folder / "seg-*.jsonl*"))
    assert [r.request_id for r in by_glob.records] == ["a1", "b1", "a2", "c1", "b2", "b3"]
    only_gz = read_dynamo_trace(str(folder / "*.gz"))
    assert [r.request_id for r in only_gz.records] == ["a1", "b1", "a2"]


def test_other_events_and_other_models_are_counted_and_skipped(tmp_path: Path) -> None:
    start = event("a1", "sa", 999, 10, [1, 2, 3], event_type="request_start")
    other = event("x1", "sx", 1100, 4, [11], model="big")
    path = write_lines(
        tmp_path / "t.jsonl", [wrapped(d) for d in (start, ROWS[0], start, other, ROWS[1])]
    )
    read = read_dynamo_trace(path, ["tiny"])
    assert [r.request_id for r in read.records] == ["a1", "b1"]
    assert dict(read.skipped_events) == {"request_start": 2}
    assert dict(read.skipped_models) == {"big": 1}
    assert [r.request_id for r in read_dynamo_trace(path).records] == ["a1", "x1", "b1"]
    with pytest.raises(SpecError, match="no request_end record of model"):
        read_dynamo_trace(path, ["absent"])


def test_a_malformed_line_is_a_spec_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [wrapped(ROWS[0]), wrapped(ROWS[1])], extra="{oops\n")
    with pytest.raises(SpecError, match=rf"{path}:3: not a dynamo.request.trace.v1 record"):
        read_dynamo_trace(path)
    short = event("z", "s", 1, 9, [1, 2])  # 9 tokens at block 4 need 3 hashes
    gz = write_lines(tmp_path / "t.jsonl.gz", [wrapped(ROWS[0]), short])
    with pytest.raises(SpecError, match=rf"{gz}:2: 2 input_sequence_hashes for input_length 9"):
        read_dynamo_trace(gz)
    with pytest.raises(SpecError, match="no trace file"):
        read_dynamo_trace(tmp_path / "missing-*.jsonl")


# ---- prompts -------------------------------------------------------------------------------


def test_equal_hashes_give_identical_blocks_and_lengths_are_exact(tmp_path: Path) -> None:
    plan = dynamo_trace_plan(records(trace_file(tmp_path)), seed=0, speedup=1.0)
    prompts = [r.prompt_tokens for r in plan]
    assert [len(p) for p in prompts] == [10, 8, 14, 5, 8, 9]
    a1, b1, a2, c1, b2, b3 = prompts
    # hash 1 leads every prompt but c1's
    assert a1[0:4] == b1[0:4] == a2[0:4] == b2[0:4] == b3[0:4]
    assert a1[4:8] == a2[4:8]  # hash 2
    assert b1 == b2 == b3[:8]  # hashes [1, 4]
    # distinct hashes, distinct blocks: 2 vs 4, 3 (partial) vs 5, 7 vs 1, 9 vs 5
    assert a1[4:8] != b1[4:8]
    assert a1[8:10] != a2[8:10]
    assert c1[0:4] != a1[0:4]
    assert b3[8:9] != a2[8:9]
    # a partial last block is the head of that hash's block: a1 keeps 2 of hash 3's 4 words
    a3 = dynamo_trace_plan(
        records(trace_file(tmp_path, [event("q", "s", 0, 12, [1, 2, 3])])), seed=0, speedup=1
    )[0].prompt_tokens
    assert a3[8:10] == a1[8:10] and len(a3) == 12
    assert all(r.raw_prompt and len(r.messages) == 1 for r in plan)
    assert [r.max_tokens for r in plan] == [3, 1, 5, 2, 4, 2]  # output 0 asks for 1


def test_the_seed_picks_the_words(tmp_path: Path) -> None:
    rs = records(trace_file(tmp_path))
    a = [r.prompt_tokens for r in dynamo_trace_plan(rs, seed=5, speedup=1)]
    b = [r.prompt_tokens for r in dynamo_trace_plan(rs, seed=5, speedup=1)]
    c = [r.prompt_tokens for r in dynamo_trace_plan(rs, seed=6, speedup=1)]
    assert a == b
    assert a[0][:4] != c[0][:4]


# ---- arrivals ------------------------------------------------------------------------------


def test_sessions_chain_with_the_recorded_think_time(tmp_path: Path) -> None:
    plan = dynamo_trace_plan(records(trace_file(tmp_path)), seed=0, speedup=2.0)
    assert [r.session for r in plan] == ["sa", "sb", "sa", "request:c1", "sb", "sb"]
    assert [r.turn for r in plan] == [0, 0, 1, 0, 1, 2]
    assert [r.session_requests for r in plan] == [2, 3, 2, 1, 3, 3]
    assert [r.after for r in plan] == [(), (), (0,), (), (1,), (4,)]
    # roots: (received - 1000) / 1000 / 2
    assert [r.offset_s for r in plan] == [0.0, 0.1, None, 0.5, None, None]
    # a2: 1400 - (1000 + 500) < 0 -> 0; b2: 2100 - (1200 + 300) = 600 ms -> 0.3 s;
    # b3: b2's total time unknown -> 2400 - 2100 = 300 ms -> 0.15 s
    assert [r.delay_s for r in plan] == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.3, 0.15])


def test_the_real_sample_replays_one_session_of_equal_prompts() -> None:
    plan = dynamo_trace_plan(records(SAMPLE), seed=0, speedup=1.0)
    assert [(r.session, r.after, r.prompt_length, r.max_tokens) for r in plan] == [
        ("sess-a", (), 36, 4),
        ("sess-a", (0,), 36, 4),
        ("sess-a", (1,), 36, 4),
    ]
    assert plan[0].prompt_tokens == plan[1].prompt_tokens == plan[2].prompt_tokens
    # 1796202985136 - (1796202985124 + 5.265818) ms; 985147 - (985136 + 4.765985) ms (to
    # 1 us: a float holds a unix time in ms to about 0.2 us)
    assert [r.delay_s for r in plan] == pytest.approx([0.0, 0.006734182, 0.006234015], abs=1e-6)


def test_a_time_slice_starts_over_at_its_first_record(tmp_path: Path) -> None:
    rs = records(trace_file(tmp_path))
    # [1000 + 300, 1000 + 300 + 1000) ms keeps a2 (1400), c1 (2000), b2 (2100)
    kept = select(rs, start_s=0.3, duration_s=1.0)
    assert [r.request_id for r in kept] == ["a2", "c1", "b2"]
    plan = dynamo_trace_plan(kept, seed=0, speedup=1.0)
    # their predecessors are outside the slice: all roots, offsets from 1400 ms
    assert [r.after for r in plan] == [(), (), ()]
    assert [r.offset_s for r in plan] == pytest.approx([0.0, 0.6, 0.7])
    assert [r.request_id for r in select(rs, start_s=1.4)] == ["b3"]


def test_sampled_sessions_are_whole_seeded_and_reproducible(tmp_path: Path) -> None:
    rs = records(trace_file(tmp_path))
    sizes = {"sa": 2, "sb": 3, "request:c1": 1}
    picks = {}
    for seed in range(8):
        kept = select(rs, sessions=2, seed=seed)
        ids = {r.session for r in kept}
        assert len(ids) == 2
        assert len(kept) == sum(sizes[s] for s in ids)  # whole sessions
        assert [r.received_ms for r in kept] == sorted(r.received_ms for r in kept)
        assert select(rs, sessions=2, seed=seed) == kept
        picks[seed] = frozenset(ids)
    assert len(set(picks.values())) > 1  # the seed decides which
    assert select(rs, sessions=3) == rs == select(rs, sessions=10)


# ---- spec, workload, request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"kind": "dynamo-trace"}, "path"),
        ({"kind": "dynamo-trace", "path": "t", "speedup": 0}, "speedup"),
        ({"kind": "dynamo-trace", "path": "t", "start_s": -1}, "start_s"),
        ({"kind": "dynamo-trace", "path": "t", "duration_s": 0}, "duration_s"),
        ({"kind": "dynamo-trace", "path": "t", "sessions": 0}, "sessions"),
        ({"kind": "dynamo-trace", "path": "t", "models": []}, "models"),
        ({"kind": "dynamo-trace", "path": "t", "speed_up": 2}, "speed_up"),
    ],
)
def test_bad_spec_names_the_field(doc: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ADAPTER.validate_python(doc)
    assert where in str(exc.value)


def test_the_workload_reads_slices_and_knows_its_kve_ceiling(tmp_path: Path) -> None:
    path = trace_file(tmp_path)
    workload = make_workload(spec(path, speedup=2), block_size=4)
    assert isinstance(workload, DynamoTraceWorkload)
    assert [r.prompt_length for r in workload.plan] == [10, 8, 14, 5, 8, 9]
    # reusable full 4-token blocks of an already-seen prefix: 0 + 4 + 8 + 0 + 8 + 8 of 54
    assert workload.kve_ceiling == pytest.approx(28 / 54)
    # at block size 8: a2, b2 and b3 reuse their first 8 tokens
    assert make_workload(spec(path), block_size=8).kve_ceiling == pytest.approx(24 / 54)
    sliced = make_workload(spec(path, start_s=0.3, duration_s=1.0), block_size=4)
    assert [r.prompt_length for r in sliced.plan] == [14, 5, 8]
    with pytest.raises(SpecError, match="no request in the slice"):
        make_workload(spec(path, start_s=5.0), block_size=4)


def test_a_study_file_takes_the_kind_and_searches_its_fields(tmp_path: Path) -> None:
    study = write_study(
        tmp_path,
        {
            "workload": {"kind": "dynamo-trace", "path": "traces/*.jsonl.gz", "speedup": 4},
            "search_space/workload.speedup": {"type": "float", "low": 1.0, "high": 8.0},
        },
    )
    loaded = load_spec(study)
    assert isinstance(loaded.spec.workload, DynamoTraceWorkloadSpec)
    assert loaded.spec.workload.path == tmp_path.resolve() / "traces" / "*.jsonl.gz"


def test_a_raw_prompt_is_a_completion_of_exactly_its_words() -> None:
    request = PlannedRequest(
        index=0,
        session="sa",
        turn=0,
        branch=0,
        messages=(Message("user", (5, 6, 7)),),
        max_tokens=3,
        raw_prompt=True,
    )
    nvext = {"agent_hints": {"osl": 3}}
    assert request_path(request) == COMPLETIONS_PATH == "/v1/completions"
    assert request_body(request, "tiny", nvext, ignore_eos=True) == {
        "model": "tiny",
        "prompt": "w5 w6 w7",
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
        "nvext": nvext,
    }
    chat = PlannedRequest(0, "sa", 0, 0, request.messages, 3)
    assert request_path(chat) == CHAT_PATH
    assert "messages" in request_body(chat, "tiny", None, ignore_eos=False)


URL = "http://127.0.0.1:9"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx on httpx's transport lookup (the runner's transport is aiohttp, not httpcore)."""
    with respx.mock(using="httpx") as mocked:
        yield mocked


class _Stream(httpx.AsyncByteStream):
    """A completions stream: one `text` chunk per asked token, usage, [DONE]."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        n = int(self.body["max_tokens"])
        for i in range(n):
            yield (
                json.dumps({"choices": [{"text": f" w{i}", "index": 0}]})
                .encode()
                .join([b"data: ", b"\n\n"])
            )
        words = len(str(self.body["prompt"]).split())
        usage = {"prompt_tokens": words, "completion_tokens": n, "prompt_tokens_details": {}}
        yield b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"


async def test_the_runner_sends_completions_with_session_ids(
    tmp_path: Path, router: respx.MockRouter
) -> None:
    sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    router.get(f"{URL}/v1/models").respond(200, json={"data": []})

    def effect(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append((request.url.path, body, dict(request.headers)))
        return httpx.Response(200, stream=_Stream(body))

    router.post(f"{URL}/v1/completions").mock(side_effect=effect)
    workload = make_workload(spec(trace_file(tmp_path), speedup=10), block_size=4)
    assert isinstance(workload, DynamoTraceWorkload)
    started = time.time()
    report = await workload.run(Endpoints(frontend_url=URL, model="tiny"), PrefixHints())
    assert (report.requests_ok, report.requests_failed) == (6, 0)
    by_index = {r.index: r for r in report.records}
    assert [by_index[i].prompt_tokens for i in range(6)] == [10, 8, 14, 5, 8, 9]
    assert [by_index[i].output_tokens for i in range(6)] == [3, 1, 5, 2, 4, 2]
    assert {path for path, _, _ in sent} == {"/v1/completions"}
    sessions = {body["prompt"]: h["x-dynamo-session-id"] for _, body, h in sent}
    ids = [sessions[r.prompt_text] for r in workload.plan]
    assert ids[1] == ids[4] == ids[5] != ids[0] == ids[2] != ids[3]
    assert [i.rsplit("-", 1)[-1] for i in (ids[0], ids[1])] == ["sa", "sb"]
    assert ids[3].endswith("-request:c1")
    # b2 went no earlier than b1's end + 600 ms / 10; b3 no earlier than b2's end + 30 ms
    for parent, child, gap in ((1, 4, 0.06), (4, 5, 0.03)):
        p, c = by_index[parent], by_index[child]
        assert p.e2e_s is not None
        assert c.sent >= p.sent + p.e2e_s + gap - ROUNDING_S
    # c1 is a root due 1000 ms / 10 after the start
    assert by_index[3].sent >= started + 0.1 - ROUNDING_S


# ---- the real stack ------------------------------------------------------------------------


@pytest.mark.integration
async def test_replay_on_the_real_stack_sends_exact_prompts_and_reuses_blocks(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """At the stack's block size 16: a1 is 36 tokens (blocks 1, 2 and 4 tokens of 3); a2
    extends it, b1 shares its blocks 1-2, c1 shares nothing. Gaps of about a second let the
    router learn where a1's blocks are (KV events) before a2 and b1 arrive."""
    assert local_stack.spec.block_size == 16
    rows = [
        event("a1", "a", 0, 36, [1, 2, 3], output=4, total_ms=50, block=16),
        event("c1", None, 10, 20, [9, 10], output=3, total_ms=40, block=16),
        event("a2", "a", 1000, 50, [1, 2, 3, 4], output=4, total_ms=50, block=16),
        event("b1", "b", 1500, 40, [1, 2, 5], output=2, total_ms=50, block=16),
    ]
    path = trace_file(tmp_path, rows)
    await local_stack.reset()  # cold caches
    workload = make_workload(spec(path, speedup=1), block_size=16)
    report = await workload.run(local_stack.endpoints(), PrefixHints())
    assert report.first_errors == []
    assert (report.requests_ok, report.requests_failed) == (4, 0)
    by_index = {r.index: r for r in report.records}
    # plan order: a1, c1, a2, b1
    assert [by_index[i].prompt_tokens for i in range(4)] == [36, 20, 50, 40]
    assert [by_index[i].output_tokens for i in range(4)] == [4, 3, 4, 2]
    # a1 and c1 are new; a2 and b1 start with a1's two full blocks (2 x 16 tokens); a1's
    # third block never filled (4 prompt + 4 generated tokens), so nothing more is reused
    cached = [by_index[i].cached_tokens for i in range(4)]
    assert cached == [0, 0, 32, 32]
    assert report.kve_ceiling == pytest.approx(64 / (36 + 20 + 50 + 40))
    print(f"dynamo-trace replay on the stack: cached tokens {cached}")


def test_what_the_workload_skips_is_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    start = event("a1", "sa", 999, 10, [1, 2, 3], event_type="request_start")
    other = event("x1", "sx", 1100, 4, [11], model="big")
    path = write_lines(tmp_path / "t.jsonl", [wrapped(d) for d in (start, ROWS[0], other)])
    with caplog.at_level("WARNING", logger="dynamo_tune"):
        make_workload(spec(path, models=["tiny"]), block_size=4)
    (message,) = [r.getMessage() for r in caplog.records]
    assert "skipped 1 request_start events, 1 requests of model big; replaying 1 requests" in (
        message
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="dynamo_tune"):
        make_workload(spec(trace_file(tmp_path)), block_size=4)
    assert caplog.records == []  # nothing skipped: nothing said


def test_a_malformed_capture_stops_run_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = trace_file(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + "{not json\n")
    study = write_study(tmp_path, {"workload": {"kind": "dynamo-trace", "path": "bad.jsonl"}})
    assert main(["run", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dynamo-tune: error: ") and f"{bad}:7" in err[0]
    stored = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path}/fake.db")
    assert [r.state.name for r in stored_records(stored)] == [
        "WAITING"
    ]  # the baseline, not measured
