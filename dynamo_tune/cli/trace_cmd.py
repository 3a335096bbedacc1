"""`dynamo-tune trace summarize`. Does I/O: reads a captured trace, prints its summary.

`trace summarize PATH` reads a Dynamo request trace (a file, a folder of segments or a glob;
plain or gzip'd JSONL, e.g. what `stack up --request-trace` or `deployment.request_trace`
captured) and prints what the traffic was: requests, sessions, time span and rate, input and
output lengths, requests per session, the KVE ceiling of the traffic next to the KVE the
deployment achieved while recording (`workload/trace_summary.py` holds every formula).
`--json` prints the `TraceSummary` as one JSON object. A missing path or a malformed line is
a `SpecError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

from dynamo_tune.workload.dynamo_trace import read_dynamo_trace
from dynamo_tune.workload.trace_summary import TraceSummary, summarize_trace


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `trace summarize` to `sub`."""
    trace = sub.add_parser("trace", help="Read a captured Dynamo request trace.")
    commands = trace.add_subparsers(dest="trace_command", required=True, metavar="COMMAND")
    summarize = commands.add_parser(
        "summarize", help="Requests, sessions, lengths and the KVE ceiling of a captured trace."
    )
    summarize.add_argument("path", metavar="PATH", help="A trace file, a folder or a glob")
    summarize.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="M",
        help="Only requests of this model (repeatable; default: every model)",
    )
    summarize.add_argument("--json", action="store_true", help="Print the summary as JSON")
    summarize.set_defaults(func=_summarize)


def _summarize(args: argparse.Namespace) -> int:
    summary = summarize_trace(read_dynamo_trace(args.path, args.model))
    print(summary.model_dump_json(indent=1) if args.json else "\n".join(summary_lines(summary)))
    return 0


def _num(value: float) -> str:
    return f"{value:.4g}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counter.items())


def summary_lines(s: TraceSummary) -> list[str]:
    """The summary for humans, one figure per line."""
    rate = "n/a" if s.request_rate_per_s is None else f"{s.request_rate_per_s:.2f}"
    skipped_events = sum(s.skipped_events.values())
    skipped_models = sum(s.skipped_models.values())
    no_cached = f"; {s.requests_without_cached} requests without a count" * bool(
        s.requests_without_cached
    )
    lines = [
        f"trace             {', '.join(s.files)}",
        f"requests          {s.requests} in {s.sessions} sessions"
        f" ({s.requests_without_session} without a session id); model {', '.join(s.models)}",
        f"time span         {s.span_s:.2f} s ({rate} req/s)",
        f"input tokens      p50 {_num(s.input_tokens_p50)}  p95 {_num(s.input_tokens_p95)}",
        f"output tokens     p50 {_num(s.output_tokens_p50)}  p95 {_num(s.output_tokens_p95)}",
        f"requests/session  p50 {_num(s.requests_per_session_p50)}"
        f"  max {s.requests_per_session_max}",
        f"KVE ceiling       {_ratio(s.kve_ceiling)}  ({s.reusable_tokens} of {s.hashed_tokens}"
        f" input tokens in full blocks seen earlier; block size"
        f" {', '.join(map(str, s.block_sizes))})",
        f"KVE achieved      {_ratio(s.kve_achieved)}  ({s.cached_tokens} of {s.cached_of_tokens}"
        f" input tokens cached, as the router counted them{no_cached})",
        f"skipped           {skipped_events} other events"
        + (f" ({_counts(s.skipped_events)})" if skipped_events else "")
        + f", {skipped_models} requests of other models"
        + (f" ({_counts(s.skipped_models)})" if skipped_models else ""),
    ]
    return lines
