"""A `Report` as one self-contained HTML page. Pure (text in, text out).

Everything is inline: the stylesheet, plotly.js (the copy bundled with the plotly package,
once, in the head) and each figure's data. The page loads nothing from another host, so it
opens offline and can be attached to a change request. Every text from the study is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from plotly.offline import get_plotlyjs

from dynamo_tune.report.contents import Report, ReportContents
from dynamo_tune.report.figures import IMPORTANCE_VS_KNOBS, Plot
from dynamo_tune.report.knobs import KnobFinding
from dynamo_tune.report.trial_rows import CLIENT_COLUMNS, CORE_COLUMNS
from dynamo_tune.study.confirmation.confidence import LEVEL
from dynamo_tune.study.confirmation.verdict_text import screen_line
from dynamo_tune.study.read.screen_view import ScreenView, live_text, params_text, size_text
from dynamo_tune.study.trial.attr_keys import HEADLINE_METRICS

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 24px; color: #1d2330; }
h1 { font-size: 22px; margin: 0 0 4px; } h3 { font-size: 15px; margin: 20px 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #d8dce4; padding-bottom: 4px; }
.meta { color: #5a6272; } .caption { color: #5a6272; margin: 0 0 4px; }
.status { background: #fff4d6; border: 1px solid #e9c46a; padding: 8px 12px; border-radius: 4px; }
.verdict { font-size: 17px; padding: 12px 16px; border-radius: 4px; border-left: 6px solid; }
.verdict.confirmed { background: #e8f6ec; border-color: #2a9d4b; }
.verdict.pareto { background: #e8f0fb; border-color: #3a6fc4; }
.verdict.no-winner, .verdict.no-result { background: #f1f2f4; border-color: #8a92a2; }
.verdict.unconfirmed { background: #fff4d6; border-color: #d99a00; }
.tied { padding: 6px 16px; border-left: 6px solid #2a9d4b; background: #f3faf5; }
pre { background: #f5f6f8; padding: 8px 12px; overflow-x: auto; border-radius: 4px; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d8dce4; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f1f2f4; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.FAIL td { background: #fdecec; } tr.RUNNING td, tr.WAITING td { background: #fff8e1; }
.facts { width: 100%; font-size: 13.5px; } .facts th { width: 170px; position: static; }
.note { color: #8a5a00; }
.plot { min-height: 460px; }
"""


def _e(text: object) -> str:
    return escape(str(text))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(c: ReportContents) -> str:
    v = c.verdict
    parts = ['<section id="verdict"><h2>1. Verdict</h2>']
    parts.append(f'<p class="verdict {v.kind.replace(" ", "-")}">{_e(v.headline)}</p>')
    if v.tied is not None:
        parts.append(f'<p class="tied">{_e(v.tied)}</p>')
    for chosen in v.chosen:
        parts.append(f"<h3>{_e(chosen.label)}: frontend flags</h3><pre>{_e(chosen.flags)}</pre>")
        parts.append(f"<h3>{_e(chosen.label)}: router and hints (YAML)</h3>")
        parts.append(f"<pre>{_e(chosen.router_yaml)}</pre>")
    if v.lines:
        parts.append("<h3>Confirmation</h3><ul>")
        parts += [f"<li>{_e(line)}</li>" for line in v.lines]
        parts.append("</ul>")
    parts.append("</section>")
    return "".join(parts)


def _measured(c: ReportContents, number: int) -> str:
    rows = [(f.label, f.text) for f in c.measured]
    rows.append(("trials", c.state.trials_text))
    rows.append(("time", c.state.timing_text))
    for noise, knob_metric in zip(c.noises, c.metrics, strict=True):
        text = (
            f"sd {noise.sd:.4f} of one trial value (df {noise.df}; {noise.source})"
            if noise is not None
            else "unknown: no configuration was measured twice"
        )
        rows.append((f"noise of {knob_metric}", text))
    body = "".join(f"<tr><th>{_e(label)}</th><td>{_e(text)}</td></tr>" for label, text in rows)
    return (
        f'<section id="measured"><h2>{number}. What was measured</h2>'
        f'<table class="facts"><tbody>{body}</tbody></table></section>'
    )


def _plot(p: Plot) -> str:
    parts = [f'<div class="figure" id="figure-{_e(p.key)}"><h3>{_e(p.title)}</h3>']
    parts.append(f'<p class="caption">{_e(p.caption)}</p>')
    if p.figure is not None:
        p.figure.update_layout(height=460, margin={"t": 50, "b": 50})
        drawn = p.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{p.key}",
            config={"displaylogo": False, "responsive": True},
        )
        parts.append(f'<div class="plot">{drawn}</div>')
    parts += [f'<p class="note">{_e(n)}</p>' for n in p.notes]
    parts.append("</div>")
    return "".join(parts)


def _screen(view: ScreenView, plots: Sequence[Plot], number: int) -> str:
    parts = [f'<section id="screen"><h2>{number}. Screen (virtual-time replay)</h2>']
    parts.append(
        f"<p>Study <code>{_e(view.name)}</code>: {_e(size_text(view))}. The search space was "
        "screened in Dynamo's virtual-time replay before the live search; the best screened "
        "configurations were then measured live.</p>"
    )
    if view.rows:
        parts.append(
            '<p class="caption">Best screened configurations (rank among the feasible ones by '
            "mean screen score), and every one measured or queued live; metrics are the "
            "replays' means. live: the live search trials that measured it (their mean live "
            "score).</p>"
        )
        header = ["rank", "screen #", "role", "score", *(label for label, _ in HEADLINE_METRICS)]
        parts.append(_table([*header, "live", "params"], (
            [str(r.rank) if r.rank is not None else "infeasible", str(r.screen_trial), r.role,
             f"{r.score:.4f}", *(_num(r.metrics[key]) for _, key in HEADLINE_METRICS),
             live_text(r), params_text(r.params)]
            for r in view.rows
        )))  # fmt: skip
    else:
        parts.append("<p>No COMPLETE screen trial yet.</p>")
    if view.queued is not None:
        queued = ", ".join(f"#{n}" for n in view.queued) or "none"
        parts.append(f"<p>Queued live: screen {_e(queued)}.</p>")
    parts.append(f"<p>{_e(screen_line(view.agreement))}.</p>")
    parts += [_plot(p) for p in plots]
    parts.append("</section>")
    return "".join(parts)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _knobs(c: ReportContents, number: int, noise_section: int) -> str:
    none = [k for k in c.knobs if k.verdict == "no effect"]
    parts = [f'<section id="knobs"><h2>{number}. Knobs that did not matter</h2>']
    if none:
        parts.append("<ul>" + "".join(f"<li>{_e(k.text)}</li>" for k in none) + "</ul>")
    elif all(n is None for n in c.noises):
        parts.append(
            "<p>Cannot tell: the measurement noise is unknown (no confirmation stage and one "
            "measurement per trial). <code>dynamo-tune confirm</code> measures it.</p>"
        )
    else:
        parts.append("<p>None: every searched knob moved the result beyond the noise, or "
                     "too few trials to tell (below).</p>")  # fmt: skip
    parts.append(
        '<p class="caption">How this is decided: over the COMPLETE search trials where the '
        "knob was active, trials are grouped by its value (each choice; the lower and upper "
        "half of a numeric range). Two groups are compared only between trials with the same "
        "values of the other categorical knobs (router mode, session ids, ...), and the "
        "differences are pooled. The knob has no effect beyond noise when no pooled difference "
        "exceeds what measurement noise alone would produce "
        f"({LEVEL:.0%} half-width t · sd · √(1/n₁ + 1/n₂) per stratum, pooled; sd the "
        "noise of one trial value from configurations measured more than once, section "
        f"{noise_section}). "
        "Numeric knobs still vary inside each group, so a knob can be listed as mattering when "
        "it does not; a knob listed above moved the result no more than repeating one "
        "configuration does.</p>"
    )
    parts.append(f'<p class="caption" id="importances-vs-knobs">{_e(IMPORTANCE_VS_KNOBS)}</p>')
    parts.append(_table(["knob", "objective", "finding", "groups (mean, n)"], (
        (k.name, k.metric, _finding(k), "; ".join(f"{g.label}: {g.mean:.4f} (n={g.n})"
                                                   for g in k.groups))
        for k in c.knobs
    )))  # fmt: skip
    parts.append("</section>")
    return "".join(parts)


def _finding(k: KnobFinding) -> str:
    return k.text.split(": ", 1)[1] if ": " in k.text else k.text


def _trials(c: ReportContents, number: int) -> str:
    header = ["#", "state", "role", "value", *(label for _, label in CORE_COLUMNS)]
    header += [*(label for _, label in CLIENT_COLUMNS), "params", "violations", "fail"]
    rows = []
    for r in c.trials:
        cells = [str(r.number), r.state, r.role, r.values, *r.metrics, *r.client]
        cells += [r.params, r.violations, r.fail_reason]
        numeric = range(3, 4 + len(r.metrics) + len(r.client))
        tds = "".join(
            f'<td class="num">{_e(x)}</td>' if i in numeric or i == 0 else f"<td>{_e(x)}</td>"
            for i, x in enumerate(cells)
        )
        rows.append(f'<tr class="{_e(r.state)}" id="trial-{r.number}">{tds}</tr>')
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return (
        f'<section id="trials"><h2>{number}. Trials ({len(c.trials)})</h2>'
        f"<p class=\"caption\">Core metrics are the frontend's over each trial's window; client "
        f"columns are what the workload itself measured.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def render(report: Report) -> str:
    """The whole page."""
    c = report.contents
    screen = 1 if c.screen is not None else 0  # the screen section comes after section 2
    knobs = 4 + screen
    status = "".join(f"<p>{_e(line)}</p>" for line in c.state.lines)
    if c.spec_changed:
        status += (
            f"<p>The study file changed since the study last ran; sections 2 and {knobs} "
            "describe the file as it is now.</p>"
        )
    body = [
        f"<h1>dynamo-tune report: {_e(c.study_name)}</h1>",
        f'<p class="meta">generated {_e(c.generated_at)}</p>',
        f'<div class="status">{status}</div>' if status else "",
        _verdict(c),
        _measured(c, 2),
        _screen(c.screen, report.screen_plots, 3) if c.screen is not None else "",
        f'<section id="plots"><h2>{3 + screen}. Plots</h2>',
        *(_plot(p) for p in report.plots),
        "</section>",
        _knobs(c, knobs, 2),
        _trials(c, knobs + 1),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>dynamo-tune report: {_e(c.study_name)}</title><style>{_CSS}</style>"
        '<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: "local"};</script>'
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body>" + "".join(body) + "</body></html>\n"
    )
