"""Prometheus text exposition (`/metrics`) to series values. Pure.

Parsed with `prometheus_client.parser.text_string_to_metric_families`; every sample is
kept under its own name (`x_bucket`, `x_sum`, `x_count`, `x_total`), with an `instance`
label added so the same series of two endpoints stay apart (as Prometheus does).
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client.parser import text_string_to_metric_families

from dynamo_tune.metrics._series import SeriesVector, labels_of

Snapshot = dict[str, SeriesVector]
"""Sample name -> {labels: value} of one or several endpoints at one moment."""


def parse_exposition(text: str, instance: str, names: Collection[str] | None = None) -> Snapshot:
    """Samples of `text` (only those named in `names`, if given). ValueError if malformed.

    With `names`, other lines (and comments) are dropped before parsing: a Dynamo frontend
    exports ~1000 lines of which the collector needs ~60.
    """
    if names is not None:
        text = "".join(line for line in text.splitlines(keepends=True) if _name(line) in names)
    snapshot: Snapshot = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if names is not None and sample.name not in names:
                continue
            labels = labels_of({**sample.labels, "instance": instance})
            snapshot.setdefault(sample.name, {})[labels] = float(sample.value)
    return snapshot


def _name(line: str) -> str:
    """The metric name a sample line starts with ('' for comments and blank lines)."""
    if line.startswith("#"):
        return ""
    end = len(line)
    for stop in ("{", " "):
        found = line.find(stop)
        if found != -1:
            end = min(end, found)
    return line[:end].strip()
