"""How fast the virtual-time replay screens router configurations on the quickstart's load.

Replays the quickstart's request plan (studies/quickstart.yaml: its agentic workload and its
local deployment's workers and mocker: 4 workers, 0.5x, block 16, 3072 blocks) once with
round-robin and once with each of `--configs` random kv configurations drawn from the study's
search-space ranges, and prints configurations per second and each one's KVE, TTFT p95,
ITL p95 and score (the study's `objective` weights and targets). Metrics cover every request
(the study's steady window is not applied); session-id hints are not simulated.

    uv run python benchmarks/screen_rate.py [--configs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time
from pathlib import Path

os.environ.setdefault("DYN_LOG", "warn")  # the replay's router logs every decision at INFO

from dynamo_tune.deploy.router import RouterConfig  # noqa: E402
from dynamo_tune.deploy.spec import LocalDeploymentSpec  # noqa: E402
from dynamo_tune.screen.replay import ReplayResult, engine_args, replay_plan  # noqa: E402
from dynamo_tune.study.spec.loading import load_spec  # noqa: E402
from dynamo_tune.workload import agentic_plan  # noqa: E402
from dynamo_tune.workload.spec import AgenticWorkloadSpec  # noqa: E402

STUDY = Path(__file__).resolve().parent.parent / "studies" / "quickstart.yaml"


def random_kv(rng: random.Random) -> RouterConfig:
    """A kv configuration in the quickstart's search-space ranges."""
    return RouterConfig(
        mode="kv",
        overlap_score_credit=rng.uniform(0.0, 4.0),
        temperature=rng.uniform(0.0, 1.0),
        prefill_load_scale=math.exp(rng.uniform(math.log(0.25), math.log(32.0))),
        decode_active_request_weight=rng.uniform(0.0, 128.0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    spec = load_spec(STUDY).spec
    workload, deployment, objective = spec.workload, spec.deployment, spec.objective
    assert isinstance(workload, AgenticWorkloadSpec), type(workload)
    assert isinstance(deployment, LocalDeploymentSpec), type(deployment)
    plan = agentic_plan(workload)
    rng = random.Random(args.seed)
    routers = [RouterConfig(mode="round-robin")] + [random_kv(rng) for _ in range(args.configs)]

    def replay(router: RouterConfig) -> ReplayResult:
        return replay_plan(
            plan,
            engine=engine_args(
                block_size=deployment.block_size,
                num_gpu_blocks=deployment.mocker.num_gpu_blocks,
                speedup_ratio=deployment.mocker.speedup_ratio,
            ),
            workers=deployment.workers,
            router=router,
            in_flight_limit=workload.in_flight_limit,
        )

    started = time.perf_counter()
    results = [replay(router) for router in routers]
    elapsed = time.perf_counter() - started
    print(
        f"{len(plan)} requests, {len(routers)} configurations in {elapsed:.3f} s: "
        f"{len(routers) / elapsed:.1f} configurations/s"
    )
    print(f"{'mode':<12}{'credit':>7}{'temp':>6}{'scale':>7}{'decode':>7}"
          f"{'KVE':>7}{'TTFT95 s':>10}{'ITL95 s':>9}{'score':>7}")  # fmt: skip
    for router, result in zip(routers, results, strict=True):
        m = result.metrics
        score = m.to_optimization_score(
            kv_weight=objective.kv_weight,
            ttft_weight=objective.ttft_weight,
            itl_weight=objective.itl_weight,
            ttft_target_seconds=objective.ttft_target_seconds,
            itl_target_seconds=objective.itl_target_seconds,
        )
        knobs = [
            router.overlap_score_credit,
            router.temperature,
            router.prefill_load_scale,
            router.decode_active_request_weight,
        ]
        cols = "".join(
            f"{'-' if k is None else f'{k:.2f}':>{w}}"
            for k, w in zip(knobs, (7, 6, 7, 7), strict=True)
        )
        print(
            f"{router.mode:<12}{cols}{m.kv_efficiency or 0:>7.3f}{m.ttft_p95_seconds or 0:>10.3f}"
            f"{m.itl_p95_seconds or 0:>9.3f}{score or 0:>7.3f}"
        )


if __name__ == "__main__":
    main()
