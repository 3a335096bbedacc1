"""Whether a confirmed configuration is feasible: per-measurement rules, constraints on the
means. Pure.

Every confirmation measurement must satisfy the per-measurement rules on its own
(`ConstraintKey.PER_MEASUREMENT`: metrics complete, workload ok); the study's constraints are
judged on the confirmed means. A violation is a line of text naming the rule and the value.
"""

from __future__ import annotations

from collections.abc import Sequence

from dynamo_tune.study.spec.schema import ConstraintSpec
from dynamo_tune.study.trial.attr_keys import ConstraintKey
from dynamo_tune.study.trial.record import TrialRecord


def _mean_of(metric: str, records: Sequence[TrialRecord]) -> float | None:
    values = [r.number_of(metric) for r in records]
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if len(numbers) == len(values) and numbers else None


def violations(constraints: Sequence[ConstraintSpec], records: Sequence[TrialRecord]) -> list[str]:
    """Violations of the configuration: per-measurement rules, constraints on the means."""
    out: list[str] = []
    for r in records:
        broken = [k for k in ConstraintKey.PER_MEASUREMENT if r.constraint_values.get(k, 0.0) > 0]
        if broken:
            out.append(f"measurement #{r.number}: {', '.join(broken)} violated")
    for c in constraints:
        mean = _mean_of(c.metric, records)
        if mean is None:
            out.append(f"{c.metric}: missing in a confirmation measurement")
        elif (c.max is not None and mean > c.max) or (c.min is not None and mean < c.min):
            bound = f"<= {c.max:g}" if c.max is not None and mean > c.max else f">= {c.min:g}"
            out.append(f"mean {c.metric} = {mean:.4g} violates {bound}")
    return out
