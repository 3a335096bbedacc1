"""Every text of a verdict, rendered from its data (`verdict.Verdict`). Pure.

    confirmation (Welch's t, 95 % intervals):                       <- header
      #0 (baseline) score 0.4889 (sd 0.0000, n=2)                    <- one line per
      #1 (agentic) score 0.7439 (sd 0.0000, n=2); vs baseline +52.2 % (...)   objective
      confirmed winner: #1 (agentic): router.mode=kv ...: +52.2 % (...)   <- headline
      router.overlap_score_credit = 2 is within 5 % of the upper bound 2 ...  <- edges

`run`, `confirm`, `trials`, `best` and the report all print these; nothing parses them.
"""

from __future__ import annotations

import math
from typing import Final

from dynamo_tune.study.confirmation.confidence import gain_text
from dynamo_tune.study.confirmation.edges import suggestion
from dynamo_tune.study.confirmation.verdict import ConfigResult, ObjectiveResult, Verdict

WINNER: Final = "confirmed winner"
NO_WINNER: Final = "no configuration beats the baseline beyond noise"
PARETO: Final = "Pareto study: each objective's confirmed mean and interval; no single winner"


def header(verdict: Verdict) -> str:
    """`confirmation (Welch's t, 95 % intervals):`"""
    return f"confirmation ({verdict.method}, {verdict.confidence * 100:g} % intervals):"


def gain(verdict: Verdict, config: ConfigResult, index: int) -> str | None:
    """Objective `index` of `config` against the baseline, relative to the baseline's mean,
    e.g. "+4.2 % (95 % CI 2.8..5.6 %, n=5 each, Welch's t)"; None for the baseline."""
    o = config.objectives[index]
    base = verdict.baseline.objectives[index].summary
    if o.difference is None or not math.isfinite(base.mean):
        return None
    n1, n0 = o.summary.n, base.n
    return gain_text(o.difference, base.mean, n1 if n1 == n0 else (n1, n0))


def describe(config: ConfigResult) -> str:
    """The configuration's settings: `router.mode=kv hints.session_id=True ...`."""
    parts = [f"{k}={v}" for k, v in config.params.items()]
    parts += [f"{k}={v}" for k, v in config.overrides.items()]
    return " ".join(parts) or "(the study's fixed configuration)"


def _objective_line(verdict: Verdict, c: ConfigResult, i: int, o: ObjectiveResult) -> str:
    s = o.summary
    g = gain(verdict, c, i)
    vs = f"; vs baseline {g}" if g else ""
    infeasible = "" if c.feasible else f" [infeasible: {'; '.join(c.violations)}]"
    return f"{c.label} {o.metric} {s.mean:.4f} (sd {s.sd:.4f}, n={s.n}){vs}{infeasible}"


def headline(verdict: Verdict) -> str:
    """The concluding line: the confirmed winner, no winner (± the widest interval), or the
    Pareto note."""
    if verdict.kind == "pareto":
        return PARETO
    winner = verdict.winner_config
    if verdict.kind == "winner" and winner is not None:
        return f"{WINNER}: {winner.label}: {describe(winner)}: {gain(verdict, winner, 0)}"
    width = verdict.noise_half_width
    return NO_WINNER + (f" (±{width:.4f})" if width is not None else "")


def lines(verdict: Verdict) -> list[str]:
    """The verdict's body: one line per configuration and objective, the headline, then a
    suggestion per range edge worth widening."""
    out = [
        _objective_line(verdict, c, i, o)
        for c in [verdict.baseline, *verdict.configs]
        for i, o in enumerate(c.objectives)
    ]
    out.append(headline(verdict))
    out += [suggestion(e) for e in verdict.edges or []]
    return out


def block(verdict: Verdict) -> list[str]:
    """The header and the indented lines, as `run`, `confirm` and `trials` print them."""
    return [header(verdict), *(f"  {line}" for line in lines(verdict))]
