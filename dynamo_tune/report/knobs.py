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
one (equal values stay in one group). Two groups are compared only between trials with the
same values of the other categorical knobs (router mode, session ids, ...: a *stratum*; a
knob not active counts as a value): within each stratum holding both, the difference of the
group means d_s, pooled with weights w_s = 1 / (1/n_a + 1/n_b) into d = Σ w_s d_s / Σ w_s,
whose sd from measurement noise alone is sd / sqrt(Σ w_s). The knob has **no effect beyond
noise** when for every pair of groups
    |d| <= t_{0.975, df} · sd / sqrt(Σ w_s)
(without other categorical knobs: t · sd · sqrt(1/n_a + 1/n_b)), and **matters** otherwise.
Numeric knobs still vary inside each group, which adds spread: a knob that did not matter can
be reported as mattering, but a reported "no effect" is a difference no larger than repeating
one configuration produces. One value measured, no pair of groups sharing a stratum, or an
unknown noise: undecided.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.confirmation.confidence import LEVEL
from dynamo_tune.study.spec.schema import CategoricalParam, ParamSpec
from dynamo_tune.study.trial.record import TrialRecord


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
    confirmations: Sequence[TrialRecord], search: Sequence[TrialRecord], objective: int
) -> Noise | None:
    """The noise of objective `objective` (index into trial values); see the module doc."""
    by_config: dict[int | None, list[float]] = {}
    for t in confirmations:
        if t.values is not None and math.isfinite(t.values[objective]):
            by_config.setdefault(t.confirms, []).append(t.values[objective])
    pooled = _pooled(list(by_config.values()))
    if pooled is not None:
        sizes = sorted(len(v) for v in by_config.values())
        repeats = str(sizes[0]) if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]}"
        source = f"confirmation: {len(by_config)} configurations x {repeats} measurements"
        return Noise(sd=pooled[0], df=pooled[1], source=source)
    if objective != 0:
        return None  # only the first objective's repeat values are stored
    inside = [[v for v in t.repeat_values if v is not None] for t in search]
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


def _labels(name: str, spec: ParamSpec, values: Sequence[Any]) -> list[str]:
    """Each value's group: its choice, or the lower / upper half of the values measured (equal
    values in one half; two halves whenever two values were measured)."""
    if isinstance(spec, CategoricalParam):
        return [f"{name}={_value(v)}" for v in values]
    ordered = sorted(float(v) for v in values)
    cut = len(ordered) // 2
    while 0 < cut < len(ordered) and ordered[cut] == ordered[cut - 1]:
        cut += 1  # keep equal values together
    if cut == len(ordered):  # the upper half was one value: cut below it instead
        cut = ordered.index(ordered[-1])
    halves = [h for h in (ordered[:cut], ordered[cut:]) if h]
    names = [f"{name} {_value(h[0])}–{_value(h[-1])}" for h in halves]
    return [names[0] if len(halves) == 1 or float(v) < ordered[cut] else names[1] for v in values]


def _stratum(t: TrialRecord, others: Sequence[str]) -> tuple[str, ...]:
    """The trial's values of the other categorical knobs (`-` where one was not active)."""
    return tuple(_value(t.params[k]) if k in t.params else "-" for k in others)


def _contrast(
    cells: Mapping[tuple[str, tuple[str, ...]], list[float]], a: str, b: str
) -> tuple[float, float] | None:
    """mean(a) − mean(b) within strata holding both, pooled with weights 1 / (1/n_a + 1/n_b),
    and the sum W of the weights (the difference's variance is sd² / W); None: no such stratum."""
    strata = {s for g, s in cells if g == a} & {s for g, s in cells if g == b}
    if not strata:
        return None
    total = weight = 0.0
    for s in strata:
        ya, yb = cells[(a, s)], cells[(b, s)]
        w = 1.0 / (1.0 / len(ya) + 1.0 / len(yb))
        total += w * (statistics.fmean(ya) - statistics.fmean(yb))
        weight += w
    return total / weight, weight


def knob_finding(
    name: str,
    spec: ParamSpec,
    trials: Sequence[TrialRecord],
    objective: int,
    metric: str,
    noise: Noise | None,
    t_quantile: Callable[[float, int], float],
    others: Sequence[str] = (),
) -> KnobFinding:
    """The finding for one knob on objective `objective`, comparing its groups within equal
    values of the categorical knobs `others`; `t_quantile(p, df)` is Student's t quantile
    (passed in so this module stays import-light)."""
    used = [
        t
        for t in trials
        if name in t.params and t.values is not None and math.isfinite(t.values[objective])
    ]
    ys = [t.values[objective] for t in used if t.values is not None]
    labels = _labels(name, spec, [t.params[name] for t in used]) if used else []
    by_label: dict[str, list[float]] = {}
    cells: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    for t, label, y in zip(used, labels, ys, strict=True):
        by_label.setdefault(label, []).append(y)
        cells.setdefault((label, _stratum(t, others)), []).append(y)
    groups = [Group(label=k, n=len(v), mean=statistics.fmean(v)) for k, v in by_label.items()]
    base: dict[str, Any] = {"name": name, "metric": metric, "over": over_text(spec)}
    if len(groups) < 2:
        why = "no trial where it was active" if not used else "only one value measured"
        return KnobFinding(**base, verdict="undecided", text=f"{name}: undecided ({why})",
                           groups=groups)  # fmt: skip
    if noise is None:
        text = f"{name}: undecided (measurement noise unknown); group means " + _listing(groups)
        return KnobFinding(**base, verdict="undecided", text=text, groups=groups)
    tq = t_quantile((1 + LEVEL) / 2, noise.df)
    contrasts = []  # (difference >= 0, threshold, higher group, lower group)
    for i, a in enumerate(by_label):
        for b in list(by_label)[i + 1 :]:
            if (c := _contrast(cells, a, b)) is not None:
                d, weight = c
                high, low = (a, b) if d >= 0 else (b, a)
                contrasts.append((abs(d), tq * noise.sd / math.sqrt(weight), high, low))
    if not contrasts:
        text = (f"{name}: undecided (no two of its values were measured with the same "
                f"{', '.join(others)})")  # fmt: skip
        return KnobFinding(**base, verdict="undecided", text=text, groups=groups)
    effect, threshold, high, low = max(contrasts, key=lambda c: c[0] - c[1])
    same = f" with the same {', '.join(others)}" if others else ""
    if effect <= threshold:
        text = f"{name}: no effect beyond noise over {base['over']}"
        detail = f" (largest difference {effect:.4f} <= ±{threshold:.4f} of {metric}{same})"
        verdict: Literal["no effect", "matters"] = "no effect"
    else:
        text = f"{name}: matters: {metric} {effect:+.4f} at {high} vs {low}{same}"
        detail = f" (beyond ±{threshold:.4f})"
        verdict = "matters"
    return KnobFinding(
        **base, verdict=verdict, text=text + detail, effect=effect, threshold=threshold,
        groups=groups,
    )  # fmt: skip


def _listing(groups: Sequence[Group]) -> str:
    return ", ".join(f"{g.label}: {g.mean:.4f} (n={g.n})" for g in groups)


def knob_findings(
    space: Mapping[str, ParamSpec],
    trials: Sequence[TrialRecord],
    metrics: Sequence[str],
    noises: Sequence[Noise | None],
    t_quantile: Callable[[float, int], float],
) -> list[KnobFinding]:
    """Findings for every searched knob and every objective, in the space's order; each knob
    compared within equal values of the other categorical knobs."""
    categorical = [k for k, spec in space.items() if isinstance(spec, CategoricalParam)]
    return [
        knob_finding(
            name,
            spec,
            trials,
            i,
            metric,
            noises[i],
            t_quantile,
            [k for k in categorical if k != name],
        )  # fmt: skip
        for name, spec in space.items()
        for i, metric in enumerate(metrics)
    ]
