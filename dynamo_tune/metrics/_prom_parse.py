"""Parsing of Prometheus HTTP API answers into series values. Pure.

Answer shapes handled: `status: success` with a vector, scalar or matrix; `status: error`
(raised as `QueryFailed` with Prometheus's own message); anything else is malformed.
Values are strings in the API (`"1.5"`, `"NaN"`, `"+Inf"`) and are returned as floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics._durations import parse_duration
from dynamo_tune.metrics._series import Labels, SeriesVector, labels_of


class QueryFailed(MetricsError):
    """One request to Prometheus failed; `unreachable` when no HTTP answer came back."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


Matrix = list[tuple[Labels, list[tuple[float, float]]]]


@dataclass(frozen=True)
class TargetState:
    """One active scrape target: address, health, last scrape (unix s), interval (s), the
    last scrape's error ("" if none)."""

    instance: str
    health: str
    last_scrape: float | None
    interval_s: float | None
    last_error: str = ""


def api_data(body: Any) -> dict[str, Any]:
    """The `data` of a successful API answer; `QueryFailed` for `status: error` or junk."""
    if not isinstance(body, dict):
        raise QueryFailed(f"malformed answer: expected a JSON object, got {type(body).__name__}")
    status = body.get("status")
    if status == "error":
        kind = body.get("errorType", "error")
        raise QueryFailed(f"prometheus {kind}: {body.get('error', 'no message')}")
    data = body.get("data")
    if status != "success" or not isinstance(data, dict):
        raise QueryFailed(f"malformed answer: status={status!r}, data={type(data).__name__}")
    return data


def parse_names(body: Any) -> set[str]:
    """A label-values answer (`data` is a list of strings) as a set."""
    if not isinstance(body, dict) or body.get("status") != "success":
        api_data(body)  # raises with Prometheus's own message
    data = body.get("data")
    if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
        raise QueryFailed(f"malformed label values answer: {data!r:.120}")
    return set(data)


def _float(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise QueryFailed(f"malformed sample value {raw!r}") from exc


def _pair(raw: Any) -> tuple[float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise QueryFailed(f"malformed sample {raw!r}")
    return _float(raw[0]), _float(raw[1])


def parse_vector(data: dict[str, Any]) -> SeriesVector:
    """Instant-query `data` as {labels: value}; a scalar is one series with no labels."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return {frozenset(): _pair(result)[1]}
    if kind != "vector" or not isinstance(result, list):
        raise QueryFailed(f"malformed answer: expected a vector, got resultType={kind!r}")
    vector: SeriesVector = {}
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise QueryFailed(f"malformed vector element {item!r}")
        vector[labels_of(item["metric"])] = _pair(item.get("value"))[1]
    return vector


def parse_matrix(data: dict[str, Any]) -> Matrix:
    """Range-query `data` as [(labels, [(time, value), ...]), ...]."""
    kind, result = data.get("resultType"), data.get("result")
    if kind != "matrix" or not isinstance(result, list):
        raise QueryFailed(f"malformed answer: expected a matrix, got resultType={kind!r}")
    matrix: Matrix = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise QueryFailed(f"malformed matrix element {item!r}")
        metric = item.get("metric")
        matrix.append(
            (
                labels_of(metric if isinstance(metric, dict) else {}),
                [_pair(v) for v in item["values"]],
            )
        )
    return matrix


def parse_timestamp(text: str) -> float | None:
    """Unix seconds of an RFC 3339 time (nanoseconds allowed); None for Go's zero time."""
    text = text.strip().replace("Z", "+00:00")
    if "." in text:  # datetime takes at most 6 fractional digits
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        value = datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
    return value if value > 0 else None


def parse_targets(data: dict[str, Any]) -> list[TargetState]:
    """`/api/v1/targets` `data` as the active targets' states."""
    active = data.get("activeTargets")
    if not isinstance(active, list):
        raise QueryFailed("malformed targets answer: no activeTargets list")
    states = []
    for target in active:
        if not isinstance(target, dict):
            raise QueryFailed(f"malformed target {target!r}")
        raw_labels = target.get("labels")
        labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
        last = target.get("lastScrape")
        interval = target.get("scrapeInterval")
        try:
            interval_s = parse_duration(interval) if isinstance(interval, str) else None
        except ValueError:
            interval_s = None
        states.append(
            TargetState(
                instance=str(labels.get("instance", target.get("scrapeUrl", "?"))),
                health=str(target.get("health", "unknown")),
                last_scrape=parse_timestamp(last) if isinstance(last, str) else None,
                interval_s=interval_s,
                last_error=str(target.get("lastError") or ""),
            )
        )
    return states
