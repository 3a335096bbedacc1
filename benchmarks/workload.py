"""How fast the workload runner can drive a frontend: client-side limits on this machine.

Starts a trivial streaming chat server as a separate process on loopback,
runs the real runner (open-loop Poisson arrivals, `make_workload` + `run`) at increasing
request rates, and prints per rate: achieved requests/s, client CPU per request (the client's
overhead; its inverse is what one core can drive), p50/p99 scheduling lag (send time minus
due time) and failures. `--pin` puts the client on CPU 0 and the server on CPU 1 (only
sensible on an otherwise idle machine). A rate is "sustained" when >= 95 % of it completes
per second of the window, nothing fails and the p50 lag stays under 5 ms.
Goal: >= 100 requests/s with 32 streamed tokens each.

    uv run python benchmarks/workload.py [--rates 50,100,...] [--itl-ms 0,2] [--pin]
    uv run python benchmarks/workload.py serve --port P    # the server alone
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.net import LOOPBACK, free_port, loopback_url
from dynamo_tune.process import ManagedProcess
from dynamo_tune.workload import AgenticWorkloadSpec, PrefixHints, make_workload

# ---------------------------------------------------------------- the trivial server


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class StreamServer(asyncio.Protocol):
    """HTTP/1.1 keep-alive; POST streams `tokens` SSE chunks `itl_s` apart, then usage."""

    tokens = 32
    itl_s = 0.002

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            if head.startswith("GET"):
                reply = b'{"object":"list","data":[{"id":"tiny"}]}'
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(reply), reply)
                )
            else:
                asyncio.get_running_loop().create_task(self.stream(body))

    async def stream(self, body: bytes) -> None:
        prompt = sum(len(m["content"].split()) for m in json.loads(body)["messages"])
        write = self.transport.write
        write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for i in range(self.tokens):
            await asyncio.sleep(self.itl_s)
            event = b'data: {"choices":[{"index":0,"delta":{"content":" w%d"}}]}\n\n' % i
            write(_chunk(event))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": self.tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        write(_chunk(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"))
        write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")


async def serve(port: int, tokens: int, itl_s: float) -> None:
    StreamServer.tokens = tokens
    StreamServer.itl_s = itl_s
    server = await asyncio.get_running_loop().create_server(StreamServer, LOOPBACK, port)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- the benchmark


def pin(cpu: int) -> None:
    """Pin this process to `cpu` when the machine has it (Linux)."""
    with contextlib.suppress(AttributeError, OSError):
        if cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {cpu})


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/v1/models")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"benchmark server at {url} did not come up")


async def one_rate(url: str, rate: float, seconds: float, tokens: int) -> dict[str, float]:
    spec = AgenticWorkloadSpec(
        sessions=max(1, round(rate * seconds)),
        turns=1,
        rate=rate,
        seed=1,
        system_prompt_tokens=32,
        session_context_tokens=16,
        appended_tokens=16,
        output_tokens=tokens,
        request_timeout_s=30,
    )
    workload = make_workload(spec, block_size=16)
    cpu = time.process_time()
    report = await workload.run(Endpoints(frontend_url=url, model="tiny"), PrefixHints())
    cpu = time.process_time() - cpu
    window = report.window_end - report.window_start
    return {
        "rate": rate,
        "achieved": report.requests_ok / window if window > 0 else 0.0,
        "failed": report.requests_failed,
        "cpu_ms": 1000 * cpu / max(1, report.requests_sent),
        "lag_p50_ms": 1000 * (report.scheduling_lag_p50_seconds or 0.0),
        "lag_p99_ms": 1000 * (report.scheduling_lag_p99_seconds or 0.0),
        "ttft_p50_ms": 1000 * (report.client_ttft_p50_seconds or 0.0),
        "tokens_per_request": report.output_tokens / max(1, report.requests_ok),
    }


def sustained(row: dict[str, float]) -> bool:
    return row["failed"] == 0 and row["achieved"] >= 0.95 * row["rate"] and row["lag_p50_ms"] < 5


async def wakeup_floor(n: int = 2000) -> float:
    """CPU seconds one bare asyncio wakeup costs on this machine (a 2 ms sleep each)."""
    cpu = time.process_time()
    for _ in range(n):
        await asyncio.sleep(0.002)
    return (time.process_time() - cpu) / n


def sweep(args: argparse.Namespace, itl_ms: float) -> float:
    """One server with `itl_ms` between tokens, every rate; return the highest sustained."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="dt-bench-")) / "server.log"
    server = ManagedProcess(
        "bench-server",
        [sys.executable, __file__, "serve", "--port", str(port), "--tokens", str(args.tokens),
         "--itl-ms", str(itl_ms)] + (["--pin"] if args.pin else []),
        log,
    )  # fmt: skip
    server.start()
    url = loopback_url(port)
    best = 0.0
    try:
        asyncio.run(wait_up(url))
        print(f"\nserver: {args.tokens} tokens/request, {itl_ms} ms apart (separate process)")
        print(
            "rate/s  achieved/s  failed  client-cpu/req  1-core cap  lag p50   lag p99  "
            "ttft p50  sustained"
        )
        for rate in (float(r) for r in args.rates.split(",")):
            row = asyncio.run(one_rate(url, rate, args.seconds, args.tokens))
            good = sustained(row)
            best = max(best, rate) if good else best
            print(
                f"{rate:6.0f}  {row['achieved']:10.1f}  {row['failed']:6.0f}  "
                f"{row['cpu_ms']:11.2f} ms  {1000 / row['cpu_ms']:8.0f}/s  "
                f"{row['lag_p50_ms']:5.2f} ms  "
                f"{row['lag_p99_ms']:5.2f} ms  {row['ttft_p50_ms']:5.1f} ms  "
                f"{'yes' if good else 'no'}"
            )
        print(f"highest sustained rate: {best:.0f} requests/s ({itl_ms} ms between tokens)")
    finally:
        server.stop()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rates", default="50,100,150,200,300")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--itl-ms", default="0,2", help="Server gaps between tokens (list)")
    parser.add_argument("--pin", action="store_true", help="Pin client to CPU 0, server to 1")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        if args.pin:
            pin(1)
        asyncio.run(serve(args.port, args.tokens, float(args.itl_ms) / 1000))
        return 0
    if args.pin:
        pin(0)
    with open("/proc/loadavg") as load:
        print(f"machine: {os.cpu_count()} CPUs, load average {load.read().split()[0]} (shared)")
    floor = asyncio.run(wakeup_floor())
    print(
        f"client: {'pinned to CPU 0' if args.pin else 'not pinned'}; "
        f"one bare asyncio wakeup costs {floor * 1e3:.3f} ms CPU "
        f"(a request with {args.tokens} spaced tokens needs >= {args.tokens + 3})"
    )
    for itl in args.itl_ms.split(","):
        sweep(args, float(itl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
