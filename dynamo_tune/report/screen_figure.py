"""The report's screen stage plot: screen score against live score per configuration. Pure.

One point per configuration measured both ways (`ScreenAgreement.pairs`: the baseline, the
presets and the screened configurations queued live), labelled with its live trial; Spearman's
rho and the number of pairs in the title. The two scores are on the same scale but not equal
(the replay's engine model is not the deployment): what matters is whether the ranks agree.
"""

from __future__ import annotations

import plotly.graph_objects as go

from dynamo_tune.report.figures import Plot
from dynamo_tune.study.confirmation.agreement import ScreenAgreement


def rho_text(shown: ScreenAgreement) -> str:
    """`Spearman's rho 0.80, n=4` (`undefined` below two pairs or with a constant side)."""
    rho = "undefined" if shown.rho is None else f"{shown.rho:.2f}"
    return f"Spearman's rho {rho}, n={shown.n}"


def screen_live_plot(shown: ScreenAgreement) -> Plot:
    """Screen vs live score of each configuration measured both ways."""
    plot = Plot(
        key="screen-live",
        title=f"Screen vs live score per configuration ({rho_text(shown)})",
        caption="x: the configuration's mean screen score over its virtual-time replays; y: its "
        "mean live score (search trial and confirmation measurements). Labels: the live trial "
        "and where the configuration came from. The screen predicts the live ranking when the "
        "points rise from left to right: only the ranks count, not the two scores' scales.",
    )
    if not shown.pairs:
        plot.notes.append("not drawn: no configuration was measured both in the screen and live")
        return plot
    fig = go.Figure(
        go.Scatter(
            x=[p.screen for p in shown.pairs],
            y=[p.live for p in shown.pairs],
            mode="markers+text",
            text=[p.label for p in shown.pairs],
            textposition="top center",
            customdata=[[p.screen_trial, p.live_n] for p in shown.pairs],
            hovertemplate="%{text} (screen #%{customdata[0]})<br>screen %{x:.4f}<br>"
            "live %{y:.4f} (mean of %{customdata[1]})<extra></extra>",
            marker={"size": 11, "color": "#3a6fc4"},
            showlegend=False,
        )
    )
    fig.update_layout(
        title=plot.title, xaxis_title="screen score (virtual-time replay)",
        yaxis_title="live score",
    )  # fmt: skip
    plot.figure = fig
    return plot
