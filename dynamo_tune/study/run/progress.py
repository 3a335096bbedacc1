"""One progress line per finished trial: i/N, current and best value, ETA. Pure formatting.

[ 3/12] #4 COMPLETE 0.5312 | best 0.5501 (#2) | kve 0.52 ttft95 0.41s itl95 0.031s
    | 34.1s | ETA 5m02s
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dynamo_tune.study.trial.attr_keys import HEADLINE_METRICS, TrialAttr


def duration(seconds: float | None) -> str:
    """`1h02m`, `5m02s`, `34.1s`; `?` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def values_text(values: Sequence[float] | None) -> str:
    if not values:
        return "-"
    return ",".join(f"{v:.4f}" for v in values)


def metrics_text(attrs: dict[str, Any]) -> str:
    """Short key-metric summary of a trial's user attrs."""
    parts = []
    for label, key in HEADLINE_METRICS:
        value = attrs.get(key)
        if isinstance(value, int | float):
            parts.append(f"{label} {value:.3g}{'s' if key.endswith('_seconds') else ''}")
    return " ".join(parts)


def overhead_share(attrs: dict[str, Any], trial_seconds: float | None) -> float | None:
    """Share of a trial's wall time spent outside its measured window(s), in [0, 1]."""
    measured = attrs.get(TrialAttr.MEASURED_SECONDS)
    if not isinstance(measured, int | float) or not trial_seconds or trial_seconds <= 0:
        return None
    return min(1.0, max(0.0, 1.0 - measured / trial_seconds))


def eta_seconds(durations: Sequence[float], remaining: int) -> float | None:
    """Remaining trials x mean trial duration of this run (None before the first)."""
    if not durations or remaining <= 0:
        return 0.0 if remaining <= 0 else None
    return remaining * sum(durations) / len(durations)


def progress_line(
    *,
    complete: int,
    target: int,
    number: int,
    state: str,
    values: Sequence[float] | None,
    best: tuple[int, Sequence[float]] | None,
    attrs: dict[str, Any],
    trial_seconds: float | None,
    eta: float | None,
    noise: str | None = None,
) -> str:
    """The line printed after trial `number` finished (`noise`: the measured noise, once
    known)."""
    width = len(str(target))
    confirms = attrs.get(TrialAttr.CONFIRMS)
    what = f"confirm #{number} of #{confirms}" if confirms is not None else f"#{number}"
    head = f"[{complete:>{width}}/{target}] {what} {state}"
    if state == "COMPLETE":
        head += f" {values_text(values)}"
        if attrs.get(TrialAttr.VIOLATIONS):
            head += " (infeasible: " + "; ".join(attrs[TrialAttr.VIOLATIONS]) + ")"
    elif attrs.get(TrialAttr.FAIL_REASON):
        head += f": {attrs[TrialAttr.FAIL_REASON]}"
    parts = [head]
    if best is not None:
        parts.append(f"best {values_text(best[1])} (#{best[0]})")
    summary = metrics_text(attrs)
    if summary:
        parts.append(summary)
    if noise:
        parts.append(noise)
    share = overhead_share(attrs, trial_seconds)
    parts.append(
        duration(trial_seconds) + (f" ({share:.0%} overhead)" if share is not None else "")
    )
    parts.append(f"ETA {duration(eta)}")
    return " | ".join(parts)
