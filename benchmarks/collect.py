"""Benchmark: latency of a windowed `PrometheusBackend.collect()`, concurrent vs one at a time.

Starts a private Prometheus (1 s scrape) and three exporters serving the real Dynamo 1.6.1
`/metrics` captures (one frontend, two mocker workers) with every sample value growing over
time, so every window holds real, non-zero differences on Dynamo's real series layout.
Then measures, median of N runs each (interleaved):

- the query phase of a windowed collect() (all queries, after the end-of-window wait) with
  `concurrency=8` and with `concurrency=1`, and their ratio;
- separately, the end-of-window scrape wait of a live window (end = now).

With `--rtt-ms R` the same is measured again through a local proxy adding R ms of round
trip, as for a Prometheus on another host: on loopback with 2 shared cores the client's own
CPU time dominates and concurrency cannot hide much.

Usage: uv run python benchmarks/collect.py [--runs 20] [--rtt-ms 10] [--reference DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dynamo_tune.deploy.prometheus import PrometheusServer
from dynamo_tune.metrics import (
    DEFAULT_TIMEOUT_S,
    METRIC_REGISTRY,
    PrometheusAPI,
    PrometheusBackend,
    new_client,
    window_delta_query,
)
from dynamo_tune.net import LOOPBACK, free_port

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
"""The real /metrics captures: `../shared/reference` beside the repository (what they export:
docs/architecture.md#metric-names)."""
FILES = {
    "frontend": "dynamo-1.6.1-frontend-kv-router.metrics.txt",
    "worker-0": "dynamo-1.6.1-mocker-worker.metrics.txt",
    "worker-1": "dynamo-1.6.1-mocker-worker.metrics.txt",
}


def scaled(text: str, factor: float) -> str:
    """`text` with every sample value multiplied by `factor` (counters stay monotonic)."""
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            line = f"{head} {float(value) * factor:.6f}"
        lines.append(line)
    return "\n".join(lines) + "\n"


class GrowingExporter:
    """Serves a capture on 127.0.0.1 whose values grow by 10 % of the capture per second."""

    def __init__(self, text: str) -> None:
        began = time.time()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = scaled(text, 1.0 + 0.1 * (time.time() - began)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DelayProxy:
    """A TCP proxy on 127.0.0.1 adding `rtt_s / 2` to each direction: a "remote" Prometheus."""

    def __init__(self, target_port: int, rtt_s: float) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                await asyncio.sleep(rtt_s / 2)
                dst.write(data)
                await dst.drain()
            dst.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(LOOPBACK, target_port)
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            except (asyncio.CancelledError, ConnectionError):  # shutdown, or a peer left
                writer.close()

        async def serve() -> None:
            self.server = await asyncio.start_server(handle, LOOPBACK, self.port)
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self.loop)
        ready.wait(5)

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


async def timed_collect(
    backend: PrometheusBackend, start: float, end: float
) -> tuple[float, float]:
    """(query-phase seconds, scrape-wait seconds) of one collect()."""
    began = time.perf_counter()
    result = await backend.collect(start, end)
    total = time.perf_counter() - began
    if result.errors or result.ttft_p95 is None:
        raise RuntimeError(f"collect() did not see the data: {result.errors}")
    wait = result.scrape_wait_seconds or 0.0
    return total - wait, wait


async def bench(url: str, runs: int, label: str) -> None:
    end = time.time() - 1.5
    start = end - 4.0
    concurrent = PrometheusBackend(url, concurrency=8)
    sequential = PrometheusBackend(url, concurrency=1)
    phases: dict[str, list[float]] = {"concurrent": [], "sequential": []}
    for _ in range(2):  # warm-up (connection setup, Prometheus caches)
        await timed_collect(concurrent, start, end)
        await timed_collect(sequential, start, end)
    for _ in range(runs):
        phases["concurrent"].append((await timed_collect(concurrent, start, end))[0])
        phases["sequential"].append((await timed_collect(sequential, start, end))[0])
    waits = []
    for _ in range(5):
        live_end = time.time()
        waits.append((await timed_collect(concurrent, live_end - 4.0, live_end))[1])

    async with new_client(DEFAULT_TIMEOUT_S) as client:
        present = await PrometheusAPI(client, url).metric_names(
            [s.series for s in METRIC_REGISTRY], start - 1, end + 1
        )
    series = {s.series for s in METRIC_REGISTRY if s.kind != "gauge" and s.series in present}
    gauges = sum(1 for s in METRIC_REGISTRY if s.kind == "gauge" and s.series in present)
    conc = statistics.median(phases["concurrent"])
    seq = statistics.median(phases["sequential"])
    example = window_delta_query("x", 0, 4, 1)
    print(f"queries per windowed collect(): 1 metric-names + {len(series)} differences + "
          f"{gauges} gauges (of {len(METRIC_REGISTRY)} registry metrics, the rest absent "
          f"here), +2 for the end-of-window wait; e.g. {example!r}")  # fmt: skip
    print(f"{label}: median of {runs} runs, query phase (after the scrape wait):")
    print(f"  concurrent (8 in flight): {conc * 1000:8.1f} ms")
    print(f"  one at a time:            {seq * 1000:8.1f} ms")
    print(f"  ratio one-at-a-time / concurrent: {seq / conc:.2f}x")
    print(f"  concurrent p90: {statistics.quantiles(phases['concurrent'], n=10)[-1] * 1000:.1f} ms")
    print(f"end-of-window scrape wait, live window (end = now), median of 5: "
          f"{statistics.median(waits):.3f} s (min {min(waits):.3f}, max {max(waits):.3f}; "
          f"1 s scrape interval)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--reference",
        type=Path,
        default=REFERENCE,
        metavar="PATH",
        help="folder of the Dynamo 1.6.1 /metrics captures (default: %(default)s)",
    )
    parser.add_argument(
        "--rtt-ms", type=float, default=0.0, help="also measure through a proxy adding this RTT"
    )
    args = parser.parse_args()
    missing = sorted({f for f in FILES.values() if not (args.reference / f).is_file()})
    if not args.reference.is_dir():
        parser.exit(2, f"collect.py: error: no reference folder {args.reference} "
                       "(pass --reference PATH)\n")  # fmt: skip
    if missing:
        parser.exit(2, f"collect.py: error: {args.reference} lacks {', '.join(missing)} "
                       "(pass --reference PATH)\n")  # fmt: skip
    exporters = {
        name: GrowingExporter((args.reference / file).read_text()) for name, file in FILES.items()
    }
    with tempfile.TemporaryDirectory(prefix="dynamo-tune-bench-") as tmp:
        targets = {f"{LOOPBACK}:{e.port}": name for name, e in exporters.items()}
        server = PrometheusServer(Path(tmp), targets, scrape_interval_s=1.0)
        try:
            server.start()
            asyncio.run(server.wait_ready())
            asyncio.run(server.wait_targets_up(list(targets)))
            time.sleep(6)  # a few scrapes of growing counters
            asyncio.run(bench(server.url, args.runs, "direct (loopback)"))
            if args.rtt_ms > 0:
                proxy = DelayProxy(server.port, args.rtt_ms / 1000)
                try:
                    label = f"through a proxy adding {args.rtt_ms:g} ms RTT"
                    asyncio.run(bench(f"http://{LOOPBACK}:{proxy.port}", args.runs, label))
                finally:
                    proxy.stop()
        finally:
            server.stop()
            for exporter in exporters.values():
                exporter.stop()


if __name__ == "__main__":
    main()
