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

from dynamo_tune.study.attr_keys import CORE_KEYS, TrialAttr
from dynamo_tune.study.readback import is_confirmation

CLIENT_KEYS: tuple[str, ...] = (
    "client_kve",
    "client_ttft_p95_seconds",
    "client_itl_p95_seconds",
    "requests_ok",
    "requests_failed",
)
"""The client-truth columns (`WORKLOAD_KEYS` entries)."""

CORE_COLUMNS: tuple[str, ...] = tuple(k for k in CORE_KEYS if not k.startswith("kv_efficiency_"))
"""The core-metric columns: KVE and the TTFT / ITL percentiles (KVE's source and SGLang
fallback left out)."""


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
        metrics=[cell(attrs.get(k)) for k in CORE_COLUMNS],
        client=[cell(attrs.get(k)) for k in CLIENT_KEYS],
        params=" ".join(params),
        violations="; ".join(str(v) for v in violations),
        fail_reason=str(attrs.get(TrialAttr.FAIL_REASON) or ""),
    )


def trial_rows(trials: Sequence[FrozenTrial]) -> list[TrialRow]:
    """Every trial, by number."""
    return [trial_row(t) for t in sorted(trials, key=lambda t: t.number)]
