"""Score noise over full and steady windows, and client/server agreement in the steady one.

Builds a study file's deployment, workload and metrics backend with dynamo_tune's own
classes (`make_deployment`, `make_workload`, `make_candidate`, `metrics_backend`) and measures
three router configurations N times each, interleaved round by round, the way a trial does
(`study/trial/objective.py`): apply (the study's isolation), wait_ready, quiet gap after the
previous run's last traffic, mark start, workload, health check, collect. The workload runs
with the study's steady window (`window: {mode: steady}`; the defaults if the study measures
full windows), and each run is collected twice by the study's Prometheus backend, over the
same traffic (paired):

- `full`: first request sent -> last finished (`traffic_start` -> `traffic_end`);
- `steady`: the window the workload reported (`window_start` -> `window_end`).

The score is `DynamoCoreMetrics.to_optimization_score` with the study's weights and targets.
Printed: per configuration and window the score's mean and sd with the ranges of TTFT p95,
KVE, ITL p95 and the window's length; per window Welch's 95 % interval of
agentic - credit 2 / scale 8; and the steady window's client truth against the server
(TTFT p95, KVE, ITL p95, and whether the requests with a first token, the input tokens and
the cached tokens the frontend counted equal the client's counts exactly).

`--json FILE` keeps every run: the workload report (with every request's moments) and the
frontend's raw samples of the TTFT and ITL buckets, input and cached tokens over the run, so
other window rules can be evaluated offline; `--summary FILE` prints the summary of one.

    uv run python benchmarks/steady_window.py [studies/quickstart.yaml] [--repeats 5]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from dynamo_tune.deploy import make_deployment
from dynamo_tune.deploy.base import Deployment
from dynamo_tune.metrics import DynamoMetricsResult, PrometheusBackend
from dynamo_tune.study.confirmation.confidence import welch_interval
from dynamo_tune.study.run.services import metrics_backend
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.spec.space import make_candidate
from dynamo_tune.workload import make_workload
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.window import WindowSpec

CONFIGS: dict[str, dict[str, Any]] = {
    "round-robin": {"router.mode": "round-robin"},
    "agentic": {
        "router.mode": "kv",
        "router.overlap_score_credit": 2.0,
        "router.prefill_load_scale": 4.0,
        "router.decode_active_request_weight": 64.0,
    },
    "credit2/scale8": {
        "router.mode": "kv",
        "router.overlap_score_credit": 2.0,
        "router.prefill_load_scale": 8.0,
        "router.temperature": 0.0,
    },
}
PAIR = ("agentic", "credit2/scale8")
WINDOWS = ("full", "steady")
RAW_SERIES = (
    "dynamo_frontend_time_to_first_token_seconds_bucket",
    "dynamo_frontend_inter_token_latency_seconds_bucket",
    "dynamo_frontend_input_sequence_tokens_sum",
    "dynamo_frontend_cached_tokens_sum",
)
COUNTS = {  # client count in the report -> the frontend series that counts the same
    "window_requests": "dynamo_frontend_time_to_first_token_seconds_count",
    "prompt_tokens": "dynamo_frontend_input_sequence_tokens_sum",
    "cached_tokens": "dynamo_frontend_cached_tokens_sum",
}


def steady_spec(spec: StudySpec) -> WindowSpec:
    """The study's window if it is steady, else a steady window with the defaults."""
    window = getattr(spec.workload, "window", None)
    if isinstance(window, WindowSpec) and window.mode == "steady":
        return window
    return WindowSpec(mode="steady")


def score(result: DynamoMetricsResult, spec: StudySpec) -> dict[str, float | None]:
    core = result.get_core_metrics()
    return {
        "score": core.to_optimization_score(**spec.objective.score_kwargs()),
        "ttft_p95": core.ttft_p95_seconds,
        "kve": core.get_effective_kv_efficiency(),
        "itl_p95": core.itl_p95_seconds,
    }


async def raw_samples(
    prometheus_url: str, series: Sequence[str], since: float, until: float
) -> dict[str, list[dict[str, Any]]]:
    """Every raw sample of the frontend's `series` in `[since, until]`, per label set."""
    out: dict[str, list[dict[str, Any]]] = {}
    span_ms = int((until - since) * 1000) + 1
    async with httpx.AsyncClient(timeout=30) as client:
        for name in series:
            answer = await client.get(
                f"{prometheus_url}/api/v1/query",
                params={"query": f"{name}[{span_ms}ms]", "time": str(until)},
            )
            result = answer.json()["data"]["result"]
            out[name] = [
                {"labels": r["metric"], "values": [[float(t), float(v)] for t, v in r["values"]]}
                for r in result
                if r["metric"].get("component", "frontend") == "frontend"
            ]
    return out


async def measure(
    deployment: Deployment, spec: StudySpec, values: dict[str, Any], last: float | None
) -> tuple[dict[str, Any], float]:
    """One measurement of `values` in a trial's order, collected over both windows."""
    workload_spec = spec.workload.model_copy(update={"window": steady_spec(spec)})
    candidate = make_candidate(values, spec.deployment.router, workload_spec)
    await deployment.apply(candidate.router)
    await deployment.wait_ready()
    endpoints = deployment.endpoints()
    if last is not None:
        await asyncio.sleep(max(0.0, last + endpoints.quiet_gap_seconds() - time.time()))
    backend = metrics_backend(spec.metrics, endpoints)
    if not isinstance(backend, PrometheusBackend) or endpoints.prometheus_url is None:
        raise SystemExit("this benchmark collects two windows of each run: it needs Prometheus")
    await backend.mark_start()
    workload = make_workload(candidate.workload, block_size=spec.deployment.block_size)
    report = await workload.run(endpoints, candidate.hints)
    fault = await deployment.check_health()
    if fault is not None:
        raise RuntimeError(f"the deployment broke during the workload: {fault}")
    bounds = {
        "full": (report.traffic_start or report.window_start, report.last_traffic),
        "steady": (report.window_start, report.window_end),
    }
    collected = {}
    for name in WINDOWS:
        collected[name] = score(await backend.collect(*bounds[name]), spec)
    start, end = bounds["steady"]
    counts = await raw_samples(
        endpoints.prometheus_url, list(COUNTS.values()), start - 3.0, end + 3.0
    )
    raw = await raw_samples(
        endpoints.prometheus_url, RAW_SERIES, bounds["full"][0] - 3.0, bounds["full"][1] + 3.0
    )
    run = {
        "bounds": bounds,
        "collected": collected,
        "client": client_numbers(report),
        "server_counts": {k: window_delta(counts[COUNTS[k]], start, end) for k in COUNTS},
        "report": report.model_dump(mode="json"),
        "raw": raw,
    }
    return run, report.last_traffic


def window_delta(series: list[dict[str, Any]], start: float, end: float) -> float | None:
    """Sum over label sets of (first sample after `end`) - (last sample at or before `start`):
    the collector's edges (no sample before the start counts from 0)."""
    total = 0.0
    for s in series:
        before = [v for t, v in s["values"] if t <= start]
        after = [v for t, v in s["values"] if t > end]
        if not after:
            return None
        total += after[0] - (before[-1] if before else 0.0)
    return total


def client_numbers(report: WorkloadReport) -> dict[str, float | None]:
    return {
        "ttft_p95": report.client_ttft_p95_seconds,
        "kve": report.client_kve,
        "itl_p95": report.client_itl_p95_seconds,
        "window_requests": report.window_requests,
        "prompt_tokens": report.prompt_tokens,
        "cached_tokens": report.cached_tokens,
    }


def sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def _range(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{min(known):.3f}..{max(known):.3f}" if known else "-"


def print_summary(results: dict[str, list[dict[str, Any]]]) -> None:
    print("\nscore per window and configuration: mean +- sd (min..max) over the runs")
    for name in WINDOWS:
        for config, runs in results.items():
            got = [r["collected"][name] for r in runs]
            scores = [g["score"] for g in got if g["score"] is not None]
            if not scores:
                continue
            length = statistics.mean(r["bounds"][name][1] - r["bounds"][name][0] for r in runs)
            print(
                f"  {name:<6} {config:<15} n={len(scores)} {statistics.mean(scores):.4f} "
                f"+- {sd(scores):.4f} ({min(scores):.3f}..{max(scores):.3f})  "
                f"ttft_p95 {_range([g['ttft_p95'] for g in got])}  "
                f"kve {_range([g['kve'] for g in got])}  "
                f"itl_p95 {_range([g['itl_p95'] for g in got])}  window {length:.1f} s"
            )
    print(f"\n{PAIR[0]} - {PAIR[1]}: Welch's 95 % interval of the score difference")
    for name in WINDOWS:
        groups = [
            [s for r in results.get(c, []) if (s := r["collected"][name]["score"]) is not None]
            for c in PAIR
        ]
        if min(len(g) for g in groups) < 2:
            continue
        d = welch_interval(groups[0], groups[1])
        verdict = "told apart" if d.low > 0 or d.high < 0 else "not told apart"
        print(f"  {name:<6} {d.diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}]  {verdict}")
    print("\nsteady window, server vs client (per run; TTFT and ITL p95: server/client - 1)")
    ttft, kve, itl, exact, notes = [], [], [], 0, 0
    runs = [r for rs in results.values() for r in rs]
    for r in runs:
        server, client = r["collected"]["steady"], r["client"]
        if server["ttft_p95"] and client["ttft_p95"]:
            ttft.append(server["ttft_p95"] / client["ttft_p95"] - 1)
        if server["kve"] is not None and client["kve"] is not None:
            kve.append(server["kve"] - client["kve"])
        if server["itl_p95"] and client["itl_p95"]:
            itl.append(server["itl_p95"] / client["itl_p95"] - 1)
        exact += all(r["server_counts"][k] == client[k] for k in COUNTS)
        notes += r["report"]["window_note"] is not None
    print(
        f"  TTFT p95 {_spread(ttft, '%')}  KVE {_spread(kve, '')}  ITL p95 {_spread(itl, '%')}\n"
        f"  first tokens, input and cached tokens equal in {exact} of {len(runs)} runs; "
        f"{notes} runs with a window note"
    )


def _spread(values: Sequence[float], unit: str) -> str:
    if not values:
        return "-"
    worst = max(values, key=abs)
    if unit == "%":
        return f"mean {statistics.mean(values):+.1%} worst {worst:+.1%}"
    return f"mean {statistics.mean(values):+.4f} worst {worst:+.4f}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


async def bench(study: Path, repeats: int, out: Path | None) -> None:
    spec = load_spec(study).spec
    deployment = make_deployment(spec.deployment)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    await deployment.start()
    last: float | None = None
    try:
        for round_ in range(repeats):
            for name, values in CONFIGS.items():
                t0 = time.monotonic()
                run, last = await measure(deployment, spec, values, last)
                results[name].append(run)
                scores = "  ".join(
                    f"{k} {_fmt(run['collected'][k]['score'])} "
                    f"({run['bounds'][k][1] - run['bounds'][k][0]:.1f} s)"
                    for k in WINDOWS
                )
                note = run["report"]["window_note"]
                took = time.monotonic() - t0
                print(
                    f"round {round_ + 1} {name:<15} {scores}  [{took:.0f} s]"
                    + (f"  note: {note}" if note else ""),
                    flush=True,
                )
                if out is not None:
                    out.write_text(json.dumps(results))
    finally:
        await deployment.stop()
    print_summary(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("study", nargs="?", type=Path, default=Path("studies/quickstart.yaml"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="Keep every run's data here")
    parser.add_argument("--summary", type=Path, default=None, help="Summarize a --json file")
    args = parser.parse_args()
    if args.summary is not None:
        print_summary(json.loads(args.summary.read_text()))
        return
    asyncio.run(bench(args.study, args.repeats, args.json))


if __name__ == "__main__":
    main()
