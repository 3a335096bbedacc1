"""Every user-attr key dynamo-tune stores on trials and studies: the one home of those names. Pure.

Readers (reports, progress lines, resume, the dashboard's users) and writers import the keys
from here; no module writes a key as a raw string. Metric attrs are named after the fields
they copy (`CORE_KEYS` from `DynamoCoreMetrics`, `WORKLOAD_KEYS` from `WorkloadReport`).
"""

from __future__ import annotations

from typing import Final

from dynamo_tune.metrics.models import DynamoCoreMetrics


class TrialAttr:
    """Keys of a trial's user attrs."""

    # who and why
    RUNNER: Final = "runner"
    """{host, pid, start}: the process measuring the trial (dead-runner recovery)."""
    BASELINE: Final = "baseline"
    """True on the reference trial the study enqueues first."""
    OVERRIDES: Final = "overrides"
    """Dotted settings outside the search space a fixed configuration (baseline, preset,
    confirmation) runs with, laid over the study's fixed configuration."""
    PRESET: Final = "preset"
    """Name of the `study.enqueue` entry this trial measures (`agentic`, `enqueue[2]`)."""
    STAGE: Final = "stage"
    """`confirm` on a confirmation measurement (absent: a search trial)."""
    CONFIRMS: Final = "confirms"
    """Number of the search trial whose configuration a confirmation measurement repeats."""
    RETRY_OF: Final = "retry_of"
    """Number of the FAIL trial whose parameters this trial measures again."""
    FAIL_REASON: Final = "fail_reason"
    """One line: the stage and the error that failed the trial."""
    FAULT: Final = "fault"
    """On a FAIL trial the deployment broke under (`DeploymentFault`): what broke. The run
    re-enqueues its configuration once (`retry_of`); a confirmation measurement is re-queued
    by the confirmation plan instead."""
    # what was applied
    ROUTER_CONFIG: Final = "router_config"
    HINTS: Final = "hints"
    FRONTEND_ARGS: Final = "frontend_args"
    RESTART_SECONDS: Final = "restart_seconds"
    APPLY_SECONDS: Final = "apply_seconds"
    COLLECT_SECONDS: Final = "collect_seconds"
    # what was measured
    SCORE: Final = "score"
    ERRORS: Final = "errors"
    KV_EFFICIENCY: Final = "kv_efficiency"
    """cached / prompt tokens over the window (a `CORE_KEYS` entry)."""
    TTFT_P95: Final = "ttft_p95_seconds"
    """The frontend's TTFT p95 over the window, seconds (a `CORE_KEYS` entry)."""
    KVE_CEILING: Final = "kve_ceiling"
    """The workload's KVE ceiling: the most any router could serve from cache (`WORKLOAD_KEYS`)."""
    ROUTER_KV_HIT_RATE_MEAN: Final = "router_kv_hit_rate_mean"
    """Mean predicted KV hit rate the router saw at routing time over the window (0-1)."""
    WORKLOAD_ERRORS: Final = "workload_errors"
    WORKLOAD_FAILURES: Final = "workload_failures"
    WORKLOAD_FAILED: Final = "workload_failed"
    # how it was judged
    CONSTRAINTS: Final = "constraints"
    """{constraint key: value}, <= 0 feasible (also given to Optuna)."""
    VIOLATIONS: Final = "violations"
    FEASIBLE: Final = "feasible"
    REPEATS: Final = "repeats"
    REPEAT_VALUES: Final = "repeat_values"
    VALUE_SPREAD: Final = "value_spread"
    MEASURED_SECONDS: Final = "measured_seconds"
    """Sum of the measured windows' lengths (the rest of the trial's wall time is overhead)."""


class StudyAttr:
    """Keys of a study's user attrs."""

    SPEC_SHA256: Final = "spec_sha256"
    STUDY_YAML: Final = "study_yaml"
    """The study file's text as last run (never holds a secret: see the study file rules)."""
    SEARCH_SPACE: Final = "search_space"
    """Fingerprint of the distributions a resumed study must still match."""
    INITIALIZED: Final = "initialized"
    """Set last by the creating runner; others wait for it."""
    ENQUEUED: Final = "enqueued"
    """Keys of the `study.enqueue` entries already enqueued (a resumed run adds only new ones)."""
    CONFIRM_PLAN: Final = "confirm_plan"
    """{baseline, configs, repeats}: the trials the confirmation stage re-measures."""
    VERDICT: Final = "verdict"
    """The confirmation's verdict (`verdict.Verdict` as JSON)."""


CONFIRM_STAGE: Final = "confirm"
"""The value of `TrialAttr.STAGE` on confirmation measurements."""


CORE_KEYS: tuple[str, ...] = tuple(DynamoCoreMetrics.model_fields)
"""Trial attrs holding the core metrics (the inputs of `to_optimization_score`)."""
assert {TrialAttr.KV_EFFICIENCY, TrialAttr.TTFT_P95} <= set(CORE_KEYS)

WORKLOAD_KEYS: tuple[str, ...] = (
    "client_ttft_p50_seconds",
    "client_ttft_p95_seconds",
    "client_ttft_p99_seconds",
    "client_itl_p50_seconds",
    "client_itl_p95_seconds",
    "client_itl_p99_seconds",
    "client_e2e_p95_seconds",
    "client_kve",
    TrialAttr.KVE_CEILING,
    "requests_sent",
    "requests_ok",
    "requests_failed",
    "output_tokens_per_s",
    "window_start",
    "window_end",
)
"""Trial attrs copied from the `WorkloadReport` field of the same name."""

CARRIED_ON_RETRY: tuple[str, ...] = (TrialAttr.BASELINE, TrialAttr.OVERRIDES, TrialAttr.PRESET)
"""Trial attrs a re-enqueued retry keeps from the trial it repeats."""

HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("kve", TrialAttr.KV_EFFICIENCY),
    ("ttft95", TrialAttr.TTFT_P95),
    ("itl95", "itl_p95_seconds"),
)
"""(short label, trial attr) of the metrics a progress line and the trials table show."""
