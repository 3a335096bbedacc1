"""Statistics of repeated measurements: mean and spread, Welch's interval of a difference. Pure.

The value that selected a configuration is not evidence for it (the winner's curse,
docs/architecture.md#noise-and-confirmation): a confirmed gain is the difference of fresh
repeats of the candidate and the baseline, reported with a confidence interval from Welch's t
(unequal variances, unequal counts).

`Summary` and `Difference` are frozen pydantic models, so they store as JSON in a study's user
attributes; an unbounded interval holds `-inf` / `inf`, written `-Infinity` / `Infinity`
(not strict JSON, but what Python's `json`, and so Optuna's storages, write and read back).

scipy is imported inside `t_quantile`, only when an interval is computed: every study command
imports this package. It imports `scipy.special.stdtrit` (the quantile `scipy.stats.t.ppf`
evaluates, same values) because `import scipy.stats` takes about 1 s more.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

LEVEL: Final = 0.95
"""The confidence level of every interval dynamo-tune reports (the one home of 95 %)."""
METHOD: Final = "Welch's t"
"""The name of the interval a confirmed difference carries."""


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class Summary(_Value):
    """`n` measurements: their mean and sample standard deviation (n − 1; 0.0 when n == 1)."""

    n: int
    mean: float
    sd: float


def summarize(values: Sequence[float]) -> Summary:
    """Mean and sample standard deviation sqrt(Σ(x − mean)² / (n − 1)) of `values`.

    Raises ValueError for no values or a non-finite one (a failed measurement is not a number
    to average).
    """
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"`values` must be one or more finite numbers, but got {list(values)}.")
    # statistics computes with exact fractions: identical values give their value as the mean
    # and exactly 0.0 as sd.
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Summary(n=len(values), mean=statistics.mean(values), sd=sd)


class Difference(_Value):
    """mean(candidate) − mean(baseline), in the measurements' unit, with its interval.

    [`low`, `high`] holds the true difference with probability `confidence`; `df` is the
    Welch–Satterthwaite degrees of freedom, None where the interval does not use one: an
    unbounded interval (a group with fewer than 2 values) or a point (no variance in either).
    """

    diff: float
    low: float
    high: float
    confidence: float
    df: float | None
    method: Literal["Welch's t"] = METHOD


def welch_interval(
    candidate: Sequence[float], baseline: Sequence[float], confidence: float = LEVEL
) -> Difference:
    """Welch's confidence interval of mean(candidate) − mean(baseline).

    With s² the sample variance and n the count of each group (1: candidate, 0: baseline):
        se = sqrt(s1²/n1 + s0²/n0)
        df = se⁴ / ((s1²/n1)²/(n1 − 1) + (s0²/n0)²/(n0 − 1))
        interval = diff ± t_{(1 + confidence)/2, df} · se
    Edge cases:
    - n < 2 in either group: that group's variance is unknown, so the interval is (-inf, inf)
      and `df` None; such a difference is never significant (`above_zero` is False).
    - no variance in both groups (se == 0): the difference is known exactly, [diff, diff],
      `df` None.
    - no variance in one group only: its term drops out and df = n − 1 of the other.
    Raises ValueError for an empty group, a non-finite value, or `confidence` outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`0 < confidence < 1` must hold, but got {confidence=}.")
    one, zero = summarize(candidate), summarize(baseline)
    diff = one.mean - zero.mean
    if one.n < 2 or zero.n < 2:
        inf = math.inf
        return Difference(diff=diff, low=-inf, high=inf, confidence=confidence, df=None)
    v1, v0 = one.sd**2 / one.n, zero.sd**2 / zero.n  # squared standard errors of the means
    se = math.sqrt(v1 + v0)
    if se == 0.0:
        return Difference(diff=diff, low=diff, high=diff, confidence=confidence, df=None)
    df = (v1 + v0) ** 2 / (v1**2 / (one.n - 1) + v0**2 / (zero.n - 1))

    half = t_quantile((1.0 + confidence) / 2.0, df) * se
    return Difference(diff=diff, low=diff - half, high=diff + half, confidence=confidence, df=df)


def mean_interval(values: Sequence[float], confidence: float = LEVEL) -> tuple[float, float]:
    """Student's t interval of the mean of `values`: mean ± t_{(1 + confidence)/2, n − 1} · sd/√n.

    (-inf, inf) for a single value (its spread is unknown); ValueError as `summarize`.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`0 < confidence < 1` must hold, but got {confidence=}.")
    s = summarize(values)
    if s.n < 2:
        return -math.inf, math.inf
    half = t_quantile((1.0 + confidence) / 2.0, s.n - 1) * s.sd / math.sqrt(s.n)
    return s.mean - half, s.mean + half


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile: P(T <= x) = p with `df` degrees of freedom (scipy's `stdtrit`,
    the function `scipy.stats.t.ppf` evaluates)."""
    from scipy.special import stdtrit  # imported when needed (module docstring)

    return float(stdtrit(df, p))


def relative(d: Difference, baseline_mean: float) -> tuple[float, float, float] | None:
    """(diff, low, high) / |baseline_mean| (fractions: 0.042 is +4.2 %); None if the mean is 0."""
    if not math.isfinite(baseline_mean):
        raise ValueError(f"`baseline_mean` must be finite, but got {baseline_mean=}.")
    if baseline_mean == 0.0:
        return None
    scale = abs(baseline_mean)
    return d.diff / scale, d.low / scale, d.high / scale


def above_zero(d: Difference, maximize: bool) -> bool:
    """Whether the whole interval lies on the better side of 0: above it when maximizing,
    below it when minimizing (strictly; an unbounded interval never does)."""
    return d.low > 0.0 if maximize else d.high < 0.0


def diff_text(d: Difference) -> str:
    """The difference in the measurements' unit, e.g. "+0.0315 (95 % CI 0.0213..0.0417)"."""
    return f"{d.diff:+.4f} ({_level(d)} CI {d.low:.4f}..{d.high:.4f})"


def gain_text(d: Difference, baseline_mean: float, n: int | tuple[int, int]) -> str:
    """One line for a report, relative to the baseline's mean, e.g.
    "+4.2 % (95 % CI 2.8..5.6 %, n=5 each, Welch's t)".

    `n` is the repeats of each group, or (candidate's, baseline's) when they differ. With a
    baseline mean of 0 the difference is written in the measurements' unit instead:
    "+0.0315 (95 % CI 0.0213..0.0417, n=5 each, Welch's t)".
    """
    count = f"n={n} each" if isinstance(n, int) else f"n={n[0]} candidate, {n[1]} baseline"
    rel = relative(d, baseline_mean)
    if rel is None:
        ci = f"{d.low:.4f}..{d.high:.4f}"
        return f"{d.diff:+.4f} ({_level(d)} CI {ci}, {count}, {d.method})"
    gain, low, high = (100.0 * x for x in rel)  # percent of the baseline's mean
    return f"{gain:+.1f} % ({_level(d)} CI {low:.1f}..{high:.1f} %, {count}, {d.method})"


def _level(d: Difference) -> str:
    return f"{100.0 * d.confidence:g} %"
