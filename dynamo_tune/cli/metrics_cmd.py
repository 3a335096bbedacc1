"""`dynamo-tune metrics`: core metrics of a time window, their sources and the score.

Does I/O: queries Prometheus (`--prometheus-url`: the last D or `--start/--end`) or scrapes
`/metrics` endpoints (`--scrape`, which measures from now on: it snapshots, says on stderr
how long it waits, waits D, snapshots again).
A protected Prometheus: `--bearer-token-env/--bearer-token-file` or `--basic-auth-user`
with `--basic-auth-password-env/--basic-auth-password-file`, and `--ca-file` or
`--insecure-skip-verify` (`PrometheusAccess`; secrets never on the command line). Bad
arguments, an unreachable metrics source (`result.reachable` False), a URL that is no
Prometheus (HTTP 404, not the API's JSON) and rejected credentials exit 2 with one line on
stderr. A window the source could not measure (`result.fault`) is printed, then said in one
line on stderr, exit 1. A closed stdout (`metrics --json | head -1`) ends quietly, exit 141.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any, NoReturn

from pydantic import ValidationError

from dynamo_tune.errors import MetricsError, SpecError
from dynamo_tune.metrics import (
    DEFAULT_SCORE,
    DEFAULT_TIMEOUT_S,
    METRIC_REGISTRY,
    DynamoMetricsResult,
    PrometheusAccess,
    PrometheusBackend,
    ScoreConfig,
    ScrapeBackend,
    parse_duration,
    url_has_credentials,
    validate_http_url,
)
from dynamo_tune.validation import spec_error

DEFAULT_LAST = "5m"
FAULT_EXIT = 1
"""Exit code when the result is printed but the source did not measure the window (`fault`)."""
BROKEN_PIPE_EXIT = 141
"""Exit code when stdout closes early (`| head`): 128 + SIGPIPE, what a shell reports for a
process that the signal ended, so `set -o pipefail` scripts see the usual code."""
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
        "--scrape",
        nargs="+",
        metavar="URL",
        help="/metrics URLs to snapshot now and again after --last D (no Prometheus)",
    )
    window = "with --prometheus-url"
    parser.add_argument("--start", type=float, metavar="UNIX_S", help=f"window start ({window})")
    parser.add_argument("--end", type=float, metavar="UNIX_S", help=f"window end ({window})")
    parser.add_argument(
        "--last",
        metavar="D",
        help="window: the last D with --prometheus-url, the next D from now with --scrape "
        f"(e.g. 30s, 5m; default {DEFAULT_LAST})",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S", help="HTTP timeout"
    )
    auth = parser.add_argument_group("a protected Prometheus (secrets from a variable or file)")
    auth.add_argument("--bearer-token-env", metavar="NAME", help="variable holding a token")
    auth.add_argument("--bearer-token-file", metavar="PATH", help="file holding a token")
    auth.add_argument("--basic-auth-user", metavar="USER", help="basic auth user name")
    auth.add_argument("--basic-auth-password-env", metavar="NAME", help="variable: its password")
    auth.add_argument("--basic-auth-password-file", metavar="PATH", help="file: its password")
    auth.add_argument("--ca-file", metavar="PATH", help="PEM CA bundle to trust (only it)")
    auth.add_argument(
        "--insecure-skip-verify", action="store_true", help="accept any TLS certificate"
    )
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
        raise spec_error(exc, rename=SCORE_FLAGS) from exc


ACCESS_FLAGS = {
    "bearer_token_env": "--bearer-token-env",
    "bearer_token_file": "--bearer-token-file",
    "basic_auth": "--basic-auth-user",
    "tls": "--ca-file",
}
"""`PrometheusAccess` field -> the flag that sets it (for error messages)."""


def access_from_args(args: argparse.Namespace) -> PrometheusAccess | None:
    """The `PrometheusAccess` of the flags (None if none is given); SpecError naming flags."""
    basic: dict[str, str] | None = None
    if args.basic_auth_user is not None:
        basic = {"username": args.basic_auth_user}
        if args.basic_auth_password_env is not None:
            basic["password_env"] = args.basic_auth_password_env
        if args.basic_auth_password_file is not None:
            basic["password_file"] = args.basic_auth_password_file
    elif args.basic_auth_password_env is not None or args.basic_auth_password_file is not None:
        raise SpecError("--basic-auth-password-env/-file need --basic-auth-user")
    tls: dict[str, Any] | None = None
    if args.ca_file is not None or args.insecure_skip_verify:
        tls = {"ca_file": args.ca_file, "insecure_skip_verify": args.insecure_skip_verify}
    fields: dict[str, Any] = {
        "bearer_token_env": args.bearer_token_env,
        "bearer_token_file": args.bearer_token_file,
        "basic_auth": basic,
        "tls": tls,
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    if not fields:
        return None
    if args.scrape is not None:
        raise SpecError("credential and TLS flags apply to --prometheus-url, not --scrape")
    try:
        return PrometheusAccess.model_validate(fields)
    except ValidationError as exc:
        raise spec_error(exc, rename=ACCESS_FLAGS) from None


async def _collect(args: argparse.Namespace) -> DynamoMetricsResult:
    if args.scrape is not None:
        if args.start is not None or args.end is not None:
            raise SpecError("--scrape measures from now on: use --last, not --start/--end")
        seconds = parse_duration(args.last or DEFAULT_LAST)
        scrape = ScrapeBackend(args.scrape, timeout_s=args.timeout)
        await scrape.mark_start()
        if (reason := scrape.unreachable_at_start) is not None:
            raise MetricsError(" ".join(reason.split()))  # before a window that cannot be read
        start = time.time()
        print(waiting_line(seconds, start), file=sys.stderr, flush=True)
        await asyncio.sleep(seconds)
        return await scrape.collect(start, time.time())
    start, end = window_from_args(args, time.time())
    backend = PrometheusBackend(
        args.prometheus_url, timeout_s=args.timeout, access=access_from_args(args)
    )
    await backend.check_api()  # a URL that is no Prometheus: one line now, not a bounded wait
    return await backend.collect(start, end)


def waiting_line(seconds: float, start: float) -> str:
    """What `--scrape` says before it waits `seconds` from unix time `start`. Pure."""
    until = time.strftime("%H:%M:%S", time.localtime(start + seconds))
    return (
        f"dynamo-tune: measuring /metrics from now for {seconds:g} s, until {until} "
        "(--last sets how long)"
    )


def _check_urls(args: argparse.Namespace) -> None:
    flag = "--prometheus-url" if args.prometheus_url else "--scrape"
    for url in [args.prometheus_url] if args.prometheus_url else args.scrape:
        if url_has_credentials(url):  # not echoed: the URL holds a secret
            raise SpecError(
                f"{flag}: credentials in the URL are not accepted: use --basic-auth-user with "
                "--basic-auth-password-env/-file, or --bearer-token-env/-file"
            )
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
    """Collect, print, exit 0 (also when incomplete: the output says what is missing);
    `FAULT_EXIT` after the output when the source did not measure the window."""
    options = score_config(args).score_kwargs()
    if not args.timeout > 0:
        raise SpecError(f"--timeout must be > 0, but got {args.timeout}")
    _check_urls(args)
    access_from_args(args)  # flag errors before any network wait
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
        _emit(json.dumps(payload, indent=1, sort_keys=True))
    else:
        _emit(render_text(result, score))
    if result.fault is not None:
        message = " ".join(result.fault.split())
        print(f"dynamo-tune: error: the window was not measured: {message}", file=sys.stderr)
        return FAULT_EXIT
    return 0


def _emit(text: str) -> None:
    """Print `text` to stdout; a reader that closed it (`| head`) ends the command quietly:
    stdout goes to /dev/null (so the interpreter's last flush cannot fail again) and the exit
    is `BROKEN_PIPE_EXIT`, without a traceback."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(BROKEN_PIPE_EXIT) from None


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
