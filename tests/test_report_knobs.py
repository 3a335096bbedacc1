"""Which knobs did not matter: noise pooling and the effect-vs-noise rule, by hand-computed
numbers (dynamo_tune/report/knobs.py's module docstring states the rule)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial

from dynamo_tune.report.knobs import Noise, knob_finding, measurement_noise, over_text
from dynamo_tune.study.confirmation.confidence import t_quantile
from dynamo_tune.study.spec.schema import CategoricalParam, FloatParam
from dynamo_tune.study.trial.record import TrialRecord

TEMPERATURE = FloatParam(type="float", low=0.0, high=1.0)
T_975_2 = 4.302652729911275  # Student's t, 97.5 % quantile, 2 degrees of freedom (tables)
T_975_10 = 2.228138851986274


def _trial(value: float, params: dict[str, Any] | None = None, **attrs: Any) -> TrialRecord:
    params = params or {}
    dists = {k: _distribution(v) for k, v in params.items()}
    trial = create_trial(value=value, params=params, distributions=dists, user_attrs=attrs)
    return TrialRecord.from_frozen(trial)


def _distribution(value: Any) -> Any:
    if isinstance(value, bool):
        return CategoricalDistribution([True, False])
    if isinstance(value, str):
        return CategoricalDistribution(["kv", "round-robin"])
    return FloatDistribution(0.0, 1.0)


def _temperature_trials(*pairs: tuple[float, float]) -> list[TrialRecord]:
    return [_trial(y, {"router.temperature": x}) for x, y in pairs]


def test_noise_pools_the_confirmation_groups() -> None:
    confirm = [_trial(v, stage="confirm", confirms=0) for v in (1.0, 1.2)]
    confirm += [_trial(v, stage="confirm", confirms=4) for v in (2.0, 2.2, 2.4)]
    noise = measurement_noise(confirm, [], 0)
    # variances 0.02 (df 1) and 0.04 (df 2): pooled sqrt((0.02 + 0.08) / 3)
    assert noise is not None and noise.df == 3
    assert noise.sd == pytest.approx(math.sqrt(0.1 / 3))
    assert noise.source == "confirmation: 2 configurations x 2-3 measurements"


def test_noise_from_repeats_inside_trials_is_the_median_s() -> None:
    search = [
        _trial(0.6, repeat_values=[0.5, 0.6, 0.7]),  # variance 0.01
        _trial(0.4, repeat_values=[0.4, 0.4, 0.7]),  # variance 0.03
        _trial(0.3, repeat_values=[0.3]),  # one value: no spread to pool
    ]
    noise = measurement_noise([], search, 0)
    # pooled single-measurement sd sqrt((0.02 + 0.06) / 4); the median of 3: x sqrt(pi / 6)
    assert noise is not None and noise.df == 4
    assert noise.sd == pytest.approx(math.sqrt(0.02) * math.sqrt(math.pi / 6))
    assert measurement_noise([], search, 1) is None  # repeat values are the first objective's
    assert measurement_noise([], [_trial(0.5)], 0) is None


def test_a_spread_within_the_noise_is_no_effect() -> None:
    trials = _temperature_trials((0.1, 0.50), (0.2, 0.52), (0.8, 0.51), (0.9, 0.53))
    noise = Noise(sd=0.1, df=2, source="test")
    found = knob_finding("router.temperature", TEMPERATURE, trials, 0, "score", noise, t_quantile)
    # halves 0.1–0.2 (mean 0.51) and 0.8–0.9 (mean 0.52): spread 0.01
    # threshold 4.3027 x 0.1 x sqrt(1/2 + 1/2) = 0.43027
    assert found.verdict == "no effect"
    assert found.effect == pytest.approx(0.01)
    assert found.threshold == pytest.approx(T_975_2 * 0.1)
    assert found.text == (
        "router.temperature: no effect beyond noise over 0–1 (largest difference 0.0100 <= "
        "±0.4303 of score)"
    )


def test_a_spread_beyond_the_noise_matters() -> None:
    trials = _temperature_trials((0.1, 0.50), (0.2, 0.52), (0.8, 0.51), (0.9, 0.53))
    noise = Noise(sd=0.001, df=10, source="test")
    found = knob_finding("router.temperature", TEMPERATURE, trials, 0, "score", noise, t_quantile)
    assert found.verdict == "matters"
    assert found.threshold == pytest.approx(T_975_10 * 0.001)
    assert found.text == (
        "router.temperature: matters: score +0.0100 at router.temperature 0.8–0.9 vs "
        "router.temperature 0.1–0.2 (beyond ±0.0022)"
    )


def test_equal_values_stay_in_one_group_and_one_value_is_undecided() -> None:
    noise = Noise(sd=0.1, df=2, source="test")
    trials = _temperature_trials((0.5, 0.1), (0.5, 0.2), (0.5, 0.3), (0.9, 0.9))
    found = knob_finding("router.temperature", TEMPERATURE, trials, 0, "score", noise, t_quantile)
    assert [(g.label, g.n) for g in found.groups] == [
        ("router.temperature 0.5–0.5", 3),
        ("router.temperature 0.9–0.9", 1),
    ]
    # spread 0.9 - 0.2 = 0.7 > 4.3027 x 0.1 x sqrt(1/3 + 1) = 0.4968
    assert found.verdict == "matters" and found.threshold == pytest.approx(
        T_975_2 * 0.1 * math.sqrt(4 / 3)
    )
    same = _temperature_trials((0.5, 0.1), (0.5, 0.2))
    one = knob_finding("router.temperature", TEMPERATURE, same, 0, "score", noise, t_quantile)
    assert one.verdict == "undecided" and one.text.endswith("(only one value measured)")


def test_a_knob_never_active_or_without_noise_is_undecided() -> None:
    noise = Noise(sd=0.1, df=2, source="test")
    round_robin = [_trial(0.5, {"router.mode": "round-robin"}) for _ in range(3)]
    never = knob_finding("router.temperature", TEMPERATURE, round_robin, 0, "score", noise,
                         t_quantile)  # fmt: skip
    assert never.verdict == "undecided" and "no trial where it was active" in never.text
    trials = _temperature_trials((0.1, 0.50), (0.9, 0.53))
    unknown = knob_finding("router.temperature", TEMPERATURE, trials, 0, "score", None, t_quantile)
    assert unknown.verdict == "undecided"
    assert unknown.text.startswith("router.temperature: undecided (measurement noise unknown)")


def test_a_categorical_knob_is_grouped_by_choice() -> None:
    mode = CategoricalParam(type="categorical", choices=["kv", "round-robin"])
    trials = [_trial(y, {"router.mode": m}) for m, y in
              (("kv", 0.8), ("kv", 0.9), ("round-robin", 0.4), ("round-robin", 0.5))]  # fmt: skip
    found = knob_finding("router.mode", mode, trials, 0, "score",
                         Noise(sd=0.05, df=4, source="test"), t_quantile)  # fmt: skip
    assert [(g.label, g.n, round(g.mean, 6)) for g in found.groups] == [
        ("router.mode=kv", 2, 0.85),
        ("router.mode=round-robin", 2, 0.45),
    ]
    assert found.verdict == "matters" and found.effect == pytest.approx(0.4)


SESSION = CategoricalParam(type="categorical", choices=[True, False])


def _mode_and_session(*rows: tuple[str, bool, float]) -> list[TrialRecord]:
    return [_trial(y, {"router.mode": m, "hints.session_id": s}) for m, s, y in rows]


def test_a_knob_is_compared_within_equal_router_modes() -> None:
    # session ids make no difference inside either mode; kv (0.81) is far above round-robin
    # (0.50), and 2 of the 3 session-id trials ran in kv
    trials = _mode_and_session(
        ("kv", True, 0.80), ("kv", True, 0.82), ("kv", False, 0.81),
        ("round-robin", True, 0.50), ("round-robin", False, 0.51), ("round-robin", False, 0.49),
    )  # fmt: skip
    noise = Noise(sd=0.01, df=10, source="test")
    found = knob_finding("hints.session_id", SESSION, trials, 0, "score", noise, t_quantile,
                         ["router.mode"])  # fmt: skip
    # kv: 0.81 - 0.81 = 0, weight 1 / (1/2 + 1/1) = 2/3; round-robin: 0.50 - 0.50 = 0, 2/3
    assert found.verdict == "no effect" and found.effect == pytest.approx(0.0, abs=1e-12)
    assert found.threshold == pytest.approx(T_975_10 * 0.01 / math.sqrt(4 / 3))
    assert found.text.endswith("of score with the same router.mode)")
    # the marginal groups (0.7067 vs 0.6033) would have called it mattering
    marginal = knob_finding("hints.session_id", SESSION, trials, 0, "score", noise, t_quantile)
    assert marginal.verdict == "matters"
    assert marginal.effect == pytest.approx((0.80 + 0.82 + 0.50 - 0.81 - 0.51 - 0.49) / 3)


def test_values_never_measured_under_the_same_mode_are_undecided() -> None:
    trials = _mode_and_session(("kv", True, 0.8), ("kv", True, 0.82), ("round-robin", False, 0.5))
    noise = Noise(sd=0.01, df=10, source="test")
    found = knob_finding("hints.session_id", SESSION, trials, 0, "score", noise, t_quantile,
                         ["router.mode"])  # fmt: skip
    assert found.verdict == "undecided"
    assert found.text == (
        "hints.session_id: undecided (no two of its values were measured with the same router.mode)"
    )


def test_ranges_read_as_the_study_file_wrote_them() -> None:
    assert over_text(TEMPERATURE) == "0–1"
    assert over_text(FloatParam(type="float", low=0.25, high=32.0, log=True)) == "0.25–32 (log)"
    assert over_text(CategoricalParam(type="categorical", choices=[True, False])) == "true, false"
