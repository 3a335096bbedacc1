"""Summaries and Welch's interval (study.confirmation.confidence) against hand arithmetic.

Expected values come from the arithmetic written in the comments; t quantiles are literals
from a t table (checked against a numeric integration of the t density), never from scipy.
"""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from dynamo_tune.study.confirmation.confidence import (
    Difference,
    Summary,
    above_zero,
    diff_text,
    gain_text,
    relative,
    summarize,
    welch_interval,
)

# docs/architecture.md#noise-and-confirmation: five repeats each on the quickstart load.
CANDIDATE = [0.7841, 0.7766, 0.7759, 0.7835, 0.7809]  # kv router, tuned
BASELINE = [0.7415, 0.7383, 0.7569, 0.7551, 0.7518]  # round-robin


def test_summary_of_four_values() -> None:
    # mean = 10 / 4 = 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; s² = 5 / 3
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.n, s.mean) == (4, 2.5)
    assert s.sd == pytest.approx(1.290994, abs=1e-6)  # sqrt(5 / 3)


def test_summary_of_one_value_has_no_spread() -> None:
    assert summarize([0.75]) == Summary(n=1, mean=0.75, sd=0.0)


def test_summary_of_identical_values_is_exact() -> None:
    assert summarize([0.1, 0.1, 0.1]) == Summary(n=3, mean=0.1, sd=0.0)


@pytest.mark.parametrize("values", [[], [0.7, math.nan], [math.inf, 0.7], [-math.inf]])
def test_summary_refuses_no_values_and_non_finite_ones(values: list[float]) -> None:
    with pytest.raises(ValueError, match="finite numbers, but got") as info:
        summarize(values)
    assert str(values) in str(info.value)


def test_welch_interval_of_the_design_example() -> None:
    # candidate: sum 3.9010, mean 0.7802; deviations +39, -36, -43, +33, +7 (x 1e-4);
    #   squares 1521 + 1296 + 1849 + 1089 + 49 = 5804 (x 1e-8); s1² = 5.804e-5 / 4 = 1.451e-5,
    #   s1 = 0.0038092
    # baseline: sum 3.7436, mean 0.74872; deviations -72.2, -104.2, +81.8, +63.8, +30.8
    #   (x 1e-4); squares 52.1284 + 108.5764 + 66.9124 + 40.7044 + 9.4864 = 277.808 (x 1e-6);
    #   s0² = 2.77808e-4 / 4 = 6.9452e-5, s0 = 0.0083338
    # diff = 0.7802 - 0.74872 = 0.03148
    # s1²/n1 = 2.902e-6, s0²/n0 = 1.38904e-5, sum 1.67924e-5, se = sqrt(1.67924e-5) = 0.0040979
    # df = (1.67924e-5)² / ((2.902e-6)² / 4 + (1.38904e-5)² / 4)
    #    = 2.81985e-10 / ((8.4216e-12 + 1.929432e-10) / 4) = 2.81985e-10 / 5.03412e-11 = 5.6015
    # t_{0.975, 5.6015} = 2.4897 (table: 2.5706 at df 5, 2.4469 at df 6)
    # half-width = 2.4897 * 0.0040979 = 0.010202; interval 0.03148 -+ 0.010202
    d = welch_interval(CANDIDATE, BASELINE)
    assert d.diff == pytest.approx(0.03148, abs=1e-12)
    assert d.df == pytest.approx(5.6015, abs=1e-4)
    assert d.low == pytest.approx(0.03148 - 0.010202, abs=1e-6)
    assert d.high == pytest.approx(0.03148 + 0.010202, abs=1e-6)
    assert (d.confidence, d.method) == (0.95, "Welch's t")
    assert above_zero(d, maximize=True)
    assert not above_zero(d, maximize=False)


def test_welch_interval_is_antisymmetric_in_its_groups() -> None:
    # swapping the groups negates the difference and mirrors the interval
    d = welch_interval(BASELINE, CANDIDATE)
    assert d.diff == pytest.approx(-0.03148, abs=1e-12)
    assert d.low == pytest.approx(-0.03148 - 0.010202, abs=1e-6)
    assert d.high == pytest.approx(-0.03148 + 0.010202, abs=1e-6)
    assert above_zero(d, maximize=False)


def test_welch_interval_with_one_group_without_variance() -> None:
    # candidate [1, 2, 3]: mean 2, s1² = (1 + 0 + 1) / 2 = 1, s1²/n1 = 1/3
    # baseline [0, 0, 0, 0]: mean 0, s0² = 0 -> its term drops out
    # df = (1/3)² / ((1/3)² / 2) = 2 = n1 - 1; se = sqrt(1/3) = 0.5773503
    # t_{0.975, 2} = 4.302653 -> half = 2.484138; t_{0.95, 2} = 2.919986 -> half = 1.685854
    d = welch_interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0])
    assert d.diff == 2.0
    assert d.df == pytest.approx(2.0)
    assert d.low == pytest.approx(2 - 2.484138, abs=1e-6)
    assert d.high == pytest.approx(2 + 2.484138, abs=1e-6)
    assert not above_zero(d, maximize=True)  # -0.484 .. 4.484 straddles 0

    d90 = welch_interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0], confidence=0.90)
    assert d90.low == pytest.approx(2 - 1.685854, abs=1e-6)
    assert d90.high == pytest.approx(2 + 1.685854, abs=1e-6)
    assert d90.confidence == 0.90
    assert above_zero(d90, maximize=True)  # 0.314 .. 3.686

    # the other way round: the baseline varies, df = n0 - 1 = 2 again
    flipped = welch_interval([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    assert flipped.df == pytest.approx(2.0)
    assert flipped.high == pytest.approx(-2 + 2.484138, abs=1e-6)


def test_welch_interval_without_any_variance_is_a_point() -> None:
    # every repeat identical in both groups: the difference 0.5 - 0.25 is known exactly
    d = welch_interval([0.5, 0.5, 0.5], [0.25, 0.25])
    assert d == Difference(diff=0.25, low=0.25, high=0.25, confidence=0.95, df=None)
    assert above_zero(d, maximize=True)
    assert not above_zero(d, maximize=False)
    same = welch_interval([0.5, 0.5], [0.5, 0.5])
    assert (same.low, same.high) == (0.0, 0.0)
    assert not above_zero(same, maximize=True)
    assert not above_zero(same, maximize=False)


@pytest.mark.parametrize(
    ("candidate", "baseline"), [([0.8], [0.7, 0.72]), ([0.8, 0.82], [0.7]), ([0.8], [0.7])]
)
def test_welch_interval_with_a_single_repeat_is_unbounded(
    candidate: list[float], baseline: list[float]
) -> None:
    # a group of one has no variance estimate: no interval, never significant
    d = welch_interval(candidate, baseline)
    assert (d.low, d.high, d.df) == (-math.inf, math.inf, None)
    assert d.diff == pytest.approx(sum(candidate) / len(candidate) - sum(baseline) / len(baseline))
    assert not above_zero(d, maximize=True)
    assert not above_zero(d, maximize=False)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95.0, -0.5])
def test_welch_interval_refuses_a_confidence_outside_0_1(confidence: float) -> None:
    with pytest.raises(ValueError, match="0 < confidence < 1"):
        welch_interval(CANDIDATE, BASELINE, confidence=confidence)


def test_welch_interval_refuses_an_empty_or_non_finite_group() -> None:
    with pytest.raises(ValueError, match="finite numbers"):
        welch_interval(CANDIDATE, [])
    with pytest.raises(ValueError, match="finite numbers"):
        welch_interval([0.7, math.nan], BASELINE)


def _diff(low: float, high: float, diff: float | None = None) -> Difference:
    mid = (low + high) / 2 if diff is None else diff
    return Difference(diff=mid, low=low, high=high, confidence=0.95, df=4.0)


@pytest.mark.parametrize(
    ("low", "high", "when_maximizing", "when_minimizing"),
    [
        (0.01, 0.05, True, False),  # wholly above 0
        (-0.05, -0.01, False, True),  # wholly below 0
        (-0.01, 0.05, False, False),  # straddles 0
        (0.0, 0.05, False, False),  # touches 0: not strictly above
        (-0.05, 0.0, False, False),  # touches 0: not strictly below
    ],
)
def test_above_zero_in_both_directions(
    low: float, high: float, when_maximizing: bool, when_minimizing: bool
) -> None:
    assert above_zero(_diff(low, high), maximize=True) is when_maximizing
    assert above_zero(_diff(low, high), maximize=False) is when_minimizing


def test_relative_divides_by_the_baseline_magnitude() -> None:
    # docs/architecture.md example: 0.03148 / 0.74872 = 0.042045; 0.021278 / 0.74872 = 0.028419;
    # 0.041682 / 0.74872 = 0.055671
    rel = relative(welch_interval(CANDIDATE, BASELINE), 0.74872)
    assert rel == pytest.approx((0.042045, 0.028419, 0.055671), abs=2e-6)
    # a negative baseline mean: signs stay those of the difference
    assert relative(_diff(-2.0, 1.0, diff=-1.0), -10.0) == pytest.approx((-0.1, -0.2, 0.1))
    assert relative(_diff(-2.0, 1.0), 0.0) is None
    with pytest.raises(ValueError, match="finite"):
        relative(_diff(-2.0, 1.0), math.nan)


def test_gain_text_of_the_design_example() -> None:
    # +4.2045 % (95 % CI 2.8419..5.5671 %)
    d = welch_interval(CANDIDATE, BASELINE)
    assert gain_text(d, 0.74872, 5) == "+4.2 % (95 % CI 2.8..5.6 %, n=5 each, Welch's t)"
    assert gain_text(d, 0.74872, (5, 4)) == (
        "+4.2 % (95 % CI 2.8..5.6 %, n=5 candidate, 4 baseline, Welch's t)"
    )


def test_gain_text_in_absolute_units_when_the_baseline_mean_is_zero() -> None:
    d = Difference(diff=0.0315, low=0.015, high=0.048, confidence=0.95, df=4.0)
    assert gain_text(d, 0.0, 3) == "+0.0315 (95 % CI 0.0150..0.0480, n=3 each, Welch's t)"
    assert diff_text(d) == "+0.0315 (95 % CI 0.0150..0.0480)"
    d90 = Difference(diff=-0.002, low=-0.0031, high=-0.0009, confidence=0.9, df=4.0)
    assert diff_text(d90) == "-0.0020 (90 % CI -0.0031..-0.0009)"


def test_gain_text_of_an_unbounded_interval() -> None:
    # 0.8 - 0.71 = 0.09; 0.09 / 0.71 = 12.68 %
    d = welch_interval([0.8], [0.7, 0.72])
    assert gain_text(d, 0.71, (1, 2)) == (
        "+12.7 % (95 % CI -inf..inf %, n=1 candidate, 2 baseline, Welch's t)"
    )


def test_values_round_trip_through_json_even_when_unbounded() -> None:
    for d in (welch_interval(CANDIDATE, BASELINE), welch_interval([0.8], [0.7, 0.72])):
        assert Difference.model_validate_json(d.model_dump_json()) == d
        # Optuna stores user attrs with json.dumps (Infinity allowed)
        assert Difference.model_validate(json.loads(json.dumps(d.model_dump()))) == d
    s = summarize(CANDIDATE)
    assert Summary.model_validate(json.loads(json.dumps(s.model_dump()))) == s


def test_values_are_frozen_and_forbid_unknown_keys() -> None:
    s = summarize([1.0, 2.0])
    with pytest.raises(ValidationError):
        s.n = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        Summary(n=1, mean=1.0, sd=0.0, median=1.0)  # type: ignore[call-arg]
    fields = {"diff": 0.0, "low": 0.0, "high": 0.0, "confidence": 0.95, "df": None}
    with pytest.raises(ValidationError, match="Welch's t"):
        Difference.model_validate({**fields, "method": "Student's t"})
