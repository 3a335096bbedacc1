"""Which confirmed configurations the winner is not told apart from. Pure.

The confirmed winner has the best confirmed mean among the configurations that beat the
baseline, but one just behind it may be as good. Each confirmed configuration is compared with
the winner as with the baseline: Welch's interval (`confidence.METHOD`, `confidence.LEVEL`) of
mean(config) − mean(winner). A configuration whose interval contains 0 is **within noise of
the winner** (tied with it); an unbounded interval (a group with fewer than 2 measurements)
contains 0, so such a configuration is not told apart either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dynamo_tune.study.confirmation.confidence import LEVEL, Difference, welch_interval


def vs_winner(
    values: Mapping[int, Sequence[float]], winner: int, level: float = LEVEL
) -> dict[int, Difference]:
    """Welch's interval of mean(config) − mean(winner) at `level`, per trial number.

    `values[n]` holds the finite confirmation values (first objective) of configuration n,
    the winner's included; the winner itself and a configuration without values get none.
    ValueError when the winner has no value.
    """
    best = values.get(winner)
    if not best:
        raise ValueError(f"the winner #{winner} must have confirmation values, but got {best}.")
    return {n: welch_interval(v, best, level) for n, v in values.items() if n != winner and v}


def within_noise(d: Difference) -> bool:
    """Whether the interval contains 0 (low <= 0 <= high): the two are not told apart."""
    return d.low <= 0.0 <= d.high
