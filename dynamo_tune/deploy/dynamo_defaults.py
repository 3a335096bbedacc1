"""Dynamo's own router defaults. Does I/O: imports the installed Dynamo (~0.12 s, once).

`dynamo_router_defaults()` reads what `python -m dynamo.frontend` uses for each `RouterConfig`
field when its flag is not passed, from the frontend's own argument definitions
(`FrontendArgGroup().add_arguments`, `parse_args([])`, `FrontendConfig.from_cli_args`,
`validate()`), never from numbers copied here. The KV-router weights Dynamo's
`KvRouterConfig` exposes are then read back from the `KvRouterConfig` the frontend would
build from those arguments (so a deprecated alias that takes precedence is accounted for).

The flags are found by name through `FLAG_TABLE`, so each value belongs to the flag this
tool passes. The environment is read as the local stack's frontend sees it: without `DYN_*`
variables (the stack drops them; Dynamo takes a flag's default from its variable).

A field whose default is "unset" is left out: the queue threshold, the session-affinity TTL
and both busy thresholds (each feature off), and the block size (Dynamo takes the
workers'). None is already how `RouterConfig` says "Dynamo's default" for those.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import FLAG_TABLE
from dynamo_tune.errors import SpecError

DYNAMO_ENV_PREFIX = "DYN_"

# RouterConfig field -> readable attribute of Dynamo's `KvRouterConfig` (the value it uses).
_KV_ROUTER_ATTR = {
    "overlap_score_credit": "overlap_score_credit",
    "prefill_load_scale": "prefill_load_scale",
    "overlap_score_credit_decay": "overlap_score_credit_decay",
    "decode_active_request_weight": "decode_active_request_weight",
}


@contextmanager
def _without_dynamo_env() -> Iterator[None]:
    """Hide `DYN_*` variables from Dynamo's argument definitions, restoring them after."""
    hidden = {k: v for k, v in os.environ.items() if k.startswith(DYNAMO_ENV_PREFIX)}
    for name in hidden:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(hidden)


def dynamo_router_defaults() -> dict[str, Any]:
    """{RouterConfig field: the value the installed frontend uses when its flag is absent}.

    Values are converted to the field's type (`RouterConfig` validates them: a default outside
    our ranges would be a ValidationError). Dynamo is imported and parsed once (cached); each
    call returns a new dict. Raises `SpecError` when ai-dynamo is not installed.
    """
    return dict(_read_defaults())


@functools.cache
def _read_defaults() -> tuple[tuple[str, Any], ...]:
    try:
        from dynamo.frontend.frontend_args import FrontendArgGroup, FrontendConfig
        from dynamo.llm import KvRouterConfig
    except ImportError as exc:
        raise SpecError(
            "the dynamo-defaults preset needs the installed ai-dynamo (the `stack` dependency "
            f"group): {exc}"
        ) from exc

    with _without_dynamo_env():
        parser = argparse.ArgumentParser()
        FrontendArgGroup().add_arguments(parser)
        config = FrontendConfig.from_cli_args(parser.parse_args([]))
        config.validate()
        kv_router = KvRouterConfig(**config.kv_router_kwargs())  # as the frontend builds it

    # argparse has no public flag -> dest lookup; Dynamo's own help code reads `_actions` too.
    dest = {flag: action.dest for action in parser._actions for flag in action.option_strings}
    values: dict[str, Any] = {}
    for rule in FLAG_TABLE:
        if rule.field in _KV_ROUTER_ATTR:
            value = getattr(kv_router, _KV_ROUTER_ATTR[rule.field])
        else:
            value = getattr(config, dest[rule.flag])
        if value is not None:
            values[rule.field] = value
    router = RouterConfig.model_validate(values)
    return tuple((field, getattr(router, field)) for field in values)
