"""Deployments a study can configure: the local Dynamo stack, an external one, user commands.

`DeploymentSpec` is the `deployment:` section of study.yaml; `make_deployment(spec)` (from
`factory`, beside the implementations) builds the `Deployment`. `RouterConfig` holds the router
knobs; `router_flags` maps them to frontend flags; `knob_used_in` / `fields_used_in` say which
router modes use each knob; `dynamo_router_defaults` reads the installed Dynamo's defaults.

The spec-level names (pure) are imported here; the deployments, `make_deployment`,
`dynamo_router_defaults` and `ensure_tiny_model` (modules that do I/O) on first use, so
importing the package or a spec-level module (the study file's schema imports
`dynamo_tune.deploy.spec`) loads no implementation: no `LocalStack`, no process management.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dynamo_tune.deploy.base import AppliedConfig, Deployment, Endpoints
from dynamo_tune.deploy.router import RouterConfig, RouterMode
from dynamo_tune.deploy.router_flags import fields_used_in, knob_used_in, router_flags
from dynamo_tune.deploy.spec import (
    AnyDeploymentSpec,
    CommandDeploymentSpec,
    DeploymentSpec,
    ExternalDeploymentSpec,
    FrontendBuckets,
    LocalDeploymentSpec,
    MockerSpec,
)

if TYPE_CHECKING:
    from dynamo_tune.deploy.command import CommandDeployment
    from dynamo_tune.deploy.dynamo_defaults import dynamo_router_defaults
    from dynamo_tune.deploy.external import ExternalDeployment
    from dynamo_tune.deploy.factory import make_deployment
    from dynamo_tune.deploy.local import LocalStack
    from dynamo_tune.deploy.tiny_model import ensure_tiny_model

_DOES_IO = {
    "CommandDeployment": "command",
    "ExternalDeployment": "external",
    "LocalStack": "local",
    "dynamo_router_defaults": "dynamo_defaults",
    "ensure_tiny_model": "tiny_model",
    "make_deployment": "factory",
}
"""Public name -> the module (under `dynamo_tune.deploy`) it lives in, for the names whose
modules do I/O (the deployments, their factory, Dynamo's defaults, the tiny model): imported
on first use by `__getattr__`."""

__all__ = [
    "AnyDeploymentSpec",
    "AppliedConfig",
    "CommandDeployment",
    "CommandDeploymentSpec",
    "Deployment",
    "DeploymentSpec",
    "Endpoints",
    "ExternalDeployment",
    "ExternalDeploymentSpec",
    "FrontendBuckets",
    "LocalDeploymentSpec",
    "LocalStack",
    "MockerSpec",
    "RouterConfig",
    "RouterMode",
    "dynamo_router_defaults",
    "ensure_tiny_model",
    "fields_used_in",
    "knob_used_in",
    "make_deployment",
    "router_flags",
]


def __getattr__(name: str) -> Any:
    if name not in _DOES_IO:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_DOES_IO[name]}"), name)
