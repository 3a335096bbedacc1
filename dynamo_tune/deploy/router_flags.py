"""The one table from `RouterConfig` fields to Dynamo 1.6.1 frontend flags. Pure.

Every knob is passed as a `python -m dynamo.frontend` flag (visible in the process arguments).
`router.use_kv_events` and `router.router_ttl_secs` are also accepted by 1.6.1 in the
`router:` section of `--router-policy-config` YAML; `router_flags(cfg, policy_file)` moves
them there (write `policy_config_yaml(cfg)` to that file). Several flags are deprecated in
1.6.1 and move to the policy YAML in 1.7 (`moves_to`): when that happens, change this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dynamo_tune.deploy.router import RouterConfig


@dataclass(frozen=True)
class FlagRule:
    """How one `RouterConfig` field reaches the frontend."""

    field: str
    flag: str
    negatable: bool = False  # bool field: `--flag` / `--no-flag`
    policy_key: str | None = None  # key in the YAML `router:` section 1.6.1 accepts
    moves_to: str | None = None  # where Dynamo 1.7 wants it (deprecation notice)


FLAG_TABLE: tuple[FlagRule, ...] = (
    FlagRule("mode", "--router-mode"),
    FlagRule(
        "overlap_score_credit",
        "--router-kv-overlap-score-credit",
        moves_to="default policy parameters.overlap_score_credit",
    ),
    FlagRule(
        "prefill_load_scale",
        "--router-prefill-load-scale",
        moves_to="default policy parameters.prefill_load_scale",
    ),
    FlagRule(
        "temperature",
        "--router-temperature",
        moves_to="default policy parameters.router_temperature",
    ),
    FlagRule(
        "overlap_score_credit_decay",
        "--router-kv-overlap-score-credit-decay",
        moves_to="default policy parameters.overlap_score_credit_decay",
    ),
    FlagRule(
        "decode_active_request_weight",
        "--router-decode-active-request-weight",
        moves_to="default policy parameters.decode_active_request_weight",
    ),
    FlagRule("kv_events", "--router-kv-events", negatable=True, policy_key="use_kv_events"),
    FlagRule("ttl_secs", "--router-ttl-secs", policy_key="router_ttl_secs"),
    FlagRule(
        "queue_threshold",
        "--router-queue-threshold",
        moves_to="policy_classes[].prefill_busy_threshold_frac",
    ),
    FlagRule("queue_policy", "--router-queue-policy", moves_to="policy_classes[].queue_policy"),
    FlagRule("session_affinity_ttl_secs", "--router-session-affinity-ttl-secs"),
    FlagRule("session_affinity_mode", "--router-session-affinity-mode"),
    FlagRule("active_decode_blocks_threshold", "--active-decode-blocks-threshold"),
    FlagRule("active_prefill_tokens_threshold_frac", "--active-prefill-tokens-threshold-frac"),
    FlagRule("block_size", "--kv-cache-block-size"),
)

FLAG_BY_FIELD: dict[str, FlagRule] = {rule.field: rule for rule in FLAG_TABLE}


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
