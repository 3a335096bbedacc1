"""The report's plots: Optuna's own (`optuna.visualization`) where it has one, else plotly. Pure.

Optuna's plots read a *view*: an in-memory study holding the search stage's finished trials
only (a confirmation measurement repeats a configuration already plotted, and would count a
configuration several times in importances). Two plots Optuna does not have are plotly
figures of the stored numbers: KVE against TTFT p95 per trial (coloured by router mode, the
TTFT target and the workload's KVE ceiling drawn), and the confirmation's means with their
95 % t intervals (every measurement drawn too).

Importances are PED-ANOVA's (Optuna's default evaluator: no scikit-learn), which counts a
conditional knob only over the trials where it was active. Warnings Optuna raises while
plotting (too few trials for a quantile, ...) become the plot's note, never noise on stderr.
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
from plotly.colors import qualitative

from dynamo_tune.study.attr_keys import TrialAttr
from dynamo_tune.study.confidence import mean_interval
from dynamo_tune.study.readback import is_confirmation
from dynamo_tune.study.verdict import Verdict


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
    """An in-memory study of `study`'s finished search trials (same directions)."""
    view = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(), directions=study.directions
    )
    finished = study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    )
    view.add_trials([t for t in finished if not is_confirmation(t)])
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
    names = list(dict.fromkeys(k for t in view.trials for k in t.params))
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


def kve_ttft_plot(
    trials: Sequence[FrozenTrial], ttft_target: float, kve_ceiling: float | None
) -> Plot:
    """KVE against TTFT p95 of every COMPLETE trial, coloured by router mode."""
    plot = Plot(
        key="kve-ttft",
        title="KV efficiency vs TTFT p95, per trial",
        caption="Filled: search trials; open diamonds: confirmation measurements. Dashed: the "
        "TTFT p95 target of the score; dotted: the workload's KVE ceiling.",
    )
    points: dict[tuple[str, bool], list[FrozenTrial]] = {}
    for t in trials:
        x, y = t.user_attrs.get(TrialAttr.KV_EFFICIENCY), t.user_attrs.get(TrialAttr.TTFT_P95)
        if t.state == TrialState.COMPLETE and isinstance(x, float) and isinstance(y, float):
            mode = str((t.user_attrs.get(TrialAttr.ROUTER_CONFIG) or {}).get("mode", "?"))
            points.setdefault((mode, is_confirmation(t)), []).append(t)
    if not points:
        plot.notes.append("not drawn: no COMPLETE trial with both KVE and TTFT p95")
        return plot
    modes = sorted({mode for mode, _ in points})
    colour = {m: qualitative.Plotly[i % len(qualitative.Plotly)] for i, m in enumerate(modes)}
    fig = go.Figure()
    for (mode, confirming), group in sorted(points.items()):
        fig.add_trace(
            go.Scatter(
                x=[t.user_attrs[TrialAttr.KV_EFFICIENCY] for t in group],
                y=[t.user_attrs[TrialAttr.TTFT_P95] for t in group],
                mode="markers",
                name=f"{mode} (confirmation)" if confirming else mode,
                text=[_hover(t) for t in group],
                hovertemplate="%{text}<br>KVE %{x:.3f}<br>TTFT p95 %{y:.3f} s<extra></extra>",
                marker={
                    "color": colour[mode],
                    "size": 9,
                    "symbol": "diamond-open" if confirming else "circle",
                },
            )
        )
    fig.add_hline(y=ttft_target, line_dash="dash", annotation_text=f"TTFT target {ttft_target:g} s")
    if kve_ceiling is not None:
        fig.add_vline(
            x=kve_ceiling, line_dash="dot", annotation_text=f"KVE ceiling {kve_ceiling:.3f}"
        )
    fig.update_layout(
        title=plot.title, xaxis_title="KV efficiency (cached / prompt tokens)",
        yaxis_title="TTFT p95 (s)", legend_title="router mode",
    )  # fmt: skip
    plot.figure = fig
    return plot


def _hover(t: FrozenTrial) -> str:
    values = ", ".join(f"{v:.4f}" for v in t.values or [])
    of = f" (confirms #{t.user_attrs.get(TrialAttr.CONFIRMS)})" if is_confirmation(t) else ""
    return f"#{t.number}{of}: {values}"


def confirmation_plots(verdict: Verdict | None, trials: Sequence[FrozenTrial]) -> list[Plot]:
    """Per objective: each confirmed configuration's mean with its 95 % t interval."""
    if verdict is None:
        return []
    measured: dict[int, list[FrozenTrial]] = {}
    for t in trials:
        if is_confirmation(t) and t.state == TrialState.COMPLETE and t.values is not None:
            measured.setdefault(int(t.user_attrs.get(TrialAttr.CONFIRMS, -1)), []).append(t)
    configs = [verdict.baseline, *verdict.configs]
    plots = []
    for i, objective in enumerate(verdict.baseline.objectives):
        plot = Plot(
            key=f"confirm-{i}",
            title=f"Confirmation: {objective.metric}, mean and 95 % interval per configuration",
            caption="Fresh interleaved measurements (points), their mean and Student's t "
            "interval of the mean (bars); dashed: the baseline's mean. The gain's interval in "
            "the verdict is Welch's, of the difference to the baseline.",
        )
        fig = go.Figure()
        labels, means, highs, lows = [], [], [], []
        for c in configs:
            values = [
                t.values[i] for t in measured.get(c.trial, []) if t.values and math.isfinite(
                    t.values[i])
            ]  # fmt: skip
            if not values:
                continue
            low, high = mean_interval(values)
            mean = c.objectives[i].summary.mean
            labels.append(c.label)
            means.append(mean)
            highs.append(high - mean if math.isfinite(high) else 0.0)
            lows.append(mean - low if math.isfinite(low) else 0.0)
            fig.add_trace(
                go.Scatter(
                    x=[c.label] * len(values), y=values, mode="markers", showlegend=False,
                    marker={"color": "rgba(80,80,80,0.45)", "size": 7},
                    hovertemplate="%{y:.4f}<extra>" + c.label + "</extra>",
                )
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=labels, y=means, mode="markers", name="mean",
                error_y={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows},
                marker={"size": 12, "symbol": "line-ew-open", "line": {"width": 3}},
            )
        )  # fmt: skip
        fig.add_hline(y=verdict.baseline.objectives[i].summary.mean, line_dash="dash")
        fig.update_layout(title=plot.title, yaxis_title=objective.metric, showlegend=False)
        plot.figure = fig
        plots.append(plot)
    return plots
