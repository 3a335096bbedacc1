"""Raw samples of several series and their exact window differences. Pure.

A `SeriesVector` maps a series' identity (its labels, `__name__` excluded) to one value.
Both backends reduce their raw data to these: the Prometheus backend gets per-series
window differences from `x @ t1 - x @ t0`, the scrape backend computes them here from two
snapshots. Everything after that (`_window.py`) is shared, so the backends cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping

Labels = frozenset[tuple[str, str]]
SeriesVector = dict[Labels, float]


def labels_of(mapping: Mapping[str, str], *, drop: tuple[str, ...] = ("__name__",)) -> Labels:
    """Hashable label set of `mapping`, without the labels in `drop`."""
    return frozenset((k, v) for k, v in mapping.items() if k not in drop)


def label_value(labels: Labels, name: str) -> str | None:
    """The value of label `name` in `labels`, or None."""
    return next((v for k, v in labels if k == name), None)


def format_labels(labels: Labels) -> str:
    """`{a="1",b="2"}` (sorted), for messages."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
    return "{" + inner + "}"


def counter_deltas(before: SeriesVector, after: SeriesVector) -> SeriesVector:
    """`after - before` per series; a series new in `after` counts from 0, one gone is dropped.

    This is exactly what `x @ t1 - (x @ t0 or x @ t1 * 0)` returns in PromQL. A negative
    entry means the counter was reset inside the window (see `_window.find_resets`).
    """
    return {labels: value - before.get(labels, 0.0) for labels, value in after.items()}


def decreasing(vectors: list[SeriesVector]) -> set[Labels]:
    """Series whose value drops between two consecutive `vectors` (a counter reset)."""
    dropped: set[Labels] = set()
    for before, after in zip(vectors, vectors[1:], strict=False):
        dropped.update(k for k, v in after.items() if k in before and v < before[k])
    return dropped
