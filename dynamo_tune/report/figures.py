"""The report's plots Optuna has (`optuna.visualization`), and the `Plot` they travel in. Pure.

Optuna's plots read a *view*: an in-memory study holding the search stage's finished trials
only (a confirmation measurement repeats a configuration already plotted, and would count a
configuration several times in importances). The plots Optuna does not have are in
`measured_figures`.

Importances are PED-ANOVA's (Optuna's default evaluator: no scikit-learn), which counts a
conditional knob only over the trials where it was active. They are drawn over the knobs that
*varied* (took two or more values among the COMPLETE search trials: a knob held at one value
has nothing to rank, yet PED-ANOVA gives it a large share) and only from
`MIN_IMPORTANCE_TRIALS` COMPLETE search trials on. Slices show varied knobs only. Warnings
Optuna raises while plotting become the plot's note, never noise on stderr.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import optuna
import plotly.graph_objects as go
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.study.trial.record import TrialRecord

TOP_QUANTILE = 0.25
"""PED-ANOVA's target quantile here: importances describe the best quarter of the trials."""
MIN_TOP_TRIALS = 5
"""Trials the best quarter must hold: Optuna's PED-ANOVA advises at least 5 above the target
quantile; fewer and one trial's values decide a knob's share."""
MIN_IMPORTANCE_TRIALS = math.ceil(MIN_TOP_TRIALS / TOP_QUANTILE)
"""COMPLETE search trials (with a finite value) below which importances are not drawn: 20."""

IMPORTANCE_VS_KNOBS = (
    "Why this can differ from the parameter importances plot: they answer different "
    "questions. An importance is a model fitted over the COMPLETE search trials only "
    f"(PED-ANOVA: how differently a knob's values are spread among the best {TOP_QUANTILE:.0%} "
    "of them than among all of them), with no notion of measurement noise: a knob the search "
    "held at one value in most trials can rank low and still matter, and one whose values "
    "happened to line up with good trials can rank high without moving the result. This "
    "section compares the mean result of trials grouped by the knob's value against the noise "
    "measured by repeating configurations: it says whether a knob moved the result. Both leave "
    "out confirmation measurements; knobs held at one value are left out of the importances "
    "and are undecided here."
)
"""Why the importance plot and the knob section may differ (the knob section shows it)."""


@dataclass
class Plot:
    """One plot of the report: a figure, or a note saying why there is none."""

    key: str
    title: str
    caption: str
    figure: go.Figure | None = None
    notes: list[str] = field(default_factory=list)


@contextmanager
def _noting(plot: Plot) -> Iterator[None]:
    """Optuna's warnings while building `plot` become its notes; a ValueError its reason."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (ValueError, ZeroDivisionError) as exc:
            plot.figure = None
            plot.notes.append(f"not drawn: {exc}")
    for w in caught:
        text = str(w.message).split("\n")[0]
        if text not in plot.notes:
            plot.notes.append(text)


def search_view(study: optuna.Study) -> optuna.Study:
    """An in-memory study of `study`'s finished search trials (same directions): their state,
    values, parameters and system attrs (constraints); numbered from 0 in their order."""
    view = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(), directions=study.directions
    )
    finished = study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    )
    # Optuna's plots deep-copy the view's trials more than once: without the ~60 user attrs
    # of each trial (not plotted) that copy is cheap.
    view.add_trials(
        [
            optuna.trial.create_trial(
                state=t.state,
                values=t.values,
                params=t.params,
                distributions=t.distributions,
                system_attrs=t.system_attrs,
            )
            for t in finished
            if not TrialRecord.from_frozen(t).is_confirmation
        ]
    )
    return view


def _target(i: int, n: int) -> Callable[[FrozenTrial], float] | None:
    """Optuna's target for objective i (None: a single-objective study's own value)."""
    if n == 1:
        return None
    return lambda t: t.values[i]


def _importance_target(
    i: int, directions: Sequence[StudyDirection]
) -> Callable[[FrozenTrial], float] | None:
    """PED-ANOVA ranks low targets best when given one: a maximized objective is negated."""
    if len(directions) == 1:
        return None
    sign = -1.0 if directions[i] == StudyDirection.MAXIMIZE else 1.0
    return lambda t: sign * t.values[i]


def history_plots(view: optuna.Study, metrics: Sequence[str]) -> list[Plot]:
    plots = []
    for i, metric in enumerate(metrics):
        plot = Plot(
            key=f"history-{i}",
            title=f"Optimization history: {metric}",
            caption="Each search trial's value and the best so far (infeasible trials grey).",
        )
        with _noting(plot):
            plot.figure = optuna.visualization.plot_optimization_history(
                view, target=_target(i, len(metrics)), target_name=metric
            )
        plots.append(plot)
    return plots


def scored(view: optuna.Study, objective: int) -> list[FrozenTrial]:
    """The view's COMPLETE trials with a finite value of objective `objective` (the ones
    PED-ANOVA and the slices use)."""
    complete = view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in complete if t.values is not None and math.isfinite(t.values[objective])]


def varied_knobs(trials: Sequence[FrozenTrial]) -> list[str]:
    """Knobs that took two or more values among `trials` (where active), first seen first."""
    seen: dict[str, set[str]] = {}
    for t in trials:
        for k, v in t.params.items():
            seen.setdefault(k, set()).add(repr(v))
    return [k for k, values in seen.items() if len(values) > 1]


def _held(trials: Sequence[FrozenTrial], varied: Sequence[str]) -> str:
    """The knobs held at one value among `trials`: "router.temperature=0, hints.x=true"."""
    held = {k: v for t in trials for k, v in t.params.items() if k not in varied}
    return ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in held.items())


def importance_ranking(view: optuna.Study) -> list[str] | None:
    """The varied knobs by PED-ANOVA importance on the first objective, most important first;
    None below `MIN_IMPORTANCE_TRIALS` or with no varied knob (no importance is drawn)."""
    trials = scored(view, 0)
    varied = varied_knobs(trials)
    if len(trials) < MIN_IMPORTANCE_TRIALS or not varied:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the importance plot reports them
        ranked = get_param_importances(
            view,
            evaluator=PedAnovaImportanceEvaluator(target_quantile=TOP_QUANTILE),
            params=varied,
            target=_importance_target(0, view.directions),
        )
    return list(ranked)


def too_few_text(n: int) -> str:
    """Why importances are not drawn over `n` COMPLETE search trials."""
    return (
        f"not drawn: {n} COMPLETE search trial(s), fewer than {MIN_IMPORTANCE_TRIALS}. "
        f"PED-ANOVA compares the best {TOP_QUANTILE:.0%} of the trials with all of them and "
        f"needs at least {MIN_TOP_TRIALS} trials in that best group; with fewer, one trial's "
        "values decide the ranking. The knob section below does not need them."
    )


def importance_plots(view: optuna.Study, metrics: Sequence[str]) -> list[Plot]:
    """One importance plot per objective over the knobs that varied, or the reason it is not
    drawn; the plot notes which knobs were left out and why it may differ from the knob
    section."""
    plots = []
    for i, metric in enumerate(metrics):
        plot = Plot(
            key=f"importance-{i}",
            title=f"Parameter importances: {metric}",
            caption=f"PED-ANOVA (Optuna's): how much each knob's distribution among the best "
            f"{TOP_QUANTILE:.0%} of the COMPLETE search trials differs from its distribution "
            "among all of them; a conditional knob counts only in trials where it was active. "
            "Knobs held at one value in every search trial are left out. A model fitted over "
            "the search trials, not a measured effect: the knob section below says whether a "
            "knob moved the result beyond noise, and why the two can differ.",
        )
        trials = scored(view, i)
        varied = varied_knobs(trials)
        if len(trials) < MIN_IMPORTANCE_TRIALS:
            plot.notes.append(too_few_text(len(trials)))
        elif not varied:
            plot.notes.append("not drawn: every knob took one value in every search trial")
        else:
            if held := _held(trials, varied):
                plot.notes.append(f"left out, one value in every search trial: {held}")
            with _noting(plot), warnings.catch_warnings():
                # `_importance_target` already negates a maximized objective
                warnings.filterwarnings("ignore", message=".*importances of params to achieve low")
                plot.figure = optuna.visualization.plot_param_importances(
                    view,
                    evaluator=PedAnovaImportanceEvaluator(target_quantile=TOP_QUANTILE),
                    params=varied,
                    target=_importance_target(i, view.directions),
                    target_name=metric,
                )
        plots.append(plot)
    return plots


def slice_knobs(view: optuna.Study, preferred: Sequence[str], n: int = 2) -> tuple[list[str], str]:
    """Up to `n` varied knobs to slice, and how they were chosen: by importance when it is
    drawn, else in the order `preferred` (the knob section's: those that matter first)."""
    ranking = importance_ranking(view)
    if ranking is not None:
        return ranking[:n], "the most important"
    varied = varied_knobs(scored(view, 0))
    order = [k for k in preferred if k in varied] + [k for k in varied if k not in preferred]
    return order[:n], "that varied, those that matter in the knob section first"


def slice_plot(view: optuna.Study, knobs: Sequence[str], metric: str, chosen: str) -> Plot:
    """Slices of `knobs` (chosen as `chosen` says) on the first objective."""
    plot = Plot(
        key="slice",
        title=f"Slices of {len(knobs)} knob(s), {chosen}: {metric}",
        caption="Each COMPLETE search trial's value against the knob's value (trials where the "
        "knob was not active are left out); colour: trial number. Knobs held at one value in "
        "every search trial are not sliced.",
    )
    if not knobs:
        plot.notes.append("not drawn: no knob took two values in the COMPLETE search trials")
        return plot
    with _noting(plot):
        plot.figure = optuna.visualization.plot_slice(
            view, params=list(knobs), target=_target(0, len(view.directions)), target_name=metric
        )
    return plot


def pareto_plot(view: optuna.Study, metrics: Sequence[str]) -> Plot:
    plot = Plot(
        key="pareto",
        title="Pareto front",
        caption="COMPLETE search trials; the non-dominated feasible ones highlighted.",
    )
    with _noting(plot):
        plot.figure = optuna.visualization.plot_pareto_front(view, target_names=list(metrics))
    return plot
