"""Re-evaluate saved `steady_window.py` runs with a study file's current window and score.

Each run saved with `steady_window.py --json` keeps every request's moments and the frontend's
raw samples (TTFT and ITL buckets, input and cached token sums) over the whole run. This script
chooses both windows again with `dynamo_tune`'s own rule (`choose_window`, the study's
`workload.window`; the defaults of a steady window if the study measures full windows),
computes what the exact-window collector would have read over them (each series' last sample
at or before the start to its first sample after the end, `histogram_quantile`) and the score
with the study's weights and targets, and prints `steady_window.py`'s summary. Several files
are pooled (same configurations, more runs each).

    uv run python benchmarks/steady_window_offline.py studies/quickstart.yaml runs1.json [...]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steady_window import COUNTS, print_summary, steady_spec

from dynamo_tune.metrics import DynamoCoreMetrics, histogram_quantile
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.workload import make_workload
from dynamo_tune.workload.record import RequestRecord
from dynamo_tune.workload.summary import workload_report
from dynamo_tune.workload.window import Window, choose_window
from dynamo_tune.workload.workloads import PlannedWorkload

TTFT = "dynamo_frontend_time_to_first_token_seconds_bucket"
ITL = "dynamo_frontend_inter_token_latency_seconds_bucket"
INPUT = "dynamo_frontend_input_sequence_tokens_sum"
CACHED = "dynamo_frontend_cached_tokens_sum"


def as_record(o: dict[str, Any]) -> RequestRecord:
    """A record with a saved outcome's moments (no token times: client ITL is not redone)."""
    return RequestRecord(
        index=o["index"],
        session=o["session"],
        turn=o["turn"],
        due=o["sent"],
        sent=o["sent"],
        first_token=None if o["ttft_s"] is None else o["sent"] + o["ttft_s"],
        end=None if o["e2e_s"] is None else o["sent"] + o["e2e_s"],
        prompt_tokens=o["prompt_tokens"],
        cached_tokens=o["cached_tokens"],
        output_tokens=o["output_tokens"],
        cause=o["cause"],
        error=o["error"],
    )


def deltas(series: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    """Per `le` (or "" for a sum), the difference of each label set's samples from the last at
    or before `start` to the first after `end`, counting only samples after its last reset
    (the frontend restarted before the run)."""
    out: dict[str, float] = {}
    for s in series:
        values = s["values"]
        resets = [i for i in range(1, len(values)) if values[i][1] < values[i - 1][1]]
        values = values[max(resets, default=0) :]
        before = [v for t, v in values if t <= start]
        after = [v for t, v in values if t > end]
        if not after:
            raise ValueError(f"no sample after the window end {end}")
        key = s["labels"].get("le", "")
        out[key] = out.get(key, 0.0) + after[0] - (before[-1] if before else 0.0)
    return out


def server(raw: dict[str, Any], spec: StudySpec, start: float, end: float) -> dict[str, Any]:
    """The score, TTFT p95, KVE and ITL p95 the collector reads over `[start, end]`."""

    def p95(name: str) -> float:
        buckets = [(float(le), count) for le, count in deltas(raw[name], start, end).items()]
        return histogram_quantile(0.95, buckets)

    prompt = sum(deltas(raw[INPUT], start, end).values())
    cached = sum(deltas(raw[CACHED], start, end).values())
    core = DynamoCoreMetrics(
        kv_efficiency=cached / prompt if prompt > 0 else None,
        ttft_p95_seconds=p95(TTFT),
        itl_p95_seconds=p95(ITL),
    )
    return {
        "score": core.to_optimization_score(**spec.objective.score_kwargs()),
        "ttft_p95": core.ttft_p95_seconds,
        "kve": core.kv_efficiency,
        "itl_p95": core.itl_p95_seconds,
        "counts": {
            "window_requests": deltas(raw[TTFT], start, end).get("+Inf", 0.0),
            "prompt_tokens": prompt,
            "cached_tokens": cached,
        },
    }


def rescored(run: dict[str, Any], spec: StudySpec, closed_loop: bool) -> dict[str, Any]:
    """`run` with both windows chosen again and collected from its raw samples."""
    report = run["report"]
    records = [as_record(o) for o in report["records"]]
    full = (report["traffic_start"], max(report["traffic_end"], report["window_end"]))
    steady = choose_window(records, steady_spec(spec), closed_loop=closed_loop, fallback=full)
    bounds = {"full": full, "steady": (steady.start, steady.end)}
    collected = {name: server(run["raw"], spec, *edges) for name, edges in bounds.items()}
    client = workload_report(
        records,
        kve_ceiling=None,
        max_failure_ratio=1.0,
        fallback_window=full,
        window=Window(steady.start, steady.end, steady.mode),
    )
    return {
        "bounds": bounds,
        "collected": collected,
        "client": {
            "ttft_p95": client.client_ttft_p95_seconds,
            "kve": client.client_kve,
            "itl_p95": None,
            **{k: getattr(client, k) for k in COUNTS},
        },
        "server_counts": collected["steady"].pop("counts"),
        "report": {"window_note": steady.note},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("runs", type=Path, nargs="+", help="steady_window.py --json files")
    args = parser.parse_args(argv)
    spec = load_spec(args.study).spec
    workload = make_workload(spec.workload, block_size=spec.deployment.block_size)
    plan = workload.plan if isinstance(workload, PlannedWorkload) else []
    closed_loop = all(r.offset_s is None for r in plan if not r.after)
    pooled: dict[str, list[dict[str, Any]]] = {}
    for path in args.runs:
        for config, runs in json.loads(path.read_text()).items():
            pooled.setdefault(config, []).extend(rescored(r, spec, closed_loop) for r in runs)
    print_summary(pooled)


if __name__ == "__main__":
    main()
