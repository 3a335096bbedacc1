"""Assertions shared by the metrics tests."""

from __future__ import annotations

from dynamo_tune.metrics import METRIC_REGISTRY, DynamoMetricsResult


def assert_unreachable(result: DynamoMetricsResult, *fragments: str) -> None:
    """`result` is the seed contract's "source unreachable": flag off, no metric, one reason
    holding every fragment."""
    assert result.reachable is False
    assert [spec.key for spec in METRIC_REGISTRY if getattr(result, spec.key) is not None] == []
    assert len(result.errors) == 1, result.errors
    for fragment in fragments:
        assert fragment in result.errors[0], result.errors
