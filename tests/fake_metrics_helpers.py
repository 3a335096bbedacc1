"""Fake metrics backends and study-file pieces shared by the report and confirmation tests.

The backends change what the fake cluster (tests/fakes.py) reports, so which knobs matter
(and by how much) is known by construction; each adds a repeating TTFT jitter (a cycle of 5).
"""

from __future__ import annotations

from fakes import FakeMetricsBackend

from dynamo_tune.metrics import DynamoMetricsResult

TEMPERATURES = {"router.temperature": {"type": "categorical", "choices": [0.0, 0.3, 0.6]}}
GRID = {
    "study.n_trials": 4,
    "study.sampler": {"name": "grid", "seed": 1},
    "search_space": TEMPERATURES,
}
"""Study-file changes: a grid over three router temperatures (plus the baseline)."""

PARETO = [{"maximize": "kv_efficiency"}, {"minimize": "ttft_p95_seconds"}]
"""`objective.directions` of a two-objective (Pareto) study."""
RANDOM_12 = {"study.n_trials": 12, "study.sampler": {"name": "random", "seed": 3}}
"""Study-file changes: 12 trials of a seeded random sampler."""


class ModeOnlyMetrics(FakeMetricsBackend):
    """kv: KVE 0.6, TTFT p95 0.7 s; round-robin: KVE 0.25, TTFT p95 0.9 s; ITL 0.05 s.
    TTFT is multiplied by 1 + 0.02·((3k) mod 5 − 2) for the k-th collection (±4 %)."""

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        result = await super().collect(start, end)
        kv = self.cluster.router is not None and self.cluster.router.mode == "kv"
        jitter = 1 + 0.02 * ((len(self.windows) * 3) % 5 - 2)
        return result.model_copy(
            update={
                "ttft_p95": (0.7 if kv else 0.9) * jitter,
                "itl_p95": 0.05,
                "frontend_cached_tokens_rate": 60.0 if kv else 25.0,
            }
        )


class FlatNoisyMetrics(FakeMetricsBackend):
    """Every configuration looks like round-robin, TTFT jittered by -4..+4 % (a cycle of 5):
    nothing beats the baseline."""

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        result = await super().collect(start, end)
        jitter = 1 + 0.02 * ((len(self.windows) * 3) % 5 - 2)
        return result.model_copy(
            update={
                "ttft_p95": 0.9 * jitter,
                "itl_p95": 0.06,
                "frontend_cached_tokens_rate": 25.0,
            }
        )
