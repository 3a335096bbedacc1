"""Prometheus duration strings (`30s`, `1m30s`, `1500ms`) to seconds and back. Pure."""

from __future__ import annotations

import re

_UNITS: tuple[tuple[str, float], ...] = (
    ("y", 365 * 86400.0),
    ("w", 7 * 86400.0),
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
)
_DURATION = re.compile("".join(rf"(?:(\d+){unit})?" for unit, _ in _UNITS))


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as `30s`, `5m`, `1h30m`, `250ms`.

    Raises ValueError (stating the rule and the value) if `text` is not one or is zero.
    """
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(
            f"a duration like '30s', '5m' or '1h30m' (units y w d h m s ms) is required, "
            f"but got {text!r}"
        )
    seconds = sum(
        float(n) * factor for n, (_, factor) in zip(match.groups(), _UNITS, strict=True) if n
    )
    if seconds <= 0:
        raise ValueError(f"a duration must be > 0, but got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A PromQL range duration of `seconds`, in whole milliseconds (at least `1ms`)."""
    return f"{max(1, round(seconds * 1000))}ms"
