"""How exactly the workload client keeps and measures time on this machine: the numbers the
tests no longer bound (they assert order: tests/test_workload_runner.py,
tests/test_workload_transport.py).

Starts the trivial streaming server of `benchmarks/workload.py` as a separate process on
loopback and runs the real runner (`make_workload` + `run`) against it, printing per run:

- token timing: the client's inter-token gaps (p50, p99) against the server's spacing of
  `--itl-ms` (sequential requests; the difference is client + server scheduling);
- think time: how much later than `previous turn's end + think time` each turn was sent
  (p50, p99, max over every session's turns; the tests only assert "not earlier");
- open-loop lag: scheduling lag (send time minus due time, p50 / p99) of Poisson arrivals at
  `--rate` while every response streams for ~`--hold-ms` (the tests assert the arrivals kept
  coming while every earlier stream was held, and their order).

    uv run python benchmarks/timing.py [--runs 3] [--itl-ms 20] [--think-ms 100]
        [--rate 100] [--hold-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import workload as bench_workload  # benchmarks/workload.py: its server and `wait_up`

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.net import free_port, loopback_url
from dynamo_tune.process import ManagedProcess
from dynamo_tune.workload import AgenticWorkloadSpec, PrefixHints, make_workload
from dynamo_tune.workload.summary import percentile


def ms(seconds: float | None) -> str:
    return "   n/a" if seconds is None else f"{seconds * 1000:6.2f}"


def signed_ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:+.2f}"


def spec(**fields: object) -> AgenticWorkloadSpec:
    base: dict[str, object] = {
        "system_prompt_tokens": 16,
        "session_context_tokens": 16,
        "appended_tokens": 8,
        "output_tokens": 4,
        "request_timeout_s": 30,
        "seed": 1,
    }
    return AgenticWorkloadSpec.model_validate({**base, **fields})


async def token_timing(url: str, itl_s: float, tokens: int) -> str:
    """Sequential requests: the client's gaps between tokens the server spaces by `itl_s`."""
    report = await make_workload(
        spec(sessions=20, turns=1, concurrency=1, output_tokens=tokens), block_size=16
    ).run(Endpoints(frontend_url=url, model="tiny"), PrefixHints())
    p50, p99 = report.client_itl_p50_seconds, report.client_itl_p99_seconds
    over50 = None if p50 is None else p50 - itl_s
    over99 = None if p99 is None else p99 - itl_s
    return f"gap p50 {ms(p50)} ms ({signed_ms(over50)}), p99 {ms(p99)} ms ({signed_ms(over99)})"


async def think_time(url: str, think_s: float) -> str:
    """Closed-loop sessions: how late each turn went after `end of previous + think_s`."""
    report = await make_workload(
        spec(sessions=8, turns=6, concurrency=8, think_time_s=think_s), block_size=16
    ).run(Endpoints(frontend_url=url, model="tiny"), PrefixHints())
    by_session: dict[str, list[tuple[int, float, float]]] = {}
    for r in report.records:
        if r.e2e_s is not None:
            by_session.setdefault(r.session, []).append((r.turn, r.sent, r.e2e_s))
    late = []
    for turns in by_session.values():
        turns.sort()
        for (_, sent0, e2e0), (_, sent1, _) in zip(turns, turns[1:], strict=False):
            late.append(sent1 - (sent0 + e2e0) - think_s)
    if not late:
        return "no turn pairs measured"
    return (
        f"late by p50 {ms(percentile(late, 50))} ms, p99 {ms(percentile(late, 99))} ms, "
        f"max {ms(max(late))} ms ({len(late)} turns)"
    )


async def open_loop(url: str, rate: float) -> str:
    """Poisson arrivals at `rate` per second while responses stream slowly."""
    sessions = max(20, round(rate * 2))
    report = await make_workload(spec(sessions=sessions, turns=1, rate=rate), block_size=16).run(
        Endpoints(frontend_url=url, model="tiny"), PrefixHints()
    )
    return (
        f"lag p50 {ms(report.scheduling_lag_p50_seconds)} ms, "
        f"p99 {ms(report.scheduling_lag_p99_seconds)} ms "
        f"({report.requests_ok}/{report.requests_sent} ok)"
    )


def with_server(tokens: int, itl_ms: float, log_dir: Path) -> tuple[ManagedProcess, str]:
    """The streaming server of benchmarks/workload.py, started and answering."""
    port = free_port()
    server = ManagedProcess(
        f"timing-server-{port}",
        [sys.executable, bench_workload.__file__, "serve", "--port", str(port),
         "--tokens", str(tokens), "--itl-ms", str(itl_ms)],
        log_dir / f"server-{port}.log",
    )  # fmt: skip
    server.start()
    url = loopback_url(port)
    try:
        asyncio.run(bench_workload.wait_up(url))
    except BaseException:
        server.stop()
        raise
    return server, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--itl-ms", type=float, default=20.0, help="Server gap between tokens")
    parser.add_argument("--tokens", type=int, default=8, help="Tokens per timed request")
    parser.add_argument("--think-ms", type=float, default=100.0)
    parser.add_argument("--rate", type=float, default=100.0, help="Open-loop requests/s")
    parser.add_argument("--hold-ms", type=float, default=300.0, help="Open-loop stream length")
    args = parser.parse_args(argv)
    with open("/proc/loadavg") as load:
        print(f"machine: {os.cpu_count()} CPUs, load average {load.read().split()[0]} (shared)")
    log_dir = Path(tempfile.mkdtemp(prefix="dt-timing-"))

    print(f"\ntoken timing: server spaces {args.tokens} tokens {args.itl_ms} ms apart")
    server, url = with_server(args.tokens, args.itl_ms, log_dir)
    try:
        for run in range(args.runs):
            line = asyncio.run(token_timing(url, args.itl_ms / 1000, args.tokens))
            print(f"  run {run + 1}: {line}")
    finally:
        server.stop()

    print(f"\nthink time: {args.think_ms} ms between a turn's end and the next turn")
    server, url = with_server(4, 0.0, log_dir)
    try:
        for run in range(args.runs):
            print(f"  run {run + 1}: {asyncio.run(think_time(url, args.think_ms / 1000))}")
    finally:
        server.stop()

    hold_tokens = 30
    print(f"\nopen loop: {args.rate:g} requests/s, each streaming ~{args.hold_ms:g} ms")
    server, url = with_server(hold_tokens, args.hold_ms / hold_tokens, log_dir)
    try:
        for run in range(args.runs):
            print(f"  run {run + 1}: {asyncio.run(open_loop(url, args.rate))}")
    finally:
        server.stop()
    print(f"\nserver logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
