"""The optimization score (docs/architecture.md#score): seed semantics, validated weights. Pure.

    kv_score   = clamp(effective_kve, 0, 1)
    ttft_score = min(1, ttft_target / max(ttft_p95, 0.001))
    itl_score  = min(1, itl_target  / max(itl_p95,  0.001))
    score      = kv_w * kv_score + ttft_w * ttft_score + itl_w * itl_score

Weights must each be >= 0 and sum to 1 (within 1e-6); targets must be > 0 (seconds).
`ScoreConfig` is the one home of the weights, the targets and their defaults; the keyword
defaults of `optimization_score`, `DynamoCoreMetrics.to_optimization_score` and the
`dynamo-tune metrics` flags are read from `DEFAULT_SCORE`.
"""

from __future__ import annotations

import math
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

WEIGHT_SUM_TOLERANCE = 1e-6
MIN_LATENCY_SECONDS = 0.001


def validate_weights(kv_weight: float, ttft_weight: float, itl_weight: float) -> None:
    """Raise ValueError naming the weights unless each is >= 0 and they sum to 1 (±1e-6)."""
    weights = {"kv_weight": kv_weight, "ttft_weight": ttft_weight, "itl_weight": itl_weight}
    bad = {name: w for name, w in weights.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"score weights must be finite and >= 0, but got {bad}")
    total = kv_weight + ttft_weight + itl_weight
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ValueError(
            f"`kv_weight + ttft_weight + itl_weight == 1` must hold, but got "
            f"({kv_weight=}, {ttft_weight=}, {itl_weight=}; sum={total:.6g})"
        )


def validate_targets(ttft_target_seconds: float, itl_target_seconds: float) -> None:
    """Raise ValueError naming the targets unless both are finite and > 0."""
    for name, value in (
        ("ttft_target_seconds", ttft_target_seconds),
        ("itl_target_seconds", itl_target_seconds),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"`{name} > 0` must hold, but got {name}={value}")


Weight = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
TargetSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ScoreConfig(BaseModel):
    """Weights and latency targets of the score; field names = `to_optimization_score`'s
    keyword arguments. Subclass it to add options (a study's objective does)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kv_weight: Weight = Field(default=0.4, description="Weight of clamp(KVE, 0, 1)")
    ttft_weight: Weight = Field(default=0.4, description="Weight of the TTFT p95 score")
    itl_weight: Weight = Field(default=0.2, description="Weight of the ITL p95 score")
    ttft_target_seconds: TargetSeconds = Field(
        default=0.5, description="TTFT p95 (s) at or below which the TTFT score is 1"
    )
    itl_target_seconds: TargetSeconds = Field(
        default=0.05, description="ITL p95 (s) at or below which the ITL score is 1"
    )

    @model_validator(mode="after")
    def _check_weight_sum(self) -> Self:
        validate_weights(self.kv_weight, self.ttft_weight, self.itl_weight)
        return self

    def score_kwargs(self) -> dict[str, float]:
        """Keyword arguments of `optimization_score` / `to_optimization_score` (subclass
        fields left out)."""
        return {name: getattr(self, name) for name in ScoreConfig.model_fields}


DEFAULT_SCORE = ScoreConfig()
"""The default weights (0.4 / 0.4 / 0.2) and targets (0.5 s / 0.05 s)."""


def latency_score(target_seconds: float, p95_seconds: float) -> float:
    """`min(1, target / max(p95, 0.001))`: 1 at or below target, target/actual above it."""
    return min(1.0, target_seconds / max(p95_seconds, MIN_LATENCY_SECONDS))


def optimization_score(
    kv_efficiency: float,
    ttft_p95_seconds: float,
    itl_p95_seconds: float,
    *,
    kv_weight: float = DEFAULT_SCORE.kv_weight,
    ttft_weight: float = DEFAULT_SCORE.ttft_weight,
    itl_weight: float = DEFAULT_SCORE.itl_weight,
    ttft_target_seconds: float = DEFAULT_SCORE.ttft_target_seconds,
    itl_target_seconds: float = DEFAULT_SCORE.itl_target_seconds,
) -> float:
    """The combined score (higher is better, in [0, 1]) of the three core metrics."""
    validate_weights(kv_weight, ttft_weight, itl_weight)
    validate_targets(ttft_target_seconds, itl_target_seconds)
    kv_score = min(1.0, max(0.0, kv_efficiency))
    ttft_score = latency_score(ttft_target_seconds, ttft_p95_seconds)
    itl_score = latency_score(itl_target_seconds, itl_p95_seconds)
    return kv_weight * kv_score + ttft_weight * ttft_score + itl_weight * itl_score
