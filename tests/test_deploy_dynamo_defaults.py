"""`dynamo_router_defaults()` against the installed Dynamo's own argument definitions."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator

import pytest
from router_helpers import DYNAMO_ATTR

from dynamo_tune.deploy import dynamo_router_defaults
from dynamo_tune.deploy.dynamo_defaults import _read_defaults
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.errors import SpecError


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads Dynamo again, in an environment without `DYN_*` variables."""
    for name in [k for k in os.environ if k.startswith("DYN_")]:
        monkeypatch.delenv(name)
    _read_defaults.cache_clear()
    yield
    _read_defaults.cache_clear()


def dynamo_parser() -> argparse.ArgumentParser:
    """`python -m dynamo.frontend`'s parser, built here independently of the code under test."""
    from dynamo.frontend.frontend_args import FrontendArgGroup

    parser = argparse.ArgumentParser()
    FrontendArgGroup().add_arguments(parser)
    return parser


def test_every_default_is_the_frontend_parsers() -> None:
    parser = dynamo_parser()
    expected = {
        field: parser.get_default(attr)
        for field, attr in DYNAMO_ATTR.items()
        if parser.get_default(attr) is not None
    }
    assert dynamo_router_defaults() == expected
    # Fields whose Dynamo default is "unset" are absent (RouterConfig's None already says it).
    unset = {f for f, attr in DYNAMO_ATTR.items() if parser.get_default(attr) is None}
    assert unset == {
        "queue_threshold",
        "session_affinity_ttl_secs",
        "active_decode_blocks_threshold",
        "active_prefill_tokens_threshold_frac",
        "block_size",
    }


def test_the_known_starting_point() -> None:
    from dynamo.llm import KvRouterConfig

    defaults = dynamo_router_defaults()
    assert defaults["mode"] == "round-robin"
    assert defaults["overlap_score_credit"] == 1.0
    assert defaults["prefill_load_scale"] == 1.0
    assert defaults["temperature"] == 0.0
    # what Dynamo's own constructor uses when the frontend passes nothing else
    assert defaults["decode_active_request_weight"] == KvRouterConfig().decode_active_request_weight
    assert defaults["overlap_score_credit_decay"] == KvRouterConfig().overlap_score_credit_decay


def test_values_have_routerconfig_types_and_each_call_gets_its_own_dict() -> None:
    defaults = dynamo_router_defaults()
    assert RouterConfig(**defaults).model_dump(include=set(defaults)) == defaults
    assert all(isinstance(defaults[f], float) for f in ("temperature", "ttl_secs"))
    defaults["temperature"] = 9.0
    assert dynamo_router_defaults()["temperature"] == 0.0


def test_dynamo_environment_variables_neither_change_nor_lose_a_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DYN_ROUTER_TEMPERATURE", "3.5")
    monkeypatch.setenv("DYN_ROUTER_MODE", "kv")
    with pytest.warns(FutureWarning, match="DYN_ROUTER_TEMPERATURE is deprecated"):
        assert dynamo_parser().get_default("router_temperature") == 3.5  # Dynamo reads it
    defaults = dynamo_router_defaults()
    assert (defaults["temperature"], defaults["mode"]) == (0.0, "round-robin")
    assert (os.environ["DYN_ROUTER_TEMPERATURE"], os.environ["DYN_ROUTER_MODE"]) == ("3.5", "kv")


def test_without_ai_dynamo_it_is_a_spec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dynamo.frontend.frontend_args", None)  # import fails
    with pytest.raises(SpecError, match="needs the installed ai-dynamo \\(the `stack`"):
        dynamo_router_defaults()
