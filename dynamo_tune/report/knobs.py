"""Which searched knobs did not matter: each knob's marginal spread against the noise. Pure.

**Noise** (`measurement_noise`) is the standard deviation of one trial value of one
configuration, pooled over configurations measured more than once:
    sd² = Σ (n_i − 1) s_i² / Σ (n_i − 1),   df = Σ (n_i − 1)
from the confirmation stage's groups (baseline and confirmed configurations, n_i repeats
each). Without a confirmation, from the `objective.repeats` measurements inside each trial;
a trial's value is their median, whose sd is taken as sd_single · sqrt(π / (2 r)) for r ≥ 3
repeats (the median's large-sample variance) and sd_single / √2 for r = 2 (the mean). With
neither, the noise is unknown and no knob is called irrelevant.

**A knob's effect** (`knob_findings`): the COMPLETE search trials where the knob was active
(suggested: a kv-only knob is not active in round-robin trials) are grouped by its value —
one group per choice of a categorical knob, the lower and upper half by value of a numeric
one (equal values stay in one group). The effect is the difference between the highest and
the lowest group mean of the objective. The knob has **no effect beyond noise** when
    effect <= t_{0.975, df} · sd · sqrt(1/n_high + 1/n_low)
(the 95 % half-width of a difference of two group means if only measurement noise moved
them), and **matters** otherwise. Other knobs vary inside each group, which adds spread: a
knob that did not matter can be reported as mattering, but a reported "no effect" is a
spread no larger than repeating one configuration produces. Fewer than two groups (one value
measured) or fewer than two trials: undecided.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from optuna.trial import FrozenTrial
from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.attr_keys import TrialAttr
from dynamo_tune.study.schema import CategoricalParam, ParamSpec

CONFIDENCE = 0.95


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Noise(_Model):
    """The sd of one trial value of one configuration, with its degrees of freedom."""

    sd: float
    df: int
    source: str
    """Where it was measured, e.g. "confirmation: 3 configurations x 3 repeats"."""


class Group(_Model):
    """Trials whose knob value falls in one group."""

    label: str
    n: int
    mean: float


class KnobFinding(_Model):
    """One searched knob: its effect on one objective against the noise."""

    name: str
    metric: str
    over: str
    """The searched range: "0–1", "kv, round-robin"."""
    verdict: Literal["no effect", "matters", "undecided"]
    text: str
    effect: float | None = None
    threshold: float | None = None
    groups: list[Group] = []


def _pooled(groups: Sequence[Sequence[float]]) -> tuple[float, int] | None:
    """(pooled sd, df) of the groups with two or more values; None when there is none."""
    sizable = [g for g in groups if len(g) > 1]
    df = sum(len(g) - 1 for g in sizable)
    if df == 0:
        return None
    ss = sum(statistics.variance(g) * (len(g) - 1) for g in sizable)
    return math.sqrt(ss / df), df


def measurement_noise(
    confirmations: Sequence[FrozenTrial], search: Sequence[FrozenTrial], objective: int
) -> Noise | None:
    """The noise of objective `objective` (index into trial values); see the module doc."""
    by_config: dict[Any, list[float]] = {}
    for t in confirmations:
        if t.values is not None and math.isfinite(t.values[objective]):
            by_config.setdefault(t.user_attrs.get(TrialAttr.CONFIRMS), []).append(
                t.values[objective]
            )
    pooled = _pooled(list(by_config.values()))
    if pooled is not None:
        sizes = sorted(len(v) for v in by_config.values())
        repeats = str(sizes[0]) if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]}"
        source = f"confirmation: {len(by_config)} configurations x {repeats} measurements"
        return Noise(sd=pooled[0], df=pooled[1], source=source)
    if objective != 0:
        return None  # only the first objective's repeat values are stored
    inside = [
        [v for v in t.user_attrs.get(TrialAttr.REPEAT_VALUES) or [] if isinstance(v, int | float)]
        for t in search
    ]
    pooled = _pooled(inside)
    if pooled is None:
        return None
    r = min(len(v) for v in inside if len(v) > 1)
    factor = math.sqrt(0.5) if r == 2 else math.sqrt(math.pi / (2 * r))
    return Noise(
        sd=pooled[0] * factor,
        df=pooled[1],
        source=f"repeats inside trials: {sum(len(v) > 1 for v in inside)} trials x "
        f"{r}+ measurements, each trial's value their median",
    )


def over_text(spec: ParamSpec) -> str:
    """The searched range of a knob: "0–1", "0.25–32 (log)", "kv, round-robin"."""
    if isinstance(spec, CategoricalParam):
        return ", ".join(_value(c) for c in spec.choices)
    log = " (log)" if spec.log else ""
    return f"{_value(spec.low)}–{_value(spec.high)}{log}"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _groups(name: str, spec: ParamSpec, trials: Sequence[tuple[Any, float]]) -> list[Group]:
    """Groups of (knob value, objective value) pairs: by choice, or lower/upper half."""
    if isinstance(spec, CategoricalParam):
        by_choice: dict[str, list[float]] = {}
        for value, y in trials:
            by_choice.setdefault(_value(value), []).append(y)
        return [
            Group(label=f"{name}={k}", n=len(v), mean=statistics.fmean(v))
            for k, v in by_choice.items()
        ]
    ordered = sorted(trials, key=lambda p: float(p[0]))
    cut = len(ordered) // 2
    # keep equal values together: move the cut past a run of the value at the cut
    while 0 < cut < len(ordered) and ordered[cut][0] == ordered[cut - 1][0]:
        cut += 1
    halves = [ordered[:cut], ordered[cut:]]
    return [
        Group(
            label=f"{name} {_value(h[0][0])}–{_value(h[-1][0])}",
            n=len(h),
            mean=statistics.fmean(y for _, y in h),
        )
        for h in halves
        if h
    ]


def knob_finding(
    name: str,
    spec: ParamSpec,
    trials: Sequence[FrozenTrial],
    objective: int,
    metric: str,
    noise: Noise | None,
    t_quantile: Callable[[float, int], float],
) -> KnobFinding:
    """The finding for one knob on objective `objective`; `t_quantile(p, df)` is Student's t
    quantile (scipy's, passed in so this module stays import-light)."""
    pairs = [
        (t.params[name], t.values[objective])
        for t in trials
        if name in t.params and t.values is not None and math.isfinite(t.values[objective])
    ]
    over = over_text(spec)
    base: dict[str, Any] = {"name": name, "metric": metric, "over": over}
    groups = _groups(name, spec, pairs) if pairs else []
    if len(groups) < 2:
        why = "no trial where it was active" if not pairs else "only one value measured"
        return KnobFinding(**base, verdict="undecided", text=f"{name}: undecided ({why})",
                           groups=groups)  # fmt: skip
    high = max(groups, key=lambda g: g.mean)
    low = min(groups, key=lambda g: g.mean)
    effect = high.mean - low.mean
    if noise is None:
        text = f"{name}: undecided (measurement noise unknown); group means " + _listing(groups)
        return KnobFinding(**base, verdict="undecided", text=text, effect=effect, groups=groups)
    threshold = (
        t_quantile((1 + CONFIDENCE) / 2, noise.df) * noise.sd * math.sqrt(1 / high.n + 1 / low.n)
    )
    if effect <= threshold:
        text = f"{name}: no effect beyond noise over {over}"
        detail = f" (spread {effect:.4f} <= ±{threshold:.4f} of {metric})"
        verdict: Literal["no effect", "matters"] = "no effect"
    else:
        text = (
            f"{name}: matters: {metric} {high.mean:.4f} at {high.label} "
            f"vs {low.mean:.4f} at {low.label}"
        )
        detail = f" (spread {effect:.4f} > ±{threshold:.4f})"
        verdict = "matters"
    return KnobFinding(
        **base, verdict=verdict, text=text + detail, effect=effect, threshold=threshold,
        groups=groups,
    )  # fmt: skip


def _listing(groups: Sequence[Group]) -> str:
    return ", ".join(f"{g.label}: {g.mean:.4f} (n={g.n})" for g in groups)


def knob_findings(
    space: Mapping[str, ParamSpec],
    trials: Sequence[FrozenTrial],
    metrics: Sequence[str],
    noises: Sequence[Noise | None],
    t_quantile: Callable[[float, int], float],
) -> list[KnobFinding]:
    """Findings for every searched knob and every objective, in the space's order."""
    return [
        knob_finding(name, spec, trials, i, metric, noises[i], t_quantile)
        for name, spec in space.items()
        for i, metric in enumerate(metrics)
    ]
