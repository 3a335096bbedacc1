"""Dynamo's own request traces (`dynamo.request.trace.v1`) read back. Pure, except
`read_dynamo_trace` and `trace_files` (read files).

A Dynamo 1.6 frontend started with `DYN_REQUEST_TRACE=1` writes one record per finished
request: `{"timestamp": ms, "event": {"schema": "dynamo.request.trace.v1", "event_type":
"request_end", "agent_context": {"session_id"}, "request": {"request_id", "model",
"input_tokens", "output_tokens", "cached_tokens", "request_received_ms", "ttft_ms",
"total_time_ms", "replay": {"trace_block_size", "input_length", "input_sequence_hashes"}}}}` —
block hashes, never prompt text. A file holds such lines wrapped as above or bare (the
`event` object alone), plain or gzip'd (`*.jsonl.gz` segments, the sink's default format).

`read_dynamo_trace(path)` reads a file, a folder of segments or a glob; keeps `request_end`
events (other event types are counted and skipped) of the wanted models (others counted and
skipped); a malformed line is a `SpecError` naming the file and line. `select` cuts a time
slice and samples whole sessions, so a day's capture becomes a trial-sized window.
"""

from __future__ import annotations

import glob
import gzip
import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynamo_tune.errors import SpecError

SCHEMA = "dynamo.request.trace.v1"
UNKNOWN_MODEL = "(no model recorded)"
"""How a record without a model is counted and shown."""
REQUEST_END = "request_end"


@dataclass(frozen=True)
class DynamoTraceRecord:
    """One finished request of a Dynamo request trace (times in unix milliseconds)."""

    request_id: str
    session_id: str | None
    model: str | None
    """None for a request Dynamo 1.6.1 recorded without one (it leaves `model` out of the
    records of requests sent without a session header)."""
    received_ms: float
    input_tokens: int
    output_tokens: int
    cached_tokens: int | None
    ttft_ms: float | None
    total_time_ms: float | None
    block_size: int
    """`replay.trace_block_size`: tokens per hashed block."""
    input_length: int
    """`replay.input_length`: prompt tokens as the engine saw them."""
    hashes: tuple[int, ...]
    """`replay.input_sequence_hashes`: one per block, the last one possibly partial."""

    @property
    def session(self) -> str:
        """The session id, or the request's own id for a request sent without one."""
        return self.session_id if self.session_id is not None else f"request:{self.request_id}"

    @property
    def finished_ms(self) -> float | None:
        """When the request completed: received + total time (None when not recorded)."""
        return None if self.total_time_ms is None else self.received_ms + self.total_time_ms


@dataclass
class TraceRead:
    """What `read_dynamo_trace` found: the records (by arrival) and what it skipped."""

    records: list[DynamoTraceRecord]
    files: list[Path]
    skipped_events: Counter[str] = field(default_factory=Counter)
    """Events other than `request_end`, by event type."""
    skipped_models: Counter[str] = field(default_factory=Counter)
    """`request_end` records of models that were not asked for, by model."""


def trace_files(path: Path | str) -> list[Path]:
    """The trace files `path` names: a file, every `*.jsonl` / `*.jsonl.gz` of a folder (sorted),
    or the files a glob pattern matches (sorted); SpecError when none."""
    target = Path(path)
    if target.is_file():
        return [target]
    if target.is_dir():
        found = sorted(
            p for p in target.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")) and p.is_file()
        )
        if not found:
            raise SpecError(f"trace folder {target} holds no *.jsonl or *.jsonl.gz file")
        return found
    matches = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
    if not matches:
        raise SpecError(f"no trace file at {path} (a file, a folder of segments or a glob)")
    return matches


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            yield from enumerate(handle, 1)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read trace {path}: {exc}") from exc


def _get(doc: dict[str, Any], *keys: str) -> Any:
    node: Any = doc
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise KeyError(".".join(keys))
        node = node[key]
    return node


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_event(line: str, where: str) -> tuple[str, DynamoTraceRecord | None]:
    """(event type, its record when it is a `request_end`) of one line, wrapped or bare;
    `SpecError` naming `where` (file:line) for a malformed one."""
    try:
        doc = json.loads(line)
        event = doc.get("event", doc) if isinstance(doc, dict) else None
        if not isinstance(event, dict):
            raise TypeError(f"a JSON object, got {type(doc).__name__}")
        kind = str(event["event_type"])
        if kind != REQUEST_END:
            return kind, None
        request = _get(event, "request")
        replay = _get(request, "replay")
        context = event.get("agent_context") or {}
        session = context.get("session_id") if isinstance(context, dict) else None
        record = DynamoTraceRecord(
            request_id=str(request["request_id"]),
            session_id=None if session is None else str(session),
            model=None if request.get("model") is None else str(request["model"]),
            received_ms=float(request["request_received_ms"]),
            input_tokens=int(request["input_tokens"]),
            output_tokens=int(request["output_tokens"]),
            cached_tokens=None
            if request.get("cached_tokens") is None
            else int(request["cached_tokens"]),
            ttft_ms=_optional_float(request.get("ttft_ms")),
            total_time_ms=_optional_float(request.get("total_time_ms")),
            block_size=int(replay["trace_block_size"]),
            input_length=int(replay["input_length"]),
            hashes=tuple(int(h) for h in replay["input_sequence_hashes"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpecError(
            f"{where}: not a {SCHEMA} record ({type(exc).__name__}: {exc}): {line.strip()[:120]}"
        ) from exc
    if record.block_size < 1 or record.input_length < 1 or record.output_tokens < 0:
        raise SpecError(f"{where}: needs trace_block_size >= 1 and input_length >= 1")
    if len(record.hashes) != -(-record.input_length // record.block_size):
        raise SpecError(
            f"{where}: {len(record.hashes)} input_sequence_hashes for input_length "
            f"{record.input_length} at trace_block_size {record.block_size} (expected one per "
            "block)"
        )
    return kind, record


def read_dynamo_trace(path: Path | str, models: Sequence[str] | None = None) -> TraceRead:
    """Every `request_end` record of the trace at `path` (of `models`, when given), sorted by
    arrival; SpecError for a malformed line or a trace without a request to replay."""
    files = trace_files(path)
    read = TraceRead(records=[], files=files)
    wanted = set(models) if models else None
    for file in files:
        for number, line in _lines(file):
            if not line.strip():
                continue
            kind, record = parse_event(line, f"{file}:{number}")
            if record is None:
                read.skipped_events[kind] += 1
            elif wanted is not None and record.model not in wanted:
                read.skipped_models[record.model or UNKNOWN_MODEL] += 1
            else:
                read.records.append(record)
    if not read.records:
        what = f" of model(s) {', '.join(sorted(wanted))}" if wanted else ""
        raise SpecError(f"trace {path} has no request_end record{what} to replay")
    read.records.sort(key=lambda r: (r.received_ms, r.request_id))
    return read


def select(
    records: Sequence[DynamoTraceRecord],
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    sessions: int | None = None,
    seed: int = 0,
) -> list[DynamoTraceRecord]:
    """The records that arrived in [first + `start_s`, first + `start_s` + `duration_s`)
    (seconds after the first record's arrival), then, with `sessions`, the records of that
    many whole sessions sampled with `seed` (all of them when there are fewer). Arrival order
    is kept."""
    if not records:
        return []
    first = min(r.received_ms for r in records)
    low = first + start_s * 1000.0
    high = None if duration_s is None else low + duration_s * 1000.0
    kept = [r for r in records if r.received_ms >= low and (high is None or r.received_ms < high)]
    if sessions is not None:
        ids = sorted({r.session for r in kept})
        if sessions < len(ids):
            chosen = set(random.Random(f"{seed}:sessions").sample(ids, sessions))
            kept = [r for r in kept if r.session in chosen]
    return kept
