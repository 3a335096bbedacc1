"""How fast the local stack starts and restarts: cold start and frontend-only restart.

Cold start: a fresh 2-worker stack with its Prometheus, from `LocalStack.start()` to ready
(model listed, every worker in `/health`, every `/metrics` up) and to "scraped" (Prometheus has
scraped every target once). Frontend-only restart: `apply()` of a router change (isolation
none), to ready and to scraped. Median (and min/max) of N runs each.
Goals (issue 3): cold start to ready <= 10 s, frontend-only restart to ready <= 3 s.

    uv run python benchmarks/stack.py [--runs 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.deploy.tiny_model import ensure_tiny_model


def summary(name: str, values: list[float], goal: float | None = None) -> str:
    med = statistics.median(values)
    verdict = (
        "" if goal is None else f"  (goal <= {goal:.0f} s: {'met' if med <= goal else 'MISSED'})"
    )
    return (
        f"{name:<34} median {med:5.2f} s   min {min(values):5.2f}   max {max(values):5.2f}{verdict}"
    )


async def bench(runs: int, workers: int) -> None:
    ensure_tiny_model()  # generated once; not part of a start
    cold_ready, cold_total, fe_ready, fe_total = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        for i in range(runs):
            spec = LocalDeploymentSpec(
                workers=workers, prometheus=True, isolation="none", run_dir=Path(tmp) / f"s{i}"
            )
            stack = LocalStack(spec)
            try:
                t0 = time.monotonic()
                await stack.start()
                wall = time.monotonic() - t0
                cold_ready.append(stack.last_ready_s)
                cold_total.append(wall)
                # Frontend-only restart: a router change with isolation none.
                applied = await stack.apply(RouterConfig(temperature=0.1 * (i + 1)))
                assert applied.restarted == ["frontend"], applied.restarted
                fe_ready.append(stack.last_ready_s)
                fe_total.append(applied.restart_seconds)
                print(
                    f"run {i + 1}: cold ready {cold_ready[-1]:.2f} s (scraped {wall:.2f} s); "
                    f"frontend restart ready {fe_ready[-1]:.2f} s (scraped {fe_total[-1]:.2f} s)",
                    flush=True,
                )
            finally:
                await stack.stop()
    print()
    print(summary(f"cold start, {workers} workers, to ready", cold_ready, 10.0))
    print(summary("cold start, to scraped", cold_total))
    print(summary("frontend-only restart, to ready", fe_ready, 3.0))
    print(summary("frontend-only restart, to scraped", fe_total))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(bench(args.runs, args.workers))


if __name__ == "__main__":
    main()
