"""The one table from `RouterConfig` fields to Dynamo 1.6.1 frontend flags. Pure.

Every knob is passed as a `python -m dynamo.frontend` flag (visible in the process arguments).
`router.use_kv_events` and `router.router_ttl_secs` are also accepted by 1.6.1 in the
`router:` section of `--router-policy-config` YAML; `router_flags(cfg, policy_file)` moves
them there (write `policy_config_yaml(cfg)` to that file). Several flags are deprecated in
1.6.1 and move to the policy YAML in 1.7 (`moves_to`): when that happens, change this table.

`FlagRule.modes` lists the router modes in which Dynamo 1.6.1 reads the knob
(`knob_used_in`, `fields_used_in`); in any other mode the flag is parsed and then ignored.
What each claim rests on:

- KV-router knobs (`KV_ONLY`: overlap credit, prefill load scale, temperature, credit decay,
  decode request weight, KV events, TTL, queue threshold and policy) are `KvRouterConfig`
  arguments. The frontend (`dynamo.common.configuration.groups.router_args.
  build_router_config`) builds `KvRouterConfig(**config.kv_router_kwargs())` only
  `if mode == RouterMode.KV` and passes None otherwise (tests/test_deploy_router_flags.py
  reads the built config back). In the Rust core (ai-dynamo/dynamo sources; the installed
  `_core` library names the same files) `lib/llm/src/entrypoint/input/common.rs`
  (`preprocessed_backend_engine`) builds the KV router only for `RouterMode::KV`;
  round-robin, random, power-of-two and least-loaded use the built-in picker
  (`lib/llm/src/kv_router/routing_host/builtin.rs`), which has no cost or KV-cache input.
  Round-robin checked on the stack (tests/test_deploy_router_modes.py).
- Session affinity (TTL and hard/soft mode) and the busy thresholds are `RouterConfig`
  arguments (`router_kwargs()`), passed in every mode. Session affinity wraps every mode's
  router (`common.rs`; `builtin.rs` reads hard = pinned worker, soft = preferred worker;
  measured in round-robin, docs/architecture.md#router-flags). The busy thresholds feed the
  `KvWorkerMonitor` that `lib/llm/src/discovery/watcher.rs` starts for every mode from the
  workers' own load events; the push router skips the workers it marks overloaded, whatever
  the mode.
- `mode` selects the router; `block_size` is also the workers' block size on the local stack
  (what can be cached at all), so both act in every mode.

`FlagRule.replay` says whether Dynamo's virtual-time replay (`dynamo.replay.run_trace_replay`,
used by `dynamo_tune.screen.replay`) simulates the knob; `replay_simulates(field)` reads it.
The replay takes a `KvRouterConfig`, the router mode (round-robin or kv only: the screen
refuses the others), the block size and the mocker's engine arguments, and nothing else:

- simulated: `mode` (round-robin and kv), the cost knobs (overlap credit, its decay, prefill
  load scale, temperature, decode request weight), the queue (`queue_threshold` changed the
  replayed TTFT on the quickstart load; `queue_policy` is the same queue's order, its effect
  not measured apart) and `block_size`;
- not simulated: session affinity (TTL and mode: the replay builds no `RouterConfig`), the busy
  thresholds (likewise), and `kv_events` / `ttl_secs` (the offline replay feeds the indexer
  the workers' KV events itself; with events off and a 1 ms TTL the replayed KVE did not move).
- The client's session-id hint (`X-Dynamo-Session-ID`, workload hints) is not simulated either:
  it only acts through session affinity (`dynamo_tune/screen/trace_writer.py` says so too).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml

from dynamo_tune.deploy.router import RouterConfig, RouterMode

ALL_MODES: frozenset[RouterMode] = frozenset(get_args(RouterMode))
"""Every router mode `RouterConfig.mode` accepts."""
KV_ONLY: frozenset[RouterMode] = frozenset({"kv"})


@dataclass(frozen=True)
class FlagRule:
    """How one `RouterConfig` field reaches the frontend."""

    field: str
    flag: str
    modes: frozenset[RouterMode]  # router modes in which Dynamo reads it (module docstring)
    negatable: bool = False  # bool field: `--flag` / `--no-flag`
    policy_key: str | None = None  # key in the YAML `router:` section 1.6.1 accepts
    moves_to: str | None = None  # where Dynamo 1.7 wants it (deprecation notice)
    replay: bool = False  # simulated by Dynamo's virtual-time replay (module docstring)


FLAG_TABLE: tuple[FlagRule, ...] = (
    FlagRule("mode", "--router-mode", ALL_MODES, replay=True),
    FlagRule(
        "overlap_score_credit",
        "--router-kv-overlap-score-credit",
        KV_ONLY,
        moves_to="default policy parameters.overlap_score_credit",
        replay=True,
    ),
    FlagRule(
        "prefill_load_scale",
        "--router-prefill-load-scale",
        KV_ONLY,
        moves_to="default policy parameters.prefill_load_scale",
        replay=True,
    ),
    FlagRule(
        "temperature",
        "--router-temperature",
        KV_ONLY,
        moves_to="default policy parameters.router_temperature",
        replay=True,
    ),
    FlagRule(
        "overlap_score_credit_decay",
        "--router-kv-overlap-score-credit-decay",
        KV_ONLY,
        moves_to="default policy parameters.overlap_score_credit_decay",
        replay=True,
    ),
    FlagRule(
        "decode_active_request_weight",
        "--router-decode-active-request-weight",
        KV_ONLY,
        moves_to="default policy parameters.decode_active_request_weight",
        replay=True,
    ),
    FlagRule(
        "kv_events", "--router-kv-events", KV_ONLY, negatable=True, policy_key="use_kv_events"
    ),
    FlagRule("ttl_secs", "--router-ttl-secs", KV_ONLY, policy_key="router_ttl_secs"),
    FlagRule(
        "queue_threshold",
        "--router-queue-threshold",
        KV_ONLY,
        moves_to="policy_classes[].prefill_busy_threshold_frac",
        replay=True,
    ),
    FlagRule(
        "queue_policy",
        "--router-queue-policy",
        KV_ONLY,
        moves_to="policy_classes[].queue_policy",
        replay=True,
    ),
    FlagRule("session_affinity_ttl_secs", "--router-session-affinity-ttl-secs", ALL_MODES),
    FlagRule("session_affinity_mode", "--router-session-affinity-mode", ALL_MODES),
    FlagRule("active_decode_blocks_threshold", "--active-decode-blocks-threshold", ALL_MODES),
    FlagRule(
        "active_prefill_tokens_threshold_frac", "--active-prefill-tokens-threshold-frac", ALL_MODES
    ),
    FlagRule("block_size", "--kv-cache-block-size", ALL_MODES, replay=True),
)

FLAG_BY_FIELD: dict[str, FlagRule] = {rule.field: rule for rule in FLAG_TABLE}

REPLAY_HINTS: frozenset[str] = frozenset()
"""`PrefixHints` fields the replay simulates: none. The session-id hint acts only through
session affinity (module docstring), the other hints are fields of the request body the mocker
does not read; every hint is searched live only."""


def knob_used_in(field: str, mode: str) -> bool:
    """Whether Dynamo 1.6.1 reads `RouterConfig` field `field` in router mode `mode`. Pure."""
    if field not in FLAG_BY_FIELD:
        raise ValueError(
            f"`field` must be a RouterConfig field ({', '.join(FLAG_BY_FIELD)}), but got {field=}."
        )
    return field in fields_used_in(mode)  # checks `mode`


def replay_simulates(field: str) -> bool:
    """Whether Dynamo's virtual-time replay simulates `RouterConfig` field `field`. Pure."""
    if field not in FLAG_BY_FIELD:
        raise ValueError(
            f"`field` must be a RouterConfig field ({', '.join(FLAG_BY_FIELD)}), but got {field=}."
        )
    return FLAG_BY_FIELD[field].replay


def fields_used_in(mode: str) -> frozenset[str]:
    """The `RouterConfig` fields Dynamo 1.6.1 reads in router mode `mode`. Pure."""
    if mode not in ALL_MODES:
        raise ValueError(
            f"`mode` must be a router mode ({', '.join(sorted(ALL_MODES))}), but got {mode=}."
        )
    return frozenset(rule.field for rule in FLAG_TABLE if mode in rule.modes)


def format_value(value: object) -> str:
    """A flag value as the frontend's argparse reads it (`repr` for floats: exact). Pure."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def router_flags(cfg: RouterConfig, policy_file: Path | None = None) -> list[str]:
    """Frontend flags for `cfg`; unset (None) fields pass no flag (Dynamo's default).

    With `policy_file`, the fields 1.6.1 accepts in the policy YAML go there instead and
    `--router-policy-config <policy_file>` is added (only if there is any such field).
    """
    flags: list[str] = []
    in_yaml = False
    for rule in FLAG_TABLE:
        value = getattr(cfg, rule.field)
        if value is None:
            continue
        if policy_file is not None and rule.policy_key is not None:
            in_yaml = True
            continue
        if rule.negatable:
            flags.append(rule.flag if value else "--no-" + rule.flag.removeprefix("--"))
        else:
            flags.extend([rule.flag, format_value(value)])
    if in_yaml:
        flags.extend(["--router-policy-config", str(policy_file)])
    return flags


def split_flags(args: Sequence[str], fields: Collection[str]) -> tuple[list[str], list[str]]:
    """Split frontend router flags `args` (as `router_flags` writes them) into (the flags that
    set one of the `RouterConfig` fields `fields`, the flags that set another field), each in
    its order; e.g. the local stack's `--kv-cache-block-size` when `block_size` is not in
    `fields`. An argument this table does not know stays in the first list. Pure."""
    rules = {r.flag: r for r in FLAG_TABLE}
    rules |= {"--no-" + r.flag.removeprefix("--"): r for r in FLAG_TABLE if r.negatable}
    kept: list[str] = []
    other: list[str] = []
    i = 0
    while i < len(args):
        found = rules.get(args[i])
        width = 1 if found is None or found.negatable else 2
        (kept if found is None or found.field in fields else other).extend(args[i : i + width])
        i += width
    return kept, other


def policy_config(cfg: RouterConfig) -> dict[str, Any] | None:
    """The `--router-policy-config` document for the YAML-capable fields set in `cfg`."""
    router = {
        rule.policy_key: getattr(cfg, rule.field)
        for rule in FLAG_TABLE
        if rule.policy_key is not None and getattr(cfg, rule.field) is not None
    }
    return {"router": router} if router else None


def policy_config_yaml(cfg: RouterConfig) -> str | None:
    """`policy_config(cfg)` as YAML text, or None when no YAML-capable field is set."""
    doc = policy_config(cfg)
    return yaml.safe_dump(doc, sort_keys=False) if doc is not None else None
