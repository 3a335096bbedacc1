"""Numbers a progress line and a report show about trial times. Pure.

The line itself is the CLI's (`dynamo_tune.cli.run_output.progress_line`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


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


def overhead_share(measured_seconds: float | None, trial_seconds: float | None) -> float | None:
    """Share of a trial's wall time spent outside its measured window(s), in [0, 1]: 1 −
    measured / wall; None when either is unknown."""
    if measured_seconds is None or not trial_seconds or trial_seconds <= 0:
        return None
    return min(1.0, max(0.0, 1.0 - measured_seconds / trial_seconds))


def eta_seconds(durations: Sequence[float], remaining: int) -> float | None:
    """Remaining trials x mean trial duration of this run (None before the first)."""
    if not durations or remaining <= 0:
        return 0.0 if remaining <= 0 else None
    return remaining * sum(durations) / len(durations)
