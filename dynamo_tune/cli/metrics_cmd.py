"""`dynamo-tune metrics`: core metrics of a time window, their sources and the score.

Does I/O: queries Prometheus (`--prometheus-url`) or scrapes `/metrics` endpoints
(`--scrape`, which measures from now on: `--last D` snapshots, waits D, snapshots again).
Bad arguments and an unreachable metrics source (`result.reachable` False) exit 2 with one
line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, NoReturn

from pydantic import ValidationError

from dynamo_tune.errors import MetricsError, SpecError
from dynamo_tune.metrics import (
    METRIC_REGISTRY,
    DynamoMetricsResult,
    PrometheusBackend,
    ScoreConfig,
    ScrapeBackend,
)
from dynamo_tune.metrics.config import validate_http_url
from dynamo_tune.metrics.durations import parse_duration
from dynamo_tune.metrics.score import DEFAULT_SCORE

DEFAULT_LAST = "5m"
SCORE_FLAGS = {
    "kv_weight": "--kv-weight",
    "ttft_weight": "--ttft-weight",
    "itl_weight": "--itl-weight",
    "ttft_target_seconds": "--ttft-target",
    "itl_target_seconds": "--itl-target",
}
"""`ScoreConfig` field -> flag (defaults and rules come from `ScoreConfig`)."""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `metrics` to `sub`."""
    parser = sub.add_parser(
        "metrics",
        help="core metrics (KVE, TTFT, ITL) of a window, their sources and the score",
        description="Collect Dynamo's core metrics over an exact window and print the score.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus-url", metavar="URL", help="Prometheus scraping Dynamo")
    source.add_argument(
        "--scrape", nargs="+", metavar="URL", help="/metrics URLs to snapshot (no Prometheus)"
    )
    parser.add_argument("--start", type=float, metavar="UNIX_S", help="window start")
    parser.add_argument("--end", type=float, metavar="UNIX_S", help="window end")
    parser.add_argument("--last", metavar="DURATION", help=f"window = the last D (e.g. 30s, 5m; "
                        f"default {DEFAULT_LAST})")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="HTTP timeout")
    for field, flag in SCORE_FLAGS.items():
        parser.add_argument(
            flag,
            dest=field,
            type=float,
            default=getattr(DEFAULT_SCORE, field),
            metavar="S" if field.endswith("_seconds") else "W",
            help=f"{ScoreConfig.model_fields[field].description} (default %(default)s)",
        )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    parser.error = _one_line_error


def _one_line_error(message: str) -> NoReturn:
    print(f"dynamo-tune metrics: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def window_from_args(args: argparse.Namespace, now: float) -> tuple[float, float]:
    """(start, end) from `--start/--end` or `--last`; SpecError for a bad combination."""
    if args.last is not None and (args.start is not None or args.end is not None):
        raise SpecError("use either --start/--end or --last, not both")
    if args.start is not None or args.end is not None:
        if args.start is None or args.end is None:
            raise SpecError("--start and --end go together")
        if not args.end > args.start:
            raise SpecError(f"--end must be after --start, but got {args.start} .. {args.end}")
        if args.end > now + 1:
            raise SpecError(f"--end {args.end} is in the future (now {now:.0f})")
        return args.start, args.end
    try:
        seconds = parse_duration(args.last or DEFAULT_LAST)
    except ValueError as exc:
        raise SpecError(f"--last: {exc}") from exc
    return now - seconds, now


def score_config(args: argparse.Namespace) -> ScoreConfig:
    """The `ScoreConfig` of the flags; SpecError naming the flag(s) if invalid."""
    try:
        return ScoreConfig.model_validate({field: getattr(args, field) for field in SCORE_FLAGS})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{SCORE_FLAGS[field]}: {message}" if field else message)
        raise SpecError("; ".join(problems)) from exc


async def _collect(args: argparse.Namespace) -> DynamoMetricsResult:
    if args.scrape is not None:
        if args.start is not None or args.end is not None:
            raise SpecError("--scrape measures from now on: use --last, not --start/--end")
        seconds = parse_duration(args.last or DEFAULT_LAST)
        scrape = ScrapeBackend(args.scrape, timeout_s=args.timeout)
        await scrape.mark_start()
        if (reason := scrape.unreachable_at_start) is not None:
            raise MetricsError(reason)  # before waiting for a window that cannot be read
        start = time.time()
        await asyncio.sleep(seconds)
        return await scrape.collect(start, time.time())
    start, end = window_from_args(args, time.time())
    return await PrometheusBackend(args.prometheus_url, timeout_s=args.timeout).collect(start, end)


def _check_urls(args: argparse.Namespace) -> None:
    flag = "--prometheus-url" if args.prometheus_url else "--scrape"
    for url in [args.prometheus_url] if args.prometheus_url else args.scrape:
        try:
            validate_http_url(url)
        except ValueError as exc:
            raise SpecError(f"{flag}: {exc}") from exc
    if args.scrape is not None and args.last is not None:
        try:
            parse_duration(args.last)
        except ValueError as exc:
            raise SpecError(f"--last: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    """Collect, print, exit 0 (also when incomplete: the output says what is missing)."""
    options = score_config(args).score_kwargs()
    if not args.timeout > 0:
        raise SpecError(f"--timeout must be > 0, but got {args.timeout}")
    _check_urls(args)
    if args.prometheus_url:
        window_from_args(args, time.time())  # argument errors before any network wait
    result = asyncio.run(_collect(args))
    if not result.reachable:
        raise MetricsError(" ".join(result.errors[0].split()))  # one line
    core = result.get_core_metrics()
    score = core.to_optimization_score(**options)
    if args.json:
        payload = {
            "core": core.model_dump(),
            "kv_efficiency_source": result.kv_efficiency_source,
            "score": score,
            "score_options": options,
            "result": result.model_dump(),
        }
        print(json.dumps(payload, indent=1, sort_keys=True))
        return 0
    print(render_text(result, score))
    return 0


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.1f} ms" if unit == "s" else f"{value:.4f}"


def render_text(result: DynamoMetricsResult, score: float | None) -> str:
    """Human-readable report of a result. Pure."""
    core = result.get_core_metrics()
    span = ""
    if result.window_start is not None and result.window_end is not None:
        span = f" {result.window_end - result.window_start:.1f} s window"
    lines = [
        f"dynamo-tune metrics ({result.backend},{span})",
        f"  KV efficiency  {_fmt(core.get_effective_kv_efficiency(), '')}"
        f"  (source: {core.effective_kv_source() or 'none'})",
        f"  TTFT p50/p95/p99  {_fmt(core.ttft_p50_seconds)} / {_fmt(core.ttft_p95_seconds)}"
        f" / {_fmt(core.ttft_p99_seconds)}  (dynamo_frontend_time_to_first_token_seconds)",
        f"  ITL  p50/p95/p99  {_fmt(core.itl_p50_seconds)} / {_fmt(core.itl_p95_seconds)}"
        f" / {_fmt(core.itl_p99_seconds)}  (dynamo_frontend_inter_token_latency_seconds)",
        f"  score  {f'{score:.4f}' if score is not None else 'n/a (core metrics incomplete)'}",
    ]
    core_keys = {f"{m}_p{q}" for m in ("ttft", "itl") for q in (50, 95, 99)}
    others = [
        f"{spec.key}={value:.4g}"
        for spec in METRIC_REGISTRY
        if spec.key not in core_keys and (value := getattr(result, spec.key)) is not None
    ]
    if others:
        lines.append("  other: " + ", ".join(others))
    if result.scrape_wait_seconds:
        lines.append(f"  waited {result.scrape_wait_seconds:.2f} s for the scrape past the end")
    lines.extend(f"  error: {error}" for error in result.errors)
    return "\n".join(lines)
