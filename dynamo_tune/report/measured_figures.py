"""The two report plots Optuna does not have, drawn with plotly from the stored numbers. Pure.

- KVE against TTFT p95 of every COMPLETE trial, coloured by router mode (search trials filled,
  confirmation measurements open), the score's TTFT target and the workload's KVE ceiling drawn;
- per objective, each confirmed configuration's measurements, their mean and Student's t 95 %
  interval of the mean, the baseline's mean dashed; the winner and the configurations within
  noise of it (`Verdict.tied_with_winner`) marked as one group in the legend and hover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeGuard

import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.colors import qualitative

from dynamo_tune.report.figures import Plot
from dynamo_tune.study.confirmation.confidence import LEVEL, mean_interval
from dynamo_tune.study.confirmation.verdict import Verdict
from dynamo_tune.study.trial.attr_keys import TrialAttr
from dynamo_tune.study.trial.record import TrialRecord


def kve_ttft_plot(
    trials: Sequence[TrialRecord], ttft_target: float, kve_ceiling: float | None
) -> Plot:
    """KVE against TTFT p95 of every COMPLETE trial, coloured by router mode."""
    plot = Plot(
        key="kve-ttft",
        title="KV efficiency vs TTFT p95, per trial",
        caption="Filled: search trials; open diamonds: confirmation measurements. Dashed: the "
        "TTFT p95 target of the score; dotted: the workload's KVE ceiling.",
    )
    points: dict[tuple[str, bool], list[tuple[TrialRecord, float, float]]] = {}
    for t in trials:
        x, y = t.number_of(TrialAttr.KV_EFFICIENCY), t.number_of(TrialAttr.TTFT_P95)
        if t.state == TrialState.COMPLETE and _finite(x) and _finite(y):
            mode = str(t.router_config.get("mode", "?"))
            points.setdefault((mode, t.is_confirmation), []).append((t, x, y))
    if not points:
        plot.notes.append("not drawn: no COMPLETE trial with both KVE and TTFT p95")
        return plot
    modes = sorted({mode for mode, _ in points})
    colour = {m: qualitative.Plotly[i % len(qualitative.Plotly)] for i, m in enumerate(modes)}
    fig = go.Figure()
    for (mode, confirming), group in sorted(points.items()):
        fig.add_trace(
            go.Scatter(
                x=[x for _, x, _ in group],
                y=[y for _, _, y in group],
                mode="markers",
                name=f"{mode} (confirmation)" if confirming else mode,
                text=[_hover(t) for t, _, _ in group],
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


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _hover(t: TrialRecord) -> str:
    values = ", ".join(f"{v:.4f}" for v in t.values or [])
    of = f" (confirms #{t.confirms})" if t.is_confirmation else ""
    return f"#{t.number}{of}: {values}"


def confirmation_plots(verdict: Verdict | None, trials: Sequence[TrialRecord]) -> list[Plot]:
    """Per objective: each confirmed configuration's mean with its t interval (`LEVEL`)."""
    if verdict is None:
        return []
    measured: dict[int, list[TrialRecord]] = {}
    for t in trials:
        if t.is_confirmation and t.state == TrialState.COMPLETE and t.values is not None:
            measured.setdefault(t.confirms if t.confirms is not None else -1, []).append(t)
    configs = [verdict.baseline, *verdict.configs]
    group = {verdict.winner, *verdict.tied_with_winner} if verdict.tied_with_winner else set()
    plots = []
    for i, objective in enumerate(verdict.baseline.objectives):
        plot = Plot(
            key=f"confirm-{i}",
            title=f"Confirmation: {objective.metric}, mean and {LEVEL * 100:g} % interval per "
            "configuration",
            caption="Fresh interleaved measurements (points), their mean and Student's t "
            "interval of the mean (bars); dashed: the baseline's mean. The gain's interval in "
            "the verdict is Welch's, of the difference to the baseline.",
        )
        fig = go.Figure()
        labels, means, highs, lows, grouped = [], [], [], [], []
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
            if c.trial in group:
                grouped.append((c.label, mean))
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
        if grouped:
            fig.add_trace(_tie_group(grouped))
        fig.add_hline(y=verdict.baseline.objectives[i].summary.mean, line_dash="dash")
        fig.update_layout(title=plot.title, yaxis_title=objective.metric, showlegend=bool(grouped))
        plot.figure = fig
        plots.append(plot)
    return plots


def _tie_group(grouped: Sequence[tuple[str, float]]) -> go.Scatter:
    """The winner and the configurations within noise of it, marked as one group."""
    return go.Scatter(
        x=[label for label, _ in grouped],
        y=[mean for _, mean in grouped],
        mode="markers",
        name="winner and statistically tied (within noise of it)",
        marker={"size": 16, "symbol": "star-open", "color": "#2a9d4b", "line": {"width": 2}},
        hovertemplate="%{x}: mean %{y:.4f}<extra>the winner or tied with it</extra>",
    )
