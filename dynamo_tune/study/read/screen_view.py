"""The screen stage of a study as `trials` and the report show it. Pure: the caller loads the
screen study (`store.screen_study.load_screen_study`), so the report stays storage-free.

`screen_view` sums up the screen study `<name>.screen` beside a live study: its size (COMPLETE,
pruned, feasible; the target and replays from the study file), its best configurations (best
screen score first, the order of `store.screen_study.ranked`) with their screen means of the
core metrics, which of them were measured live (the live search trials that measure the
configuration: `screened` on the ones the screen queued, the baseline and the presets by
role), and how well the screen ranked what was measured both ways (`confirmation.agreement`).
A configuration measured live or queued live is listed even when it is not among the best few.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict, Field

from dynamo_tune.study.confirmation.agreement import ScreenAgreement, agreement, screen_match
from dynamo_tune.study.confirmation.verdict_text import screen_line
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.attr_keys import HEADLINE_METRICS
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord, records
from dynamo_tune.study.trial.selection import screen_ranked

BEST = 5
"""Best screened configurations listed (at least the `top` queued live)."""


class ScreenRow(BaseModel):
    """One screened configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    screen_trial: int
    rank: int | None = Field(description="1 = best feasible screen score; None: infeasible")
    role: str = Field(description="'baseline', the preset's label, or 'sampled'")
    score: float
    metrics: dict[str, float | None] = Field(description="Screen means of HEADLINE_METRICS")
    feasible: bool
    params: dict[str, Any]
    queued: bool = Field(description="Queued live by the screen (`screen_enqueued`)")
    live_trials: list[int] = Field(description="Live search trials measuring it")
    live_score: float | None = Field(description="Its mean live score (the agreement's pair)")


class ScreenView(BaseModel):
    """The screen stage of one study."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    complete: int
    pruned: int
    feasible: int
    target: int | None = Field(description="`study.screen.trials` (None: no screen in the file)")
    repeats: int | None
    top: int | None
    queued: list[int] | None = Field(description="Screen trials queued live (None: not yet)")
    rows: list[ScreenRow]
    agreement: ScreenAgreement


def _role(r: TrialRecord) -> str:
    return "baseline" if r.baseline else r.preset or "sampled"


def screen_view(
    live: optuna.Study, screen: optuna.Study, spec: StudySpec | None = None, best: int = BEST
) -> ScreenView:
    """The screen stage of `live` from its screen study `screen` (`spec`: target, repeats)."""
    settings = spec.study.screen if spec is not None else None
    done = records(screen, TrialState.COMPLETE)
    order = screen_ranked(done)
    rank = {r.number: i + 1 for i, r in enumerate(order)}
    live_records = records(live)
    search = [r for r in live_records if not r.is_confirmation]
    measured: dict[int, list[int]] = {}
    for r in search:
        match = screen_match(r, done)
        if match is not None:
            measured.setdefault(match.number, []).append(r.number)
    shown = agreement([r for r in live_records if r.state == TrialState.COMPLETE], done)
    live_score: dict[int, float] = {}
    for pair in shown.pairs:
        live_score.setdefault(pair.screen_trial, pair.live)
    queued = StudyRecord.from_study(live).screen_enqueued
    wanted = max(best, settings.top if settings is not None else 0)
    chosen = [r.number for r in order[:wanted]]
    extra = {*measured, *(queued or [])} - set(chosen)
    by_number = {r.number: r for r in done}
    chosen += sorted(
        (n for n in extra if n in by_number), key=lambda n: (rank.get(n) is None, rank.get(n), n)
    )
    rows = [
        ScreenRow(
            screen_trial=n,
            rank=rank.get(n),
            role=_role(by_number[n]),
            score=(by_number[n].values or (float("nan"),))[0],
            metrics={key: by_number[n].number_of(key) for _, key in HEADLINE_METRICS},
            feasible=by_number[n].feasible,
            params=dict(by_number[n].params),
            queued=n in (queued or []),
            live_trials=measured.get(n, []),
            live_score=live_score.get(n),
        )
        for n in chosen
    ]
    return ScreenView(
        name=screen.study_name,
        complete=len(done),
        pruned=len(screen.get_trials(deepcopy=False, states=(TrialState.PRUNED,))),
        feasible=len(order),
        target=settings.trials if settings is not None else None,
        repeats=settings.repeats if settings is not None else None,
        top=settings.top if settings is not None else None,
        queued=queued,
        rows=rows,
        agreement=shown,
    )


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def size_text(view: ScreenView) -> str:
    """`6/6 COMPLETE (target 6), 1 replay each, 0 pruned, 6 feasible`."""
    target = f"/{view.target} COMPLETE (target {view.target})" if view.target else " COMPLETE"
    replays = "" if view.repeats is None else f", {view.repeats} replay(s) each"
    return f"{view.complete}{target}{replays}, {view.pruned} pruned, {view.feasible} feasible"


def live_text(row: ScreenRow) -> str:
    """`#3 (live 0.7120)`, `queued`, or `-`: what the live study made of a configuration."""
    if row.live_trials:
        trials = ",".join(f"#{n}" for n in row.live_trials)
        return trials if row.live_score is None else f"{trials} ({row.live_score:.4f})"
    return "queued" if row.queued else "-"


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_cell(v) if isinstance(v, float) else v}" for k, v in params.items())


def screen_lines(view: ScreenView) -> list[str]:
    """The screen stage as `trials` prints it: size, best configurations, agreement."""
    out = [f"screen {view.name!r}: {size_text(view)}"]
    if not view.rows:
        return [*out, "  no COMPLETE screen trial yet"]
    header = ["rank", "#", "role", "score", *(label for label, _ in HEADLINE_METRICS), "live"]
    rows = [[*header, "params"]]
    for r in view.rows:
        metrics = [_cell(r.metrics[key]) for _, key in HEADLINE_METRICS]
        rank = str(r.rank) if r.rank is not None else "infeasible"
        rows.append(
            [rank, str(r.screen_trial), r.role, f"{r.score:.4f}", *metrics, live_text(r)]
            + [params_text(r.params)]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        out.append(("  " + "  ".join([*cells, row[-1]])).rstrip())
    if view.queued is not None:
        queued = ", ".join(f"#{n}" for n in view.queued) or "none"
        out.append(f"  queued live: screen {queued}")
    out.append(f"  {screen_line(view.agreement)}")
    return out
