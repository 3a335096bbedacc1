"""What a study measured: deployment, workload and objective as (label, text) facts. Pure.

Read from the study file (never a secret: URLs carry no credentials, environment maps are not
shown) and from the trials (the workload's KVE ceiling is measured per run).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict

from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.study.spec.schema import ConstraintSpec, StudySpec
from dynamo_tune.study.trial.attr_keys import TrialAttr
from dynamo_tune.study.trial.record import TrialRecord
from dynamo_tune.workload.spec import (
    AgenticWorkloadSpec,
    DynamoTraceWorkloadSpec,
    TraceWorkloadSpec,
)


class Fact(BaseModel):
    """One line of the "what was measured" section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    text: str


def _public(url: str) -> str:
    """`scheme://host:port/path` of `url`: any user:password@ part and query string dropped."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _deployment(spec: StudySpec, dynamo_version: str | None) -> list[Fact]:
    d = spec.deployment
    router = d.router.model_dump(exclude_none=True, exclude_defaults=True)
    router_text = ", ".join(f"{k}={v}" for k, v in router.items()) or "Dynamo's defaults"
    facts = [Fact(label="deployment", text=d.kind)]
    if isinstance(d, LocalDeploymentSpec):
        m = d.mocker
        version = f"ai-dynamo {dynamo_version}" if dynamo_version else "ai-dynamo"
        facts += [
            Fact(label="workers", text=f"{d.workers}"),
            Fact(
                label="engine",
                text=f"{version} mocker (speedup {m.speedup_ratio:g}x, {m.num_gpu_blocks} KV "
                f"blocks of {m.block_size} tokens per worker, prefix caching "
                f"{'on' if m.enable_prefix_caching else 'off'}), isolation {d.isolation}",
            ),
        ]
    else:
        facts += [
            Fact(label="frontend", text=f"{_public(d.frontend_url)} (model {d.model})"),
            Fact(label="engine", text="as deployed (not managed by dynamo-tune)"),
        ]
    facts.append(Fact(label="router at start", text=router_text))
    return facts


def kve_ceiling_of(trials: Sequence[TrialRecord]) -> float | None:
    """The workload's KVE ceiling: the median of the trials' (one workload: one value)."""
    ceilings = [c for t in trials if (c := t.number_of(TrialAttr.KVE_CEILING)) is not None]
    return statistics.median(ceilings) if ceilings else None


def _workload(spec: StudySpec, trials: Sequence[TrialRecord]) -> list[Fact]:
    w = spec.workload
    if isinstance(w, AgenticWorkloadSpec):
        arrivals = f"{w.rate:g} sessions/s" if w.rate is not None else "closed loop"
        limit = w.in_flight_limit
        size = (
            f"{w.sessions} sessions x {w.turns} turns x {w.fan_out} calls "
            f"({w.sessions * w.turns * w.fan_out} requests), {arrivals}, "
            f"{limit if limit is not None else 'unbounded'} in flight"
        )
    elif isinstance(w, TraceWorkloadSpec):
        records = f"{w.limit} records" if w.limit is not None else "every record"
        size = f"{w.path.name}: {records} from {w.offset}, speedup {w.speedup:g}x"
    elif isinstance(w, DynamoTraceWorkloadSpec):
        span = f"{w.duration_s:g} s" if w.duration_s is not None else "the rest"
        sampled = f", {w.sessions} sessions sampled" if w.sessions is not None else ""
        size = f"{w.path.name}: {span} from {w.start_s:g} s{sampled}, speedup {w.speedup:g}x"
    else:
        size = f"command {w.argv[0]} ({len(w.argv) - 1} arguments)"
    value = kve_ceiling_of(trials)
    ceiling = (
        f"{value:.3f} (the most of its prompt tokens any router could serve from cache)"
        if value is not None
        else "not measured (a command workload does not report its prompts)"
        if w.kind == "command"
        else "not measured yet (no COMPLETE trial)"
    )
    hints = getattr(w, "hints", None)
    facts = [
        Fact(label="workload", text=w.kind),
        Fact(label="size", text=size),
        Fact(label="KVE ceiling", text=ceiling),
    ]
    if hints is not None:
        facts.append(Fact(label="hints at start", text=", ".join(
            f"{k}={v}" for k, v in hints.model_dump(exclude_none=True).items())))  # fmt: skip
    return facts


def _bound(c: ConstraintSpec) -> str:
    """`ttft_p95_seconds <= 2`, `0.5 <= kv_efficiency`, `0.1 <= x <= 2`."""
    low = f"{c.min:g} <= " if c.min is not None else ""
    high = f" <= {c.max:g}" if c.max is not None else ""
    return f"{low}{c.metric}{high}"


def _objective(spec: StudySpec) -> list[Fact]:
    o = spec.objective
    facts = []
    if o.directions:
        facts.append(Fact(label="objectives", text="; ".join(
            f"{d} {m}" for d, m in o.objectives())))  # fmt: skip
    facts += [
        Fact(
            label="score",
            text=f"{o.kv_weight:g}·KVE + {o.ttft_weight:g}·TTFT score + {o.itl_weight:g}·ITL "
            f"score (maximized)",
        ),
        Fact(
            label="targets",
            text=f"TTFT p95 {o.ttft_target_seconds:g} s, ITL p95 {o.itl_target_seconds:g} s",
        ),
        Fact(label="constraints", text="; ".join(_bound(c) for c in o.constraints) or "none"),
        Fact(label="repeats per trial", text=f"{o.repeats} (the trial's value is their median)"),
    ]
    return facts


def measured_facts(
    spec: StudySpec, trials: Sequence[TrialRecord], dynamo_version: str | None = None
) -> list[Fact]:
    """Deployment, workload and objective facts, in that order."""
    return [*_deployment(spec, dynamo_version), *_workload(spec, trials), *_objective(spec)]
