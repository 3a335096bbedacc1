"""Ties told as ties: every confirmed configuration compared with the winner, hand-computed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from optuna.trial import TrialState

from dynamo_tune.report.measured_figures import confirmation_plots
from dynamo_tune.study.confirmation.confidence import LEVEL, METHOD
from dynamo_tune.study.confirmation.ties import vs_winner, within_noise
from dynamo_tune.study.confirmation.verdict import Verdict, decide
from dynamo_tune.study.confirmation.verdict_text import lines, tie_group, ties
from dynamo_tune.study.spec.schema import ConstraintSpec, ObjectiveSpec
from dynamo_tune.study.trial.record import TrialRecord

T_975_DF4 = 2.7764451051977987
"""Student's t quantile P(T <= x) = 0.975 at 4 degrees of freedom (tables: 2.776)."""

BASELINE = [0.70, 0.71, 0.72]  # mean 0.71, sd 0.01
WINNER = [0.89, 0.90, 0.91]  # mean 0.90, sd 0.01
CLOSE = [0.87, 0.89, 0.91]  # mean 0.89, sd 0.02: 0.01 behind the winner, se 0.0129
FAR = [0.79, 0.80, 0.81]  # mean 0.80, sd 0.01: 0.10 behind the winner, se 0.0082


def _measurements(
    groups: dict[int, Sequence[float]], x: dict[int, float] | None = None
) -> tuple[dict[int, TrialRecord], dict[int, list[TrialRecord]]]:
    """Search trial n (preset `p<n>` for n > 0) and its confirmation measurements."""
    sources: dict[int, TrialRecord] = {}
    measured: dict[int, list[TrialRecord]] = {}
    number = 100
    for n, values in groups.items():
        sources[n] = TrialRecord(
            number=n, state=TrialState.COMPLETE, baseline=n == 0, preset=f"p{n}" if n else None,
            params={"router.mode": "kv"}, values=(values[0],),
        )  # fmt: skip
        for v in values:
            number += 1
            measured.setdefault(n, []).append(
                TrialRecord(
                    number=number, state=TrialState.COMPLETE, values=(v,), stage="confirm",
                    confirms=n, measured={"kv_efficiency": (x or {}).get(n, 0.5)},
                )
            )  # fmt: skip
    return sources, measured


def _decide(
    groups: dict[int, Sequence[float]],
    objective: ObjectiveSpec | None = None,
    x: dict[int, float] | None = None,
) -> Verdict:
    """The verdict of baseline #0 and the configurations 1, 2, ... in `groups`."""
    sources, measured = _measurements(groups, x)
    order = [n for n in groups if n != 0]
    return decide(sources, measured, 0, order, objective or ObjectiveSpec(), {})


def test_one_configuration_within_noise_of_the_winner_and_one_not() -> None:
    verdict = _decide({0: BASELINE, 1: WINNER, 2: CLOSE, 3: FAR})
    assert verdict.kind == "winner" and verdict.winner == 1
    by_trial = {c.trial: c for c in verdict.configs}
    assert by_trial[1].vs_winner is None  # the winner itself
    close, far = by_trial[2].vs_winner, by_trial[3].vs_winner
    assert close is not None and far is not None
    assert close.method == far.method == METHOD and close.confidence == far.confidence == LEVEL
    # CLOSE − WINNER: diff -0.01, se = sqrt(0.02²/3 + 0.01²/3) = 0.0129 > |diff|; every 95 %
    # t quantile is > 1.96, so the interval contains 0. df = (5/3)² / ((1/3)² + (4/3)²)·2 = 50/17
    assert close.diff == pytest.approx(-0.01)
    assert close.df == pytest.approx(50 / 17)
    assert close.low < 0.0 < close.high
    # FAR − WINNER: diff -0.10, se = sqrt(2 · 0.01²/3), df = 4 (equal sd and n)
    half = T_975_DF4 * math.sqrt(2 * 0.01**2 / 3)  # 0.02267
    assert far.diff == pytest.approx(-0.10)
    assert far.df == pytest.approx(4.0)
    assert far.low == pytest.approx(-0.10 - half) and far.high == pytest.approx(-0.10 + half)
    assert far.high < 0.0
    assert verdict.tied_with_winner == [2]


def test_the_tie_is_rendered_after_the_headline_relative_to_the_winner() -> None:
    verdict = _decide({0: BASELINE, 1: WINNER, 2: CLOSE, 3: FAR})
    close = verdict.configs[1].vs_winner
    assert close is not None
    low, high = 100 * close.low / 0.90, 100 * close.high / 0.90  # percent of the winner's mean
    expected = f"within noise of the winner (config − winner, 95 % CI): #2 (p2) -1.1 % ({low:.1f}..{high:.1f} %)"  # noqa: E501
    assert ties(verdict) == expected
    body = lines(verdict)
    assert body[body.index(expected) - 1].startswith("confirmed winner: #1 (p1)")
    assert tie_group(verdict) == (
        "statistically tied with the winner #1 (p1): #2 (p2) (Welch's t 95 % interval of the "
        "difference to the winner contains 0; not told apart from it)"
    )


def test_no_tie_no_line() -> None:
    verdict = _decide({0: BASELINE, 1: WINNER, 3: FAR})
    assert verdict.winner == 1 and verdict.tied_with_winner == []
    assert verdict.configs[1].vs_winner is not None  # compared, not tied
    assert ties(verdict) is None and tie_group(verdict) is None
    assert not [line for line in lines(verdict) if "within noise of the winner" in line]


def test_an_infeasible_configuration_is_compared_but_not_listed_as_tied() -> None:
    objective = ObjectiveSpec(constraints=[ConstraintSpec(metric="kv_efficiency", min=0.4)])
    verdict = _decide({0: BASELINE, 1: WINNER, 2: CLOSE}, objective=objective, x={2: 0.1})
    assert verdict.winner == 1 and not verdict.configs[1].feasible
    vs = verdict.configs[1].vs_winner
    assert vs is not None and within_noise(vs)
    assert verdict.tied_with_winner == []


def test_no_winner_and_pareto_verdicts_carry_no_tie_data() -> None:
    level = _decide({0: BASELINE, 1: [0.70, 0.71, 0.72]})  # the baseline's values again
    assert level.kind == "no_winner"
    assert level.tied_with_winner == [] and all(c.vs_winner is None for c in level.configs)
    assert ties(level) is None
    pareto_objective = ObjectiveSpec(
        directions=[{"maximize": "score"}, {"minimize": "ttft_p95_seconds"}]
    )
    sources, measured = _measurements({0: BASELINE, 1: WINNER, 2: CLOSE})
    two = {n: [r.model_copy(update={"values": (*(r.values or ()), 1.0)}) for r in rs]
           for n, rs in measured.items()}  # fmt: skip
    pareto = decide(sources, two, 0, [1, 2], pareto_objective, {})
    assert pareto.kind == "pareto" and pareto.winner is None
    assert pareto.tied_with_winner == [] and all(c.vs_winner is None for c in pareto.configs)
    assert ties(pareto) is None and tie_group(pareto) is None


def test_a_verdict_stored_without_the_tie_fields_reads_with_defaults() -> None:
    verdict = _decide({0: BASELINE, 1: WINNER, 2: CLOSE, 3: FAR})
    stored = verdict.model_dump(mode="json")
    del stored["tied_with_winner"]
    for c in [stored["baseline"], *stored["configs"]]:
        del c["vs_winner"]
    old = Verdict.model_validate(stored)
    assert old.tied_with_winner == [] and all(c.vs_winner is None for c in old.configs)
    assert lines(old) == [line for line in lines(verdict) if line != ties(verdict)]


def test_within_noise_is_an_interval_containing_zero() -> None:
    equal = vs_winner({1: [1.0, 2.0, 3.0], 2: [1.0, 2.0, 3.0]}, 1)[2]
    assert equal.diff == 0.0 and within_noise(equal)  # equal means
    single = vs_winner({1: [1.0, 2.0, 3.0], 2: [9.0]}, 1)[2]
    assert math.isinf(single.high) and within_noise(single)  # one value: unknown spread
    assert not within_noise(vs_winner({1: [1.0, 1.1, 0.9], 2: [5.0, 5.1, 4.9]}, 1)[2])
    with pytest.raises(ValueError, match="the winner #7"):
        vs_winner({1: [1.0]}, 7)


def test_the_confirmation_plot_marks_the_winner_and_its_ties_as_one_group() -> None:
    verdict = _decide({0: BASELINE, 1: WINNER, 2: CLOSE, 3: FAR})
    _, measured = _measurements({0: BASELINE, 1: WINNER, 2: CLOSE, 3: FAR})
    trials = [r for rs in measured.values() for r in rs]
    (plot,) = confirmation_plots(verdict, trials)
    assert plot.figure is not None
    groups = [t for t in plot.figure.data if t.name and "statistically tied" in t.name]
    assert [list(t.x) for t in groups] == [["#1 (p1)", "#2 (p2)"]]
    assert plot.figure.layout.showlegend is True
    (alone,) = confirmation_plots(_decide({0: BASELINE, 1: WINNER, 3: FAR}), trials)
    assert alone.figure is not None and not alone.figure.layout.showlegend
