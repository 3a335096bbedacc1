"""What a study's screen replays: which searched knobs, which engine model, and its rules. Pure.

The virtual-time replay (`dynamo_tune.screen`) simulates the router knobs marked `replay` in
the router flag table (`deploy/router_flags.py`), no client hint (`REPLAY_HINTS`), and every
`workload.*` knob (the request plan is rebuilt for each value). A searched knob it cannot
simulate is *live-only*: the screen holds it at the baseline's value and only the live search
varies it. The engine model is the local stack's own mocker settings for `kind: local`, else
`study.screen.engine`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynamo_tune.deploy.router_flags import REPLAY_HINTS, replay_simulates
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.screen.kv_router_args import REPLAY_ROUTER_MODES
from dynamo_tune.study.spec.conditions import ROUTER_MODE
from dynamo_tune.study.spec.schema import CategoricalParam, ScreenEngineSpec, StudySpec
from dynamo_tune.study.spec.space import split_name
from dynamo_tune.workload.spec import CommandWorkloadSpec


def is_screened(name: str) -> bool:
    """Whether the replay simulates searched knob `name` (`<section>.<field>`)."""
    section, field = split_name(name)
    if section == "router":
        return replay_simulates(field)
    if section == "hints":
        return field in REPLAY_HINTS
    return True  # workload.*: the plan itself changes


@dataclass(frozen=True)
class ScreenScope:
    """The searched knobs the screen varies and those only the live search varies."""

    screened: tuple[str, ...]
    live_only: tuple[str, ...]


def screen_scope(spec: StudySpec) -> ScreenScope:
    """Split the study's searched knobs, in file order."""
    names = list(spec.search_space)
    return ScreenScope(
        screened=tuple(n for n in names if is_screened(n)),
        live_only=tuple(n for n in names if not is_screened(n)),
    )


def screen_engine(spec: StudySpec) -> ScreenEngineSpec:
    """The engine model of the screen: the local stack's mocker, else `study.screen.engine`
    (ValueError when neither: `check_screen` reports that first)."""
    deployment = spec.deployment
    if isinstance(deployment, LocalDeploymentSpec):
        mocker = deployment.mocker
        more: dict[str, object] = {"enable_prefix_caching": mocker.enable_prefix_caching}
        if mocker.max_num_seqs is not None:
            more["max_num_seqs"] = mocker.max_num_seqs
        if mocker.max_num_batched_tokens is not None:
            more["max_num_batched_tokens"] = mocker.max_num_batched_tokens
        return ScreenEngineSpec(
            workers=deployment.workers,
            block_size=deployment.block_size,
            num_gpu_blocks=mocker.num_gpu_blocks,
            speedup_ratio=mocker.speedup_ratio,
            args=more,
        )
    screen = spec.study.screen
    if screen is None or screen.engine is None:
        raise ValueError(f"deployment kind {deployment.kind} needs study.screen.engine")
    return screen.engine


def check_screen(spec: StudySpec) -> list[str]:
    """Every problem of `study.screen` with the rest of the file, located."""
    screen = spec.study.screen
    if screen is None:
        return []
    issues: list[str] = []
    kind = spec.deployment.kind
    if isinstance(spec.workload, CommandWorkloadSpec):
        issues.append(
            "study.screen: workload kind command runs a program whose requests the replay "
            "cannot see; screening needs an agentic, trace or dynamo-trace workload "
            "(or remove study.screen)"
        )
    if isinstance(spec.deployment, LocalDeploymentSpec):
        if screen.engine is not None:
            issues.append(
                "study.screen.engine: the local stack's own mocker settings are the engine "
                "model (deployment.workers, deployment.mocker); remove study.screen.engine"
            )
    elif screen.engine is None:
        issues.append(
            f"study.screen.engine: required with deployment kind {kind}: the screen replays "
            "an engine model of your workers (workers, block_size, num_gpu_blocks, "
            "speedup_ratio, args such as planner_profile_data), and it cannot read them "
            "from a deployment it does not run"
        )
    if spec.objective.directions:
        issues.append(
            "study.screen: the screen ranks configurations by the study's score; a study "
            "with objective.directions (Pareto) cannot be screened"
        )
    if screen.top > screen.trials:
        issues.append(
            f"study.screen.top: {screen.top} is more than the {screen.trials} screened trials"
        )
    modes = ", ".join(REPLAY_ROUTER_MODES)
    param = spec.search_space.get(ROUTER_MODE)
    if isinstance(param, CategoricalParam):
        bad = [c for c in param.choices if c not in REPLAY_ROUTER_MODES]
        if bad:
            issues.append(
                f"search_space.{ROUTER_MODE}: the replay simulates router modes {modes} only, "
                f"not {', '.join(map(str, bad))}: remove them or remove study.screen"
            )
    elif param is None and spec.deployment.router.mode not in REPLAY_ROUTER_MODES:
        issues.append(
            f"deployment.router.mode: the replay simulates router modes {modes} only, "
            f"not {spec.deployment.router.mode}: screening cannot run"
        )
    scope = screen_scope(spec)
    if not scope.screened:
        issues.append(
            "study.screen: the replay simulates none of the searched knobs "
            f"({', '.join(scope.live_only)} are live-only); remove study.screen"
        )
    return issues
