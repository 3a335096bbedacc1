"""The optimization score of design.md §2 (seed semantics, validated weights). Pure.

    kv_score   = clamp(effective_kve, 0, 1)
    ttft_score = min(1, ttft_target / max(ttft_p95, 0.001))
    itl_score  = min(1, itl_target  / max(itl_p95,  0.001))
    score      = kv_w * kv_score + ttft_w * ttft_score + itl_w * itl_score

Weights must each be >= 0 and sum to 1 (within 1e-6); targets must be > 0 (seconds).
"""

from __future__ import annotations

import math

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


def latency_score(target_seconds: float, p95_seconds: float) -> float:
    """`min(1, target / max(p95, 0.001))`: 1 at or below target, target/actual above it."""
    return min(1.0, target_seconds / max(p95_seconds, MIN_LATENCY_SECONDS))


def optimization_score(
    kv_efficiency: float,
    ttft_p95_seconds: float,
    itl_p95_seconds: float,
    *,
    kv_weight: float = 0.4,
    ttft_weight: float = 0.4,
    itl_weight: float = 0.2,
    ttft_target_seconds: float = 0.5,
    itl_target_seconds: float = 0.05,
) -> float:
    """The combined score (higher is better, in [0, 1]) of the three core metrics."""
    validate_weights(kv_weight, ttft_weight, itl_weight)
    validate_targets(ttft_target_seconds, itl_target_seconds)
    kv_score = min(1.0, max(0.0, kv_efficiency))
    ttft_score = latency_score(ttft_target_seconds, ttft_p95_seconds)
    itl_score = latency_score(itl_target_seconds, itl_p95_seconds)
    return kv_weight * kv_score + ttft_weight * ttft_score + itl_weight * itl_score
