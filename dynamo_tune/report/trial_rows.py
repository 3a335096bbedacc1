"""The report's trials table: one row per trial, every stage and state. Pure.

Columns: number, state, role (baseline, preset, confirmation of #n, retry of #n), value(s),
the core metrics (frontend, over the window), the client's own measurements ("client truth":
what the workload saw, beside what Dynamo exported), the parameters, violations and the
reason a trial failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.trial.attr_keys import TrialAttr
from dynamo_tune.study.trial.record import TrialRecord

CORE_COLUMNS: tuple[tuple[str, str], ...] = (
    (TrialAttr.KV_EFFICIENCY, "KVE"),
    ("ttft_p50_seconds", "TTFT p50 s"),
    (TrialAttr.TTFT_P95, "TTFT p95 s"),
    ("ttft_p99_seconds", "TTFT p99 s"),
    ("itl_p50_seconds", "ITL p50 s"),
    ("itl_p95_seconds", "ITL p95 s"),
    ("itl_p99_seconds", "ITL p99 s"),
)
"""(trial attr, header) of the core-metric columns: KVE and the TTFT / ITL percentiles."""

CLIENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("client_kve", "client KVE"),
    ("client_ttft_p95_seconds", "client TTFT p95 s"),
    ("client_itl_p95_seconds", "client ITL p95 s"),
    ("requests_ok", "ok"),
    ("requests_failed", "failed"),
)
"""(trial attr, header) of the client-truth columns."""


class TrialRow(BaseModel):
    """One trial as the table shows it (every cell already text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    state: str
    role: str
    values: str
    metrics: list[str]
    client: list[str]
    params: str
    violations: str
    fail_reason: str


def cell(value: Any) -> str:
    """A metric cell: 4 significant digits, `-` for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def role_of(t: TrialRecord) -> str:
    parts = []
    if t.is_confirmation:
        parts.append(f"confirms #{t.confirms}")
    elif t.baseline:
        parts.append("baseline")
    elif t.preset:
        parts.append(t.preset)
    else:
        parts.append("search")
    if t.retry_of is not None:
        parts.append(f"retry of #{t.retry_of}")
    return ", ".join(parts)


def trial_row(t: TrialRecord) -> TrialRow:
    params = [f"{k}={cell(v)}" for k, v in t.params.items()]
    params += [f"{k}={cell(v)} (fixed)" for k, v in t.overrides.items()]
    return TrialRow(
        number=t.number,
        state=t.state.name,
        role=role_of(t),
        values=", ".join(f"{v:.4f}" for v in t.values) if t.values else "-",
        metrics=[cell(t.value(k)) for k, _ in CORE_COLUMNS],
        client=[cell(t.value(k)) for k, _ in CLIENT_COLUMNS],
        params=" ".join(params),
        violations="; ".join(t.violations),
        fail_reason=t.fail_reason or "",
    )


def trial_rows(trials: Sequence[TrialRecord]) -> list[TrialRow]:
    """Every trial, by number."""
    return [trial_row(t) for t in sorted(trials, key=lambda t: t.number)]
