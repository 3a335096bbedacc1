"""Prometheus text exposition (`/metrics`) to series values. Pure.

Parsed with `prometheus_client.parser.text_string_to_metric_families`; every sample is
kept under its own name (`x_bucket`, `x_sum`, `x_count`, `x_total`), with an `instance`
label added so the same series of two endpoints stay apart (as Prometheus does).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from prometheus_client.parser import text_string_to_metric_families

from dynamo_tune.metrics.series import Labels, SeriesVector, labels_of

Snapshot = dict[str, SeriesVector]
"""Sample name -> {labels: value} of one or several endpoints at one moment."""


def parse_exposition(text: str, instance: str, names: Collection[str] | None = None) -> Snapshot:
    """Samples of `text` (only those named in `names`, if given). ValueError if malformed."""
    snapshot: Snapshot = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if names is not None and sample.name not in names:
                continue
            labels = labels_of({**sample.labels, "instance": instance})
            snapshot.setdefault(sample.name, {})[labels] = float(sample.value)
    return snapshot


def merge(snapshots: Sequence[Snapshot]) -> Snapshot:
    """One snapshot holding every series of `snapshots` (their `instance` labels differ)."""
    merged: Snapshot = {}
    for snapshot in snapshots:
        for name, vector in snapshot.items():
            merged.setdefault(name, {}).update(vector)
    return merged


def over_time(vectors: Sequence[SeriesVector], how: str) -> SeriesVector:
    """Per series, the max or mean of its non-NaN values across `vectors` (gauge samples)."""
    values: dict[Labels, list[float]] = {}
    for vector in vectors:
        for labels, value in vector.items():
            if not math.isnan(value):
                values.setdefault(labels, []).append(value)
    if how == "max":
        return {labels: max(vs) for labels, vs in values.items()}
    if how == "avg":
        return {labels: math.fsum(vs) / len(vs) for labels, vs in values.items()}
    raise ValueError(f"over_time must be 'max' or 'avg', but got {how!r}")
