"""Reading a study back: best trials, baseline, improvement, tables, best-config output. Pure.

Functions take a study (only reading its trials and directions) and return text or data.
The best trial prefers feasible trials (no violation recorded); a Pareto study's best trials
are its feasible non-dominated COMPLETE trials.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.study.confirmation.verdict import Verdict
from dynamo_tune.study.trial.attr_keys import (
    CORE_KEYS,
    HEADLINE_METRICS,
    WORKLOAD_KEYS,
    StudyAttr,
    TrialAttr,
)
from dynamo_tune.study.trial.selection import (
    baseline_trial,
    best_trials,
    feasible,
    is_confirmation,
)


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
        elif t.user_attrs.get(TrialAttr.PRESET):
            params = f"[{t.user_attrs[TrialAttr.PRESET]}] " + params
        if is_confirmation(t):
            params = f"[confirms #{t.user_attrs.get(TrialAttr.CONFIRMS)}] " + params
        ok = "-" if t.state != TrialState.COMPLETE else ("yes" if feasible(t) else "no")
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
    table = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        for r in rows
    ]
    verdict = stored_verdict(study)
    if verdict is not None:
        table += ["", f"confirmation ({verdict.method}, {verdict.confidence * 100:g} % intervals):"]
        table += [f"  {line}" for line in verdict.lines]
    return "\n".join(table)


def best_config(trial: FrozenTrial) -> dict[str, Any]:
    """The applied router config and hints of a trial, ready to reuse."""
    return {
        "router": trial.user_attrs.get(TrialAttr.ROUTER_CONFIG, {}),
        "hints": trial.user_attrs.get(TrialAttr.HINTS, {}),
    }


@dataclass(frozen=True)
class Answer:
    """What `best` answers: the trials to print and one line saying how sure it is."""

    trials: list[FrozenTrial]
    note: str
    confirmed: bool


def answer(study: optuna.Study, unconfirmed: bool = False) -> Answer:
    """The confirmed winner (a Pareto study: its feasible confirmed configurations); with
    `unconfirmed`, or before any confirmation, the raw best trial(s), labelled so."""
    verdict = None if unconfirmed else stored_verdict(study)
    if verdict is None:
        raw = improvement_text(study) or ""
        why = "--unconfirmed" if unconfirmed else "the study has no confirmation yet"
        return Answer(best_trials(study), f"unconfirmed ({why}): {raw}".rstrip(": "), False)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    if len(study.directions) > 1:
        chosen = [by_number[c.trial] for c in verdict.configs if c.feasible]
        return Answer(chosen, "confirmed Pareto set: " + verdict.headline, True)
    winner = verdict.winner_config
    if winner is None:
        return Answer([], verdict.headline + " (`--unconfirmed` shows the raw best)", True)
    return Answer([by_number[winner.trial]], verdict.headline, True)


def best_output(study: optuna.Study, fmt: str, unconfirmed: bool = False) -> str:
    """The answer's trial(s) as frontend flags, router YAML or JSON ("" when there is none)."""
    ans = answer(study, unconfirmed)
    best = ans.trials
    if not best:
        return ""
    imp = improvement(study)
    if fmt == "flags":
        return "\n".join(shlex.join(t.user_attrs.get(TrialAttr.FRONTEND_ARGS, [])) for t in best)
    if fmt == "yaml":
        docs = [yaml.safe_dump(best_config(t), sort_keys=False) for t in best]
        head = f"# trial #{best[0].number}; {ans.note}\n"
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
    verdict = stored_verdict(study)
    return json.dumps(
        {
            "best": payload,
            "confirmed": ans.confirmed,
            "note": ans.note,
            "verdict": verdict.model_dump(mode="json") if verdict and not unconfirmed else None,
            "improvement_over_baseline": imp,
        },
        indent=2,
    )


def stored_verdict(study: optuna.Study) -> Verdict | None:
    """The verdict the confirmation stage stored, if any."""
    raw = study.user_attrs.get(StudyAttr.VERDICT)
    return Verdict.model_validate(raw) if isinstance(raw, dict) else None


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
