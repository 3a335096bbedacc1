"""The report's importances and slices (issue 19, point 4): only knobs that varied among the
search trials, none below a minimum number of trials (the reason shown instead), confirmation
measurements never counted, and the page saying why importances and the knob section differ.

Studies are real Optuna studies (SQLite, or in memory) of hand-made trials; the report is built
by `build_report` and rendered by `render`, as `dynamo-tune report` does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial
from report_helpers import text_of

from dynamo_tune.report import Report, build_report, render
from dynamo_tune.report.figures import Plot
from dynamo_tune.report.knobs import knob_finding
from dynamo_tune.study.confirmation.confidence import t_quantile
from dynamo_tune.study.spec.schema import FloatParam, StudySpec
from dynamo_tune.study.trial.record import TrialRecord

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
DISTRIBUTIONS = {
    "router.mode": CategoricalDistribution(["kv", "round-robin"]),
    "router.temperature": FloatDistribution(0.0, 1.0),
    "router.overlap_score_credit": FloatDistribution(0.0, 2.0),
}
SPEC = StudySpec.model_validate(
    {
        "study": {"name": "imp", "n_trials": 20},
        "deployment": {"kind": "local"},
        "workload": {"kind": "agentic"},
        "search_space": {
            "router.mode": {"type": "categorical", "choices": ["kv", "round-robin"]},
            "router.temperature": {"type": "float", "low": 0.0, "high": 1.0},
            "router.overlap_score_credit": {"type": "float", "low": 0.0, "high": 2.0},
        },
    }
)


def _search_params(i: int) -> dict[str, Any]:
    """Search trial i: router mode alternating, overlap credit 0, 0.5, ..., 2 repeating,
    temperature 0.0 in every one (held, as a study of fixed configurations does)."""
    return {
        "router.mode": "kv" if i % 2 == 0 else "round-robin",
        "router.temperature": 0.0,
        "router.overlap_score_credit": (i % 5) * 0.5,
    }


def _study(n_search: int, storage: Any = None) -> optuna.Study:
    """`n_search` COMPLETE search trials (kv scores 0.9, round-robin 0.8, +0.001·(i mod 3)),
    then 3 + 3 confirmation measurements of #0 and #1 stored with temperature 0.7 — a value
    no search trial has, so a confirmation counted as a search trial would make temperature
    vary."""
    study = optuna.create_study(
        storage=storage or optuna.storages.InMemoryStorage(),
        study_name="imp",
        direction="maximize",
    )
    for i in range(n_search):
        params = _search_params(i)
        value = (0.9 if params["router.mode"] == "kv" else 0.8) + 0.001 * (i % 3)
        study.add_trial(create_trial(value=value, params=params, distributions=DISTRIBUTIONS))
    for confirms, values in ((0, (0.90, 0.91, 0.89)), (1, (0.80, 0.81, 0.79))):
        params = {**_search_params(confirms), "router.temperature": 0.7}
        for v in values:
            study.add_trial(
                create_trial(
                    value=v,
                    params=params,
                    distributions=DISTRIBUTIONS,
                    user_attrs={"stage": "confirm", "confirms": confirms},
                )
            )
    return study


def _report(study: optuna.Study) -> Report:
    return build_report(study, SPEC, "sha", now=NOW)


def _plot(report: Report, key: str) -> Plot:
    (plot,) = [p for p in report.plots if p.key == key]
    return plot


def _sliced(figure: go.Figure) -> set[str]:
    """The knobs a slice figure has a panel for (its x axes' titles)."""
    return {figure.layout[k].title.text for k in figure.layout if k.startswith("xaxis")}


def test_a_knob_held_in_every_search_trial_is_neither_ranked_nor_sliced(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'imp.db'}")
    report = _report(_study(20, storage))
    importance = _plot(report, "importance-0")
    assert importance.figure is not None  # 20 search trials: the minimum
    ranked = set(importance.figure.data[0].y)
    assert ranked == {"router.mode", "router.overlap_score_credit"}
    assert "left out, one value in every search trial: router.temperature=0.0" in (importance.notes)
    sliced = _plot(report, "slice")
    assert sliced.figure is not None
    assert _sliced(sliced.figure) == {"router.mode", "router.overlap_score_credit"}
    assert sliced.title == "Slices of 2 knob(s), the most important: score"
    # the knob section agrees that temperature cannot be judged
    (temperature,) = [k for k in report.contents.knobs if k.name == "router.temperature"]
    assert temperature.text == "router.temperature: undecided (only one value measured)"


def test_below_the_minimum_no_importance_is_drawn_and_the_reason_is_shown() -> None:
    # 19 search trials + 6 confirmation measurements: 25 trials, but 19 search trials
    report = _report(_study(19))
    importance = _plot(report, "importance-0")
    assert importance.figure is None
    assert importance.notes == [
        "not drawn: 19 COMPLETE search trial(s), fewer than 20. PED-ANOVA compares the best "
        "25% of the trials with all of them and needs at least 5 trials in that best group; "
        "with fewer, one trial's values decide the ranking. The knob section below does not "
        "need them."
    ]
    page = text_of(render(report))
    assert "not drawn: 19 COMPLETE search trial(s), fewer than 20." in page
    # slices still drawn, of the knobs that varied, the one that matters first
    (mode,) = [k for k in report.contents.knobs if k.name == "router.mode"]
    assert mode.verdict == "matters"  # 0.9 vs 0.8, noise sd 0.01 from the confirmations
    sliced = _plot(report, "slice")
    assert sliced.figure is not None
    assert _sliced(sliced.figure) == {"router.mode", "router.overlap_score_credit"}
    assert sliced.title == (
        "Slices of 2 knob(s), that varied, those that matter in the knob section first: score"
    )


def test_a_three_trial_study_gets_no_importance() -> None:
    importance = _plot(_report(_study(3)), "importance-0")
    assert importance.figure is None
    assert importance.notes[0].startswith("not drawn: 3 COMPLETE search trial(s), fewer than 20.")


def test_the_page_says_why_importances_and_the_knob_section_differ() -> None:
    page = text_of(render(_report(_study(20))))
    knob_section = page.split("Knobs that did not matter")[1]
    assert (
        "Why this can differ from the parameter importances plot: they answer different "
        "questions. An importance is a model fitted over the COMPLETE search trials only"
    ) in knob_section
    assert "Both leave out confirmation measurements;" in knob_section
    plots_section = page.split("Parameter importances: score")[1].split("Slices of")[0]
    assert (
        "A model fitted over the search trials, not a measured effect: the knob section below "
        "says whether a knob moved the result beyond noise, and why the two can differ."
    ) in plots_section


def test_two_values_measured_always_make_two_groups() -> None:
    """0 once and 1 three times: two groups (the upper half was one value), not "only one
    value measured", so the knob section and the importances agree on what varied."""
    trials = [
        TrialRecord.from_frozen(
            create_trial(
                value=y,
                params={"router.temperature": x},
                distributions={"router.temperature": FloatDistribution(0.0, 1.0)},
            )
        )
        for x, y in ((0.0, 1.0), (1.0, 2.0), (1.0, 2.0), (1.0, 2.0))
    ]
    finding = knob_finding(
        "router.temperature",
        FloatParam(type="float", low=0.0, high=1.0),
        trials,
        0,
        "score",
        None,
        t_quantile,
    )
    assert [(g.label, g.n, g.mean) for g in finding.groups] == [
        ("router.temperature 0–0", 1, 1.0),
        ("router.temperature 1–1", 3, 2.0),
    ]
