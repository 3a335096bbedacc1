"""RouterConfig ranges and the flag table, checked against Dynamo 1.6.1's own parsers."""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from router_helpers import DYNAMO_ATTR

from dynamo_tune.deploy.router import MAX_SESSION_AFFINITY_TTL_SECS, MAX_U32, RouterConfig
from dynamo_tune.deploy.router_flags import (
    ALL_MODES,
    FLAG_TABLE,
    KV_ONLY,
    fields_used_in,
    knob_used_in,
    policy_config,
    policy_config_yaml,
    router_flags,
)

EVERY_KNOB = RouterConfig(
    mode="kv",
    overlap_score_credit=1.75,
    prefill_load_scale=3.5,
    temperature=0.25,
    overlap_score_credit_decay=0.125,
    decode_active_request_weight=2.0,
    kv_events=False,
    ttl_secs=33.5,
    queue_threshold=0.75,
    queue_policy="wspt",
    session_affinity_ttl_secs=90,
    session_affinity_mode="soft",
    active_decode_blocks_threshold=0.9,
    active_prefill_tokens_threshold_frac=1.5,
    block_size=32,
)


def dynamo_frontend_config(argv: list[str]) -> Any:
    """Parse `argv` with the real `python -m dynamo.frontend` argument parser."""
    from dynamo.frontend.frontend_args import FrontendArgGroup, FrontendConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated-in-1.7 flags warn; still honoured
        parser = argparse.ArgumentParser()
        FrontendArgGroup().add_arguments(parser)
        config = FrontendConfig.from_cli_args(parser.parse_args(argv))
        config.validate()
    return config


def test_table_covers_every_field_once() -> None:
    fields = [rule.field for rule in FLAG_TABLE]
    assert sorted(fields) == sorted(RouterConfig.model_fields)
    assert len({rule.flag for rule in FLAG_TABLE}) == len(FLAG_TABLE)


def test_round_robin_uses_only_the_mode_affinity_thresholds_and_block_size() -> None:
    used = {
        "mode",
        "session_affinity_ttl_secs",
        "session_affinity_mode",
        "active_decode_blocks_threshold",
        "active_prefill_tokens_threshold_frac",
        "block_size",
    }
    for mode in ("round-robin", "random", "power-of-two", "least-loaded"):
        assert fields_used_in(mode) == used
        assert not knob_used_in("temperature", mode)
    assert fields_used_in("kv") == set(RouterConfig.model_fields)
    assert knob_used_in("temperature", "kv") and knob_used_in("session_affinity_mode", "random")


@pytest.mark.parametrize(
    ("field", "mode", "named"),
    [
        ("overlap_score_weight", "kv", "field='overlap_score_weight'"),
        ("temperature", "direct", "mode='direct'"),
    ],
)
def test_unknown_field_or_mode_is_an_error_naming_it(field: str, mode: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        knob_used_in(field, mode)


def test_kv_only_knobs_are_exactly_dynamos_kv_router_config_arguments() -> None:
    """Dynamo 1.6.1 builds `KvRouterConfig` only in kv mode (`build_router_config`); the
    `RouterConfig` arguments and the mode/block size reach the router in every mode."""
    config = dynamo_frontend_config([])
    kv_args, router_args = set(config.kv_router_kwargs()), set(config.router_kwargs())
    for rule in FLAG_TABLE:
        attr = DYNAMO_ATTR[rule.field]
        if attr in kv_args:
            assert rule.modes == KV_ONLY, rule.field
        else:
            assert attr in router_args | {"router_mode", "kv_cache_block_size"}, rule.field
            assert rule.modes == ALL_MODES, rule.field


# The KV-router weights Dynamo's `KvRouterConfig` lets Python read back, at non-default values.
READABLE_KV_KNOBS = {
    "overlap_score_credit": 7.0,
    "prefill_load_scale": 3.0,
    "overlap_score_credit_decay": 2.0,
    "decode_active_request_weight": 5.0,
}


@pytest.mark.parametrize("mode", sorted(ALL_MODES))
def test_kv_router_values_reach_dynamo_only_where_the_table_says(mode: str) -> None:
    from dynamo.common.configuration.groups.router_args import build_router_config

    cfg = RouterConfig(mode=mode, **READABLE_KV_KNOBS)  # type: ignore[arg-type]
    built = build_router_config(dynamo_frontend_config(router_flags(cfg))).kv_router_config
    for field, value in READABLE_KV_KNOBS.items():
        assert (getattr(built, field) == value) is knob_used_in(field, mode), field


def test_unset_fields_pass_no_flag() -> None:
    assert router_flags(RouterConfig()) == ["--router-mode", "kv"]
    assert router_flags(RouterConfig(mode="round-robin")) == ["--router-mode", "round-robin"]


@pytest.mark.parametrize("field", sorted(DYNAMO_ATTR))
def test_every_knob_reaches_dynamo(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DYN_ROUTER_TEMPERATURE", "DYN_ROUTER_MODE", "DYN_KV_CACHE_BLOCK_SIZE"):
        monkeypatch.delenv(name, raising=False)
    config = dynamo_frontend_config(router_flags(EVERY_KNOB))
    assert getattr(config, DYNAMO_ATTR[field]) == getattr(EVERY_KNOB, field)


@pytest.mark.parametrize("value", [True, False])
def test_kv_events_is_negatable(value: bool) -> None:
    flags = router_flags(RouterConfig(kv_events=value))
    assert ("--router-kv-events" in flags) is value
    assert ("--no-router-kv-events" in flags) is not value
    assert dynamo_frontend_config(flags).use_kv_events is value


def test_floats_are_passed_exactly() -> None:
    value = 0.1 + 0.2  # 0.30000000000000004
    flags = router_flags(RouterConfig(temperature=value))
    assert dynamo_frontend_config(flags).router_temperature == value


def test_policy_file_carries_the_yaml_capable_settings(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    cfg = RouterConfig(kv_events=False, ttl_secs=7.5, temperature=0.5)
    text = policy_config_yaml(cfg)
    assert text is not None
    path.write_text(text)
    flags = router_flags(cfg, policy_file=path)
    assert "--router-ttl-secs" not in flags and "--no-router-kv-events" not in flags
    assert flags[-2:] == ["--router-policy-config", str(path)]
    config = dynamo_frontend_config(flags)  # Dynamo reads the YAML itself
    assert config.kv_router_kwargs()["use_kv_events"] is False
    assert config.kv_router_kwargs()["router_ttl_secs"] == 7.5
    assert config.router_temperature == 0.5


def test_policy_file_is_omitted_when_nothing_goes_there(tmp_path: Path) -> None:
    cfg = RouterConfig(temperature=0.5)
    assert policy_config(cfg) is None and policy_config_yaml(cfg) is None
    assert "--router-policy-config" not in router_flags(cfg, policy_file=tmp_path / "p.yaml")


# (field, value Dynamo rejects): every range rule of RouterConfig.
OUT_OF_RANGE = [
    ("overlap_score_credit", -0.1),
    ("overlap_score_credit", math.inf),
    ("overlap_score_credit", math.nan),
    ("prefill_load_scale", -1.0),
    ("prefill_load_scale", math.inf),
    ("temperature", -0.01),
    ("temperature", math.inf),
    ("overlap_score_credit_decay", -0.5),
    ("overlap_score_credit_decay", math.nan),
    ("decode_active_request_weight", -1.0),
    ("decode_active_request_weight", math.inf),
    ("ttl_secs", -1.0),
    ("ttl_secs", math.inf),
    ("queue_threshold", -0.1),
    ("queue_threshold", math.nan),
    ("session_affinity_ttl_secs", 0),
    ("session_affinity_ttl_secs", MAX_SESSION_AFFINITY_TTL_SECS + 1),
    ("active_decode_blocks_threshold", -0.1),
    ("active_decode_blocks_threshold", 1.01),
    ("active_decode_blocks_threshold", math.nan),
    ("active_prefill_tokens_threshold_frac", -0.5),
    ("active_prefill_tokens_threshold_frac", math.inf),
    ("block_size", 0),
    ("block_size", MAX_U32 + 1),
    ("mode", "direct"),
    ("mode", "kv-ish"),
    ("queue_policy", "lcfs"),
    ("session_affinity_mode", "sticky"),
    ("kv_events", "maybe"),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE)
def test_out_of_range_is_a_validation_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        RouterConfig(**{field: value})
    assert exc.value.errors()[0]["loc"][0] == field


def test_unknown_knob_is_rejected() -> None:
    with pytest.raises(ValidationError, match="overlap_score_weight"):
        RouterConfig(overlap_score_weight=1.0)  # type: ignore[call-arg]


# Our ranges are Dynamo's: the runtime's own constructors reject the same values.
KV_ROUTER_KWARG = {
    "overlap_score_credit": "overlap_score_credit",
    "prefill_load_scale": "prefill_load_scale",
    "temperature": "router_temperature",
    "overlap_score_credit_decay": "overlap_score_credit_decay",
    "decode_active_request_weight": "decode_active_request_weight",
    "ttl_secs": "router_ttl_secs",
    "queue_threshold": "router_queue_threshold",
}
ROUTER_KWARG = (
    "session_affinity_ttl_secs",
    "active_decode_blocks_threshold",
    "active_prefill_tokens_threshold_frac",
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (f, v)
        for f, v in OUT_OF_RANGE
        if (f in KV_ROUTER_KWARG or f in ROUTER_KWARG)
        and not (isinstance(v, float) and math.isinf(v) and f in ("ttl_secs", "queue_threshold"))
    ],
)
def test_dynamo_rejects_the_same_values(field: str, value: object) -> None:
    from dynamo.llm import KvRouterConfig, RouterMode
    from dynamo.llm import RouterConfig as DynamoRouterConfig

    with pytest.raises((ValueError, OverflowError)):
        if field in KV_ROUTER_KWARG:
            KvRouterConfig(**{KV_ROUTER_KWARG[field]: value})
        else:
            DynamoRouterConfig(RouterMode.KV, KvRouterConfig(), **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("overlap_score_credit", 0.0),
        ("temperature", 0.0),
        ("ttl_secs", 0.0),
        ("queue_threshold", 0.0),
        ("session_affinity_ttl_secs", 1),
        ("session_affinity_ttl_secs", MAX_SESSION_AFFINITY_TTL_SECS),
        ("active_decode_blocks_threshold", 0.0),
        ("active_decode_blocks_threshold", 1.0),
        ("block_size", 1),
    ],
)
def test_boundaries_are_accepted(field: str, value: object) -> None:
    assert getattr(RouterConfig(**{field: value}), field) == value
