"""The report's plots Optuna has (`optuna.visualization`), and the `Plot` they travel in. Pure.

Optuna's plots read a *view*: an in-memory study holding the search stage's finished trials
only (a confirmation measurement repeats a configuration already plotted, and would count a
configuration several times in importances). The plots Optuna does not have are in
`measured_figures`.

Importances are PED-ANOVA's (Optuna's default evaluator: no scikit-learn), which counts a
conditional knob only over the trials where it was active. Warnings Optuna raises while
plotting (too few trials for a quantile, ...) become the plot's note, never noise on stderr.
"""

from __future__ import annotations

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


def importance_ranking(view: optuna.Study) -> list[str]:
    """Searched knobs by PED-ANOVA importance on the first objective, most important first
    (the view's own order when it cannot be computed)."""
    names = list(dict.fromkeys(k for t in view.get_trials(deepcopy=False) for k in t.params))
    complete = view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the importance plot reports them
        ranked = get_param_importances(
            view,
            evaluator=PedAnovaImportanceEvaluator(),
            target=_importance_target(0, view.directions),
        )
    return list(ranked) + [n for n in names if n not in ranked]


def importance_plots(view: optuna.Study, metrics: Sequence[str]) -> list[Plot]:
    plots = []
    for i, metric in enumerate(metrics):
        plot = Plot(
            key=f"importance-{i}",
            title=f"Parameter importances: {metric}",
            caption="PED-ANOVA (Optuna's default): how much each knob's distribution among the "
            "best trials differs from its distribution among all; a conditional knob counts "
            "only in trials where it was active.",
        )
        if len(view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
            plot.notes.append("not drawn: needs two or more COMPLETE search trials")
        else:
            with _noting(plot):
                plot.figure = optuna.visualization.plot_param_importances(
                    view,
                    evaluator=PedAnovaImportanceEvaluator(),
                    target=_importance_target(i, view.directions),
                    target_name=metric,
                )
        plots.append(plot)
    return plots


def slice_plot(view: optuna.Study, knobs: Sequence[str], metric: str) -> Plot:
    plot = Plot(
        key="slice",
        title=f"Slices of the {len(knobs)} most important knob(s): {metric}",
        caption="Each COMPLETE search trial's value against the knob's value (trials where the "
        "knob was not active are left out); colour: trial number.",
    )
    if not knobs:
        plot.notes.append("not drawn: no COMPLETE search trial")
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
