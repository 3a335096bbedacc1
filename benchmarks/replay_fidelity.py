"""Capture -> replay fidelity on the local stack: does a replayed capture load the deployment
like the traffic it was captured from?

1. Study A runs the quickstart's agentic load (session ids on, so the capture keeps its
   sessions) `--measurements` times on the quickstart's local stack with
   `deployment.request_trace` on: capture A.
2. The first run's records of capture A (runs are told apart by the restart gap) become
   `capture-run1.jsonl`; study B replays it (`workload: {kind: dynamo-trace}`) the same number
   of times on the same deployment and router, capturing again: capture B.
3. Printed: per-request input lengths (A run 1 vs B run 1, matched by session and order),
   the prefix-sharing structure (A's block hashes map one-to-one onto B's), the KVE ceiling of
   both captures (`trace summarize`), and the live KVE / TTFT p95 of both studies (mean, sd,
   Welch's 95 % interval of the difference).

    uv run python benchmarks/replay_fidelity.py [--sessions 48] [--measurements 3] [--keep DIR]

About 6 minutes with the defaults on 2 cores. `--keep DIR` keeps the captures (the study on
captured traffic, studies/captured-traffic.yaml, ships one made this way).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import optuna
import yaml

from dynamo_tune.study import build_services, run_study_file
from dynamo_tune.study.confirmation.confidence import welch_interval
from dynamo_tune.study.trial.record import TrialRecord
from dynamo_tune.workload.dynamo_trace import DynamoTraceRecord, TraceRead, read_dynamo_trace
from dynamo_tune.workload.trace_summary import summarize_trace

RUN_GAP_MS = 3000.0
"""Records further apart than this belong to different runs (a trial restarts the stack)."""

ROUTER = {"mode": "kv", "session_affinity_ttl_secs": 30, "session_affinity_mode": "soft"}


def study(name: str, workload: dict[str, Any], trace: Path, n: int) -> dict[str, Any]:
    return {
        "study": {
            "name": name,
            "storage": f"sqlite:///{name}.db",
            "n_trials": n,
            "sampler": {"name": "random", "seed": 0},
            "confirm": False,
        },
        "deployment": {
            "kind": "local",
            "workers": 4,
            "mocker": {"speedup_ratio": 0.5, "block_size": 16, "num_gpu_blocks": 3072},
            "isolation": "restart",
            "router": ROUTER,
            "request_trace": str(trace),
        },
        "workload": workload,
        "search_space": {"router.mode": {"type": "categorical", "choices": ["kv"]}},
        "objective": {
            "kv_weight": 0.4,
            "ttft_weight": 0.4,
            "itl_weight": 0.2,
            "ttft_target_seconds": 0.5,
            "itl_target_seconds": 0.2,
        },
    }


def runs(records: list[DynamoTraceRecord]) -> list[list[DynamoTraceRecord]]:
    """The records split where arrivals are more than `RUN_GAP_MS` apart."""
    out: list[list[DynamoTraceRecord]] = []
    for r in records:
        if not out or r.received_ms - out[-1][-1].received_ms > RUN_GAP_MS:
            out.append([])
        out[-1].append(r)
    return out


def by_session(records: list[DynamoTraceRecord], strip_prefix: bool) -> dict[str, list[Any]]:
    """Records by session id (a replay's `<run id>-` prefix stripped), in arrival order."""
    out: dict[str, list[DynamoTraceRecord]] = defaultdict(list)
    for r in records:
        session = r.session
        if strip_prefix:
            session = session.split("-", 1)[1]
        out[session].append(r)
    return out


def measured(folder: Path, name: str) -> list[TrialRecord]:
    s = optuna.load_study(study_name=name, storage=f"sqlite:///{folder}/{name}.db")
    return [
        TrialRecord.from_frozen(t) for t in s.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    ]


def compare(label: str, a: list[float], b: list[float]) -> str:
    d = welch_interval(b, a)
    return (
        f"{label:<18} captured {statistics.fmean(a):.4f} (sd {statistics.stdev(a):.4f})  "
        f"replayed {statistics.fmean(b):.4f} (sd {statistics.stdev(b):.4f})  "
        f"replayed-captured {d.diff:+.4f} (95 % CI {d.low:+.4f}..{d.high:+.4f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=48)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--measurements", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the captures here")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="replay-fidelity-"))
    folder.mkdir(parents=True, exist_ok=True)
    cap_a, cap_b, run1 = (
        folder / "capture-a.jsonl",
        folder / "capture-b.jsonl",
        folder / "capture-run1.jsonl",
    )
    for f in (cap_a, cap_b):
        f.unlink(missing_ok=True)
    agentic = {
        "kind": "agentic", "sessions": args.sessions, "turns": args.turns, "concurrency": 32,
        "system_prompt_tokens": 1000, "session_context_tokens": 1500, "appended_tokens": 300,
        "output_tokens": 32, "seed": 0, "hints": {"dialect": "dynamo", "session_id": True},
    }  # fmt: skip
    (folder / "a.yaml").write_text(
        yaml.safe_dump(study("capture", agentic, cap_a, args.measurements))
    )
    run_study_file(folder / "a.yaml", build_services)

    read_a = read_dynamo_trace(cap_a)
    first = runs(read_a.records)[0]
    keep = {r.request_id for r in first}
    lines = [
        line for line in cap_a.read_text().splitlines()
        if line.strip() and json.loads(line)["event"]["request"]["request_id"] in keep
    ]  # fmt: skip
    run1.write_text("\n".join(lines) + "\n")
    replay = {
        "kind": "dynamo-trace", "path": str(run1), "concurrency": 32, "seed": 0,
        "hints": {"dialect": "dynamo", "session_id": True},
    }  # fmt: skip
    (folder / "b.yaml").write_text(
        yaml.safe_dump(study("replay", replay, cap_b, args.measurements))
    )
    run_study_file(folder / "b.yaml", build_services)

    replayed = runs(read_dynamo_trace(cap_b).records)[0]
    sa, sb = by_session(first, False), by_session(replayed, True)
    lengths_equal = sa.keys() == sb.keys() and all(
        [r.input_length for r in sa[s]] == [r.input_length for r in sb[s]] for s in sa
    )
    forward: dict[int, int] = {}
    backward: dict[int, int] = {}
    consistent = True
    for s in sa:
        for ra, rb in zip(sa[s], sb.get(s, []), strict=False):
            for ha, hb in zip(ra.hashes, rb.hashes, strict=False):
                consistent &= forward.setdefault(ha, hb) == hb and backward.setdefault(hb, ha) == ha
    summary_a = summarize_trace(read_dynamo_trace(run1))
    summary_b1 = summarize_trace(TraceRead(records=replayed, files=[cap_b]))  # B's run 1
    print(f"captures in {folder}")
    print(f"requests          run 1 of A: {len(first)}; run 1 of B: {len(replayed)}")
    print(f"input lengths     identical per session and order: {lengths_equal}")
    print(f"prefix sharing    A's block hashes map one-to-one onto B's: {consistent} "
          f"({len(forward)} distinct blocks)")  # fmt: skip
    print(f"KVE ceiling       A run 1 {summary_a.kve_ceiling:.4f}  B {summary_b1.kve_ceiling:.4f}")
    a, b = measured(folder, "capture"), measured(folder, "replay")
    for key, label in [
        ("kv_efficiency", "KVE (server)"),
        ("client_kve", "KVE (client)"),
        ("ttft_p95_seconds", "TTFT p95 s (server)"),
        ("client_ttft_p95_seconds", "TTFT p95 s (client)"),
        ("score", "score"),
    ]:
        va = [v for r in a if (v := r.number_of(key)) is not None]
        vb = [v for r in b if (v := r.number_of(key)) is not None]
        if len(va) > 1 and len(vb) > 1:
            print(compare(label, va, vb))


if __name__ == "__main__":
    main()
