"""Everything a report says, gathered from a study and its file (`ReportContents`). Pure.

The pieces come from one module each: the verdict (`answer_block`), the study's state
(`status`), what was measured (`measured`), the knobs that did not matter (`knobs`), the
trials table (`trial_rows`), the plots (`figures`: Optuna's; `measured_figures`: the
others) and, for a screened study, the screen stage (`study.read.screen_view`,
`screen_figure`). `build_report` reads the study's trials once and hands them to each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict

from dynamo_tune.report.answer_block import VerdictBlock, verdict_block
from dynamo_tune.report.figures import (
    Plot,
    history_plots,
    importance_plots,
    pareto_plot,
    search_view,
    slice_knobs,
    slice_plot,
)
from dynamo_tune.report.knobs import KnobFinding, Noise, knob_findings, measurement_noise
from dynamo_tune.report.measured import Fact, kve_ceiling_of, measured_facts
from dynamo_tune.report.measured_figures import confirmation_plots, kve_ttft_plot
from dynamo_tune.report.screen_figure import screen_live_plot
from dynamo_tune.report.status import StudyState, study_state
from dynamo_tune.report.trial_rows import TrialRow, trial_rows
from dynamo_tune.study.confirmation.confidence import t_quantile
from dynamo_tune.study.read.answers import verdict_of
from dynamo_tune.study.read.screen_view import ScreenView, screen_view
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.record import StudyRecord, copy_study_attrs, records


class ReportContents(BaseModel):
    """The text of a report, section by section (the plots travel beside it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    study_name: str
    generated_at: str
    """ISO 8601, UTC."""
    spec_changed: bool
    """The study file differs from the one the study last ran with."""
    state: StudyState
    verdict: VerdictBlock
    measured: list[Fact]
    metrics: list[str]
    """The objectives' metrics (`score` for a single-objective study)."""
    noises: list[Noise | None]
    """Per objective: the measurement noise the knob findings compare against."""
    knobs: list[KnobFinding]
    trials: list[TrialRow]
    screen: ScreenView | None = None
    """The screen stage (None: the study has no screen study)."""


@dataclass
class Report:
    """A report's contents and its plots, ready to render."""

    contents: ReportContents
    plots: list[Plot]
    screen_plots: list[Plot] = field(default_factory=list)
    """Screen vs live per configuration (a screened study only)."""


def snapshot(study: optuna.Study) -> optuna.Study:
    """An in-memory copy of `study` (trials and user attrs), read from its storage once: every
    part of the report sees the same trials while runners keep writing, and reading them
    again costs nothing."""
    copy = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        directions=study.directions,
        study_name=study.study_name,
    )
    copy_study_attrs(study, copy)
    copy.add_trials(study.get_trials(deepcopy=False))
    return copy


def matter_first(knobs: Sequence[KnobFinding]) -> list[str]:
    """The knobs of the first objective's findings: those that matter first (by how far their
    effect exceeds the noise threshold), then the others in the study file's order."""
    first = [k for k in knobs if k.metric == knobs[0].metric] if knobs else []
    matter = sorted(
        (k for k in first if k.verdict == "matters"),
        key=lambda k: -((k.effect or 0.0) - (k.threshold or 0.0)),
    )
    return [k.name for k in matter] + [k.name for k in first if k.verdict != "matters"]


def build_report(
    study: optuna.Study,
    spec: StudySpec,
    spec_sha256: str,
    *,
    now: dt.datetime,
    dynamo_version: str | None = None,
    screen: optuna.Study | None = None,
) -> Report:
    """The report of `study`, run from `spec` (whose file hashes to `spec_sha256`); `screen`:
    its screen study, if it has one."""
    study = snapshot(study)
    screened = screen_view(study, snapshot(screen), spec) if screen is not None else None
    attrs = StudyRecord.from_study(study)
    trials = records(study)
    search = [t for t in trials if not t.is_confirmation]
    complete_search = [t for t in search if t.state == TrialState.COMPLETE]
    confirmations = [t for t in trials if t.is_confirmation and t.state == TrialState.COMPLETE]
    metrics = [metric for _, metric in spec.objective.objectives()]
    noises = [measurement_noise(confirmations, complete_search, i) for i in range(len(metrics))]
    verdict = verdict_of(study, spec)
    ran_with = attrs.spec_sha256 if attrs.spec_sha256 is not None else spec_sha256
    contents = ReportContents(
        study_name=study.study_name,
        generated_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        spec_changed=ran_with != spec_sha256,
        state=study_state(trials, spec, attrs, now),
        verdict=verdict_block(study, spec),
        measured=measured_facts(spec, trials, dynamo_version),
        metrics=metrics,
        noises=noises,
        knobs=knob_findings(spec.search_space, complete_search, metrics, noises, t_quantile),
        trials=trial_rows(trials),
        screen=screened,
    )
    view = search_view(study)
    plots = history_plots(view, metrics)
    plots.append(kve_ttft_plot(trials, spec.objective.ttft_target_seconds, kve_ceiling_of(trials)))
    plots += importance_plots(view, metrics)
    knobs, chosen = slice_knobs(view, matter_first(contents.knobs))
    plots.append(slice_plot(view, knobs, metrics[0], chosen))
    if len(metrics) > 1:
        plots.append(pareto_plot(view, metrics))
    plots += confirmation_plots(verdict, trials)
    screen_plots = [screen_live_plot(screened.agreement)] if screened is not None else []
    return Report(contents=contents, plots=plots, screen_plots=screen_plots)
