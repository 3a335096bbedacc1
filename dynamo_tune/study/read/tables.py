"""A study's trials as tables: the `trials` text table and the `export` CSV rows. Pure.

The text table explains its `ok` column under the rows, shows a FAIL trial's reason on the line
below it, and ends with the verdict's block (`verdict_text.block`) when there is one.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import TrialState

from dynamo_tune.study.confirmation.verdict_text import block
from dynamo_tune.study.read.answers import verdict_of
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.attr_keys import HEADLINE_METRICS, StudyAttr
from dynamo_tune.study.trial.record import CSV_ATTR_PREFIX, TrialRecord, raw_attrs, records


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _params(r: TrialRecord) -> str:
    params = " ".join(f"{k}={_cell(v)}" for k, v in r.params.items())
    if r.baseline:
        params = "[baseline] " + params
    elif r.preset:
        params = f"[{r.preset}] " + params
    elif r.screened is not None:
        params = f"[screen #{r.screened}] " + params
    if r.is_confirmation:
        params = f"[confirms #{r.confirms}] " + params
    return params


OK_LEGEND = (
    "ok: yes = meets every constraint; no = violates one (the best only if no trial meets "
    "them all); - = not COMPLETE"
)
"""What the `ok` column of the `trials` table means (printed under the table)."""
REASON_CHARS = 100
"""A FAIL row's reason is shown on the line below it, its first line cut to this length."""


def _reason(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "no reason stored"
    return first if len(first) <= REASON_CHARS else first[: REASON_CHARS - 3].rstrip() + "..."


def trials_table(study: optuna.Study, spec: StudySpec | None = None) -> str:
    """One row per trial: number, state, value(s), key metrics, feasibility (`ok`), params; a
    FAIL row's reason on the line below it; the `ok` legend; then the verdict (`spec`
    completes a verdict stored without its range edges)."""
    header = ["#", "state", "value", *(label for label, _ in HEADLINE_METRICS), "ok", "params"]
    rows = [header]
    reasons: dict[int, str] = {}  # row index -> why the trial failed
    for r in records(study):
        if r.state == TrialState.FAIL:
            reasons[len(rows)] = _reason(r.fail_reason or "")
        ok = "-" if r.state != TrialState.COMPLETE else ("yes" if r.feasible else "no")
        rows.append(
            [
                str(r.number),
                r.state.name,
                ",".join(f"{v:.4f}" for v in r.values) if r.values else "-",
                *(_cell(r.value(key)) for _, key in HEADLINE_METRICS),
                ok,
                _params(r),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    table: list[str] = []
    for i, row in enumerate(rows):
        cells = [*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]
        table.append("  ".join(cells).rstrip())
        if i in reasons:
            table.append(f"{'':{widths[0]}}  failed: {reasons[i]}")
    table += ["", OK_LEGEND]
    verdict = verdict_of(study, spec)
    if verdict is not None:
        table += ["", *block(verdict)]
    return "\n".join(table)


def csv_table(study: optuna.Study) -> tuple[list[str], list[list[Any]]]:
    """Header and rows: number, state, values, start/end, duration, params_*, attrs_* (every
    user attr as stored, lists and mappings as JSON)."""
    trials = study.get_trials(deepcopy=False)
    n_values = len(study.directions)
    stored = [raw_attrs(t) for t in trials]
    params = sorted({k for t in trials for k in t.params})
    attrs = sorted({k for a in stored for k in a if k != StudyAttr.STUDY_YAML})
    header = ["number", "state"]
    header += ["value"] if n_values == 1 else [f"values_{i}" for i in range(n_values)]
    header += ["datetime_start", "datetime_complete", "duration_seconds"]
    header += [f"params_{p}" for p in params] + [f"{CSV_ATTR_PREFIX}{a}" for a in attrs]
    rows: list[list[Any]] = []
    for t, a in zip(trials, stored, strict=True):
        values = list(t.values) if t.values else [None] * n_values
        row: list[Any] = [t.number, t.state.name, *values]
        row += [
            t.datetime_start.isoformat() if t.datetime_start else None,
            t.datetime_complete.isoformat() if t.datetime_complete else None,
            t.duration.total_seconds() if t.duration else None,
        ]
        row += [t.params.get(p) for p in params]
        row += [
            json.dumps(a.get(k)) if isinstance(a.get(k), list | dict) else a.get(k) for k in attrs
        ]
        rows.append(row)
    return header, rows
