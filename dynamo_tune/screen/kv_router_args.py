"""The one table from `RouterConfig` fields to Dynamo's replay `KvRouterConfig` arguments. Pure.

`dynamo.replay.run_trace_replay(router_config=KvRouterConfig(**kv_router_kwargs(cfg)))`. Only
the knobs the replay simulates (`deploy/router_flags.py`, `FlagRule.replay`) and that are
`KvRouterConfig` arguments are here; an unset (None) field passes nothing, so Dynamo's default
applies, as on a live frontend. `mode` and `block_size` reach the replay as its own arguments
(`replay_router_mode`, `trace_block_size`).
"""

from __future__ import annotations

from typing import Any, Literal

from dynamo_tune.deploy.router import RouterConfig

KV_ROUTER_ARGS: dict[str, str] = {
    "overlap_score_credit": "overlap_score_credit",
    "prefill_load_scale": "prefill_load_scale",
    "temperature": "router_temperature",
    "overlap_score_credit_decay": "overlap_score_credit_decay",
    "decode_active_request_weight": "decode_active_request_weight",
    "queue_threshold": "router_queue_threshold",
    "queue_policy": "router_queue_policy",
}
"""`RouterConfig` field -> `dynamo._core.KvRouterConfig` keyword argument."""

ReplayRouterMode = Literal["round_robin", "kv_router"]

REPLAY_ROUTER_MODES: dict[str, ReplayRouterMode] = {"round-robin": "round_robin", "kv": "kv_router"}
"""`RouterConfig.mode` -> `run_trace_replay(router_mode=...)`: the modes the replay simulates."""


def replay_router_mode(mode: str) -> ReplayRouterMode:
    """The replay's `router_mode` for `mode`; ValueError naming a mode it cannot simulate."""
    if mode not in REPLAY_ROUTER_MODES:
        raise ValueError(
            f"the virtual-time replay simulates router modes {', '.join(REPLAY_ROUTER_MODES)} "
            f"only, but got {mode=}."
        )
    return REPLAY_ROUTER_MODES[mode]


def kv_router_kwargs(cfg: RouterConfig) -> dict[str, Any]:
    """`KvRouterConfig` keyword arguments for the set fields of `cfg` in `KV_ROUTER_ARGS`."""
    return {
        arg: getattr(cfg, field)
        for field, arg in KV_ROUTER_ARGS.items()
        if getattr(cfg, field) is not None
    }
