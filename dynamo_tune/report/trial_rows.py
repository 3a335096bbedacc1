"""The report's trials table: one row per trial, every stage and state. Pure.

Columns: number, state, role (baseline, preset, confirmation of #n, retry of #n), value(s),
the core metrics (frontend, over the window), the client's own measurements ("client truth":
what the workload saw, beside what Dynamo exported), the parameters, violations and the
reason a trial failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial
from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.trial.attr_keys import CORE_KEYS, WORKLOAD_KEYS, TrialAttr
from dynamo_tune.study.trial.selection import is_confirmation

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
assert {k for k, _ in CORE_COLUMNS} <= set(CORE_KEYS)
assert {k for k, _ in CLIENT_COLUMNS} <= set(WORKLOAD_KEYS)


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


def role_of(t: FrozenTrial) -> str:
    attrs = t.user_attrs
    parts = []
    if is_confirmation(t):
        parts.append(f"confirms #{attrs.get(TrialAttr.CONFIRMS)}")
    elif attrs.get(TrialAttr.BASELINE):
        parts.append("baseline")
    elif attrs.get(TrialAttr.PRESET):
        parts.append(str(attrs[TrialAttr.PRESET]))
    else:
        parts.append("search")
    if attrs.get(TrialAttr.RETRY_OF) is not None:
        parts.append(f"retry of #{attrs[TrialAttr.RETRY_OF]}")
    return ", ".join(parts)


def trial_row(t: FrozenTrial) -> TrialRow:
    attrs = t.user_attrs
    overrides = attrs.get(TrialAttr.OVERRIDES) or {}
    params = [f"{k}={cell(v)}" for k, v in t.params.items()]
    params += [f"{k}={cell(v)} (fixed)" for k, v in overrides.items()]
    violations = attrs.get(TrialAttr.VIOLATIONS) or []
    return TrialRow(
        number=t.number,
        state=t.state.name,
        role=role_of(t),
        values=", ".join(f"{v:.4f}" for v in t.values) if t.values else "-",
        metrics=[cell(attrs.get(k)) for k, _ in CORE_COLUMNS],
        client=[cell(attrs.get(k)) for k, _ in CLIENT_COLUMNS],
        params=" ".join(params),
        violations="; ".join(str(v) for v in violations),
        fail_reason=str(attrs.get(TrialAttr.FAIL_REASON) or ""),
    )


def trial_rows(trials: Sequence[FrozenTrial]) -> list[TrialRow]:
    """Every trial, by number."""
    return [trial_row(t) for t in sorted(trials, key=lambda t: t.number)]
