"""Every user-attr key dynamo-tune stores on trials and studies: the one home of those names. Pure.

Writers import the keys from here; readers go through `record.TrialRecord` /
`record.StudyRecord`, the one place that reads stored attrs. No module writes a key as a raw
string. Metric attrs are named after the fields they copy (`CORE_KEYS`, `WORKLOAD_KEYS`: their
home is `spec.metric_names`).
"""

from __future__ import annotations

from typing import Final

from dynamo_tune.study.spec import metric_names
from dynamo_tune.study.spec.metric_names import CORE_KEYS, WORKLOAD_KEYS

__all__ = [
    "CARRIED_ON_RETRY",
    "CONFIRM_STAGE",
    "CORE_KEYS",
    "HEADLINE_METRICS",
    "WORKLOAD_KEYS",
    "ConstraintKey",
    "StudyAttr",
    "TrialAttr",
]


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
    SCREENED: Final = "screened"
    """On a live trial the screen enqueued: the number of the screen trial it measures."""
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
    SCORE: Final = metric_names.SCORE
    ERRORS: Final = "errors"
    KV_EFFICIENCY: Final = metric_names.KV_EFFICIENCY
    """cached / prompt tokens over the window (a `CORE_KEYS` entry)."""
    TTFT_P95: Final = metric_names.TTFT_P95
    """The frontend's TTFT p95 over the window, seconds (a `CORE_KEYS` entry)."""
    KVE_CEILING: Final = metric_names.KVE_CEILING
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
    SIMULATED_SECONDS: Final = "simulated_seconds"
    """On a screen trial: the replays' mean simulated duration, seconds of virtual time."""
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
    SCREEN_ENQUEUED: Final = "screen_enqueued"
    """Numbers of the screen trials whose configurations were enqueued live (set once)."""


class ConstraintKey:
    """Constraint keys every measurement carries besides the study's own constraints."""

    METRICS_COMPLETE: Final = "metrics_complete"
    """1.0 when a metric the score or an objective needs is missing, else 0.0."""
    WORKLOAD_OK: Final = "workload_ok"
    """1.0 when the workload failed (too many failed requests), else 0.0."""
    PER_MEASUREMENT: Final = (METRICS_COMPLETE, WORKLOAD_OK)
    """Judged on each measurement on its own, never on a mean (the confirmation's verdict)."""


CONFIRM_STAGE: Final = "confirm"
"""The value of `TrialAttr.STAGE` on confirmation measurements."""


CARRIED_ON_RETRY: tuple[str, ...] = (
    TrialAttr.BASELINE,
    TrialAttr.OVERRIDES,
    TrialAttr.PRESET,
    TrialAttr.SCREENED,
)
"""Trial attrs a re-enqueued retry keeps from the trial it repeats."""

HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("kve", TrialAttr.KV_EFFICIENCY),
    ("ttft95", TrialAttr.TTFT_P95),
    ("itl95", metric_names.ITL_P95),
)
"""(short label, trial attr) of the metrics a progress line and the trials table show."""
