"""Every text of a verdict, rendered from its data (`verdict.Verdict`). Pure.

    confirmation (Welch's t, 95 % intervals):                       <- header
      #0 (baseline) score 0.4889 (sd 0.0000, n=2)                    <- one line per
      #1 (agentic) score 0.7439 (sd 0.0000, n=2); vs baseline +52.2 % (...)   objective
      confirmed winner: #1 (agentic): router.mode=kv ...: +52.2 % (...)   <- headline
      within noise of the winner (config − winner, 95 % CI): #5 -3.1 % (-9.9..3.7 %)  <- ties
      router.overlap_score_credit = 2 is within 5 % of the upper bound 2 ...  <- edges

`run`, `confirm`, `trials`, `best` and the report all print these; nothing parses them.
"""

from __future__ import annotations

import math
from typing import Final

from dynamo_tune.study.confirmation.agreement import LOW_RHO, MIN_PAIRS, ScreenAgreement
from dynamo_tune.study.confirmation.confidence import Difference, gain_text, relative
from dynamo_tune.study.confirmation.edges import suggestion
from dynamo_tune.study.confirmation.verdict import ConfigResult, ObjectiveResult, Verdict

WINNER: Final = "confirmed winner"
NO_WINNER: Final = "no configuration beats the baseline beyond noise"
PARETO: Final = "Pareto study: each objective's confirmed mean and interval; no single winner"
WITHIN_NOISE: Final = "within noise of the winner"
TIED: Final = "statistically tied with the winner"


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


def tied(verdict: Verdict) -> list[ConfigResult]:
    """The configurations within noise of the winner (`Verdict.tied_with_winner`)."""
    return [c for c in verdict.configs if c.trial in verdict.tied_with_winner]


def _vs_winner(d: Difference, winner_mean: float) -> str:
    """`-3.1 % (-9.9..3.7 %)` of the winner's mean; in the unit when that mean is 0."""
    rel = relative(d, winner_mean) if math.isfinite(winner_mean) else None
    if rel is None:
        return f"{d.diff:+.4f} ({d.low:.4f}..{d.high:.4f})"
    diff, low, high = (100.0 * x for x in rel)
    return f"{diff:+.1f} % ({low:.1f}..{high:.1f} %)"


def ties(verdict: Verdict) -> str | None:
    """`within noise of the winner (config − winner, 95 % CI): #5 -3.1 % (-9.9..3.7 %); ...`
    relative to the winner's mean; None when no configuration ties with the winner."""
    winner = verdict.winner_config
    if winner is None:
        return None
    mean = winner.objectives[0].summary.mean
    parts = [f"{c.label} {_vs_winner(c.vs_winner, mean)}" for c in tied(verdict) if c.vs_winner]
    level = f"{verdict.confidence * 100:g} % CI"
    return f"{WITHIN_NOISE} (config − winner, {level}): {'; '.join(parts)}" if parts else None


def tie_group(verdict: Verdict) -> str | None:
    """The report's group: `statistically tied with the winner #1 (agentic): #5, #7 (...)`;
    None when no configuration ties with the winner."""
    winner, group = verdict.winner_config, tied(verdict)
    if winner is None or not group:
        return None
    names = ", ".join(c.label for c in group)
    return (
        f"{TIED} {winner.label}: {names} ({verdict.method} {verdict.confidence * 100:g} % "
        "interval of the difference to the winner contains 0; not told apart from it)"
    )


def screen_line(agreement: ScreenAgreement) -> str:
    """Screen vs live: rho, n and whether the screen predicted this deployment's ranking."""
    rho = "undefined" if agreement.rho is None else f"{agreement.rho:.2f}"
    head = (
        f"screen vs live: Spearman's rho {rho} over {agreement.n} configurations measured both ways"
    )
    if agreement.predicts:
        return f"{head}: the screen predicted the live ranking here"
    why = (
        f"fewer than {MIN_PAIRS} pairs"
        if agreement.n < MIN_PAIRS or agreement.rho is None
        else f"rho < {LOW_RHO:g}"
    )
    return (
        f"{head} ({why}): the screening did not predict this deployment's live ranking; "
        "the live measurements above are the answer"
    )


def lines(verdict: Verdict) -> list[str]:
    """The verdict's body: one line per configuration and objective, the headline, the
    configurations within noise of the winner (if any), then a suggestion per range edge
    worth widening."""
    out = [
        _objective_line(verdict, c, i, o)
        for c in [verdict.baseline, *verdict.configs]
        for i, o in enumerate(c.objectives)
    ]
    out.append(headline(verdict))
    out += [t for t in [ties(verdict)] if t is not None]
    out += [suggestion(e) for e in verdict.edges or []]
    if verdict.screen is not None:
        out.append(screen_line(verdict.screen))
    return out


def block(verdict: Verdict) -> list[str]:
    """The header and the indented lines, as `run`, `confirm` and `trials` print them."""
    return [header(verdict), *(f"  {line}" for line in lines(verdict))]
