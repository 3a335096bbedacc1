"""The names of what a trial measures: the one home of the metric names. Pure.

A trial stores every core metric under its `DynamoCoreMetrics` field name (`CORE_KEYS`) and
the workload's own numbers under their `WorkloadReport` field names (`WORKLOAD_KEYS`); the
trial value of a single-objective study is stored as `score`. A constraint or a Pareto
direction names one of `MetricName`; tests/test_study_record.py checks every name against
the keys a measured trial really stores, so a renamed metric cannot leave a constraint
reading a key that no longer exists.
"""

from __future__ import annotations

from typing import Final, Literal

from dynamo_tune.metrics import DynamoCoreMetrics

SCORE: Final = "score"
"""The trial value of a single-objective study (`to_optimization_score`)."""
KV_EFFICIENCY: Final = "kv_efficiency"
TTFT_P95: Final = "ttft_p95_seconds"
ITL_P95: Final = "itl_p95_seconds"
KVE_CEILING: Final = "kve_ceiling"

CORE_KEYS: tuple[str, ...] = tuple(DynamoCoreMetrics.model_fields)
"""Trial attrs holding the core metrics (the inputs of `to_optimization_score`)."""

WORKLOAD_KEYS: tuple[str, ...] = (
    "client_ttft_p50_seconds",
    "client_ttft_p95_seconds",
    "client_ttft_p99_seconds",
    "client_itl_p50_seconds",
    "client_itl_p95_seconds",
    "client_itl_p99_seconds",
    "client_e2e_p95_seconds",
    "client_kve",
    KVE_CEILING,
    "requests_sent",
    "requests_ok",
    "requests_failed",
    "output_tokens_per_s",
    "window_start",
    "window_end",
    "window_requests",
)
"""Trial attrs copied from the `WorkloadReport` field of the same name."""

MetricName = Literal[
    "score",
    "kv_efficiency",
    "ttft_p50_seconds",
    "ttft_p95_seconds",
    "ttft_p99_seconds",
    "itl_p50_seconds",
    "itl_p95_seconds",
    "itl_p99_seconds",
    "client_ttft_p95_seconds",
    "client_itl_p95_seconds",
    "client_kve",
    "requests_failed",
]
"""Names a constraint or a Pareto direction may use: `SCORE`, core and workload keys."""
