"""Reading a study back: best trials, baseline, improvement, tables, best-config output. Pure.

Functions take a study (only reading its trials and directions) and return text or data.
The best trial prefers feasible trials (no violation recorded); a Pareto study's best trials
are its feasible non-dominated COMPLETE trials.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

import optuna
import yaml
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.study.attr_keys import (
    CORE_KEYS,
    HEADLINE_METRICS,
    WORKLOAD_KEYS,
    StudyAttr,
    TrialAttr,
)


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.constraints.values()) and not trial.user_attrs.get(
        TrialAttr.VIOLATIONS
    )


def _better(a: float, b: float, direction: StudyDirection) -> bool:
    return a > b if direction == StudyDirection.MAXIMIZE else a < b


def _dominates(a: FrozenTrial, b: FrozenTrial, directions: Sequence[StudyDirection]) -> bool:
    assert a.values is not None and b.values is not None
    not_worse = all(
        x == y or _better(x, y, d) for x, y, d in zip(a.values, b.values, directions, strict=True)
    )
    return not_worse and any(
        _better(x, y, d) for x, y, d in zip(a.values, b.values, directions, strict=True)
    )


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best COMPLETE trial (or Pareto front), feasible ones preferred; [] if none."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pool = [t for t in complete if _feasible(t)] or complete
    directions = study.directions
    if not pool:
        return []
    if len(directions) == 1:
        best = pool[0]
        for trial in pool[1:]:
            assert trial.values is not None and best.values is not None
            if _better(trial.values[0], best.values[0], directions[0]):
                best = trial
        return [best]
    return [t for t in pool if not any(_dominates(o, t, directions) for o in pool if o is not t)]


def baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    """The first COMPLETE baseline trial, if any."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get(TrialAttr.BASELINE):
            return trial
    return None


def improvement(study: optuna.Study) -> dict[str, Any] | None:
    """Best vs baseline of a single-objective study: values, absolute and relative change."""
    best = best_trials(study)
    base = baseline_trial(study)
    if len(best) != 1 or base is None or len(study.directions) != 1:
        return None
    assert best[0].values is not None and base.values is not None
    b, r = best[0].values[0], base.values[0]
    return {
        "best_trial": best[0].number,
        "best_value": b,
        "baseline_trial": base.number,
        "baseline_value": r,
        "absolute": b - r,
        "relative": (b - r) / abs(r) if r else None,
    }


def improvement_text(study: optuna.Study) -> str | None:
    imp = improvement(study)
    if imp is None:
        return None
    rel = f" ({imp['relative']:+.1%})" if imp["relative"] is not None else ""
    return (
        f"best #{imp['best_trial']} {imp['best_value']:.4f} vs baseline "
        f"#{imp['baseline_trial']} {imp['baseline_value']:.4f}: {imp['absolute']:+.4f}{rel}"
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trials_table(study: optuna.Study) -> str:
    """One row per trial: number, state, value(s), key metrics, feasibility, params."""
    header = ["#", "state", "value", *(label for label, _ in HEADLINE_METRICS), "ok", "params"]
    rows = [header]
    for t in study.get_trials(deepcopy=False):
        values = ",".join(f"{v:.4f}" for v in t.values) if t.values else "-"
        params = " ".join(f"{k}={_cell(v)}" for k, v in t.params.items())
        if t.user_attrs.get(TrialAttr.BASELINE):
            params = "[baseline] " + params
        ok = "-" if t.state != TrialState.COMPLETE else ("yes" if _feasible(t) else "no")
        rows.append(
            [
                str(t.number),
                t.state.name,
                values,
                *(_cell(t.user_attrs.get(key)) for _, key in HEADLINE_METRICS),
                ok,
                params,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        for r in rows
    )


def best_config(trial: FrozenTrial) -> dict[str, Any]:
    """The applied router config and hints of a trial, ready to reuse."""
    return {
        "router": trial.user_attrs.get(TrialAttr.ROUTER_CONFIG, {}),
        "hints": trial.user_attrs.get(TrialAttr.HINTS, {}),
    }


def best_output(study: optuna.Study, fmt: str) -> str:
    """The best trial(s) as frontend flags, router YAML or JSON."""
    best = best_trials(study)
    if not best:
        return ""
    imp = improvement(study)
    if fmt == "flags":
        return "\n".join(shlex.join(t.user_attrs.get(TrialAttr.FRONTEND_ARGS, [])) for t in best)
    if fmt == "yaml":
        note = improvement_text(study)
        docs = [yaml.safe_dump(best_config(t), sort_keys=False) for t in best]
        head = f"# best trial #{best[0].number}" + (f"; {note}" if note else "") + "\n"
        return head + "---\n".join(docs)
    payload = [
        {
            "number": t.number,
            "values": t.values,
            "params": t.params,
            **best_config(t),
            "frontend_args": t.user_attrs.get(TrialAttr.FRONTEND_ARGS, []),
            "metrics": {k: t.user_attrs.get(k) for k in (*CORE_KEYS, *WORKLOAD_KEYS)},
            "violations": t.user_attrs.get(TrialAttr.VIOLATIONS, []),
        }
        for t in best
    ]
    return json.dumps({"best": payload, "improvement_over_baseline": imp}, indent=2)


def csv_table(study: optuna.Study) -> tuple[list[str], list[list[Any]]]:
    """Header and rows: number, state, values, start/end, duration, params_*, attrs_*."""
    trials = study.get_trials(deepcopy=False)
    n_values = len(study.directions)
    params = sorted({k for t in trials for k in t.params})
    attrs = sorted({k for t in trials for k in t.user_attrs if k != StudyAttr.STUDY_YAML})
    header = ["number", "state"]
    header += ["value"] if n_values == 1 else [f"values_{i}" for i in range(n_values)]
    header += ["datetime_start", "datetime_complete", "duration_seconds"]
    header += [f"params_{p}" for p in params] + [f"user_attrs_{a}" for a in attrs]
    rows: list[list[Any]] = []
    for t in trials:
        values = list(t.values) if t.values else [None] * n_values
        row: list[Any] = [t.number, t.state.name, *values]
        row += [
            t.datetime_start.isoformat() if t.datetime_start else None,
            t.datetime_complete.isoformat() if t.datetime_complete else None,
            t.duration.total_seconds() if t.duration else None,
        ]
        row += [t.params.get(p) for p in params]
        for a in attrs:
            v = t.user_attrs.get(a)
            row.append(json.dumps(v) if isinstance(v, list | dict) else v)
        rows.append(row)
    return header, rows
