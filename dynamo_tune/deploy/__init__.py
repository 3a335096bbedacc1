"""Deployments a study can configure: the local Dynamo stack, an external one, user commands.

`DeploymentSpec` is the `deployment:` section of study.yaml; `make_deployment(spec)` (from
`factory`, beside the implementations) builds the `Deployment`. `RouterConfig` holds the router
knobs; `router_flags` maps them to frontend flags; `knob_used_in` / `fields_used_in` say which
router modes use each knob; `dynamo_router_defaults` reads the installed Dynamo's defaults.
"""

from dynamo_tune.deploy.base import AppliedConfig, Deployment, Endpoints
from dynamo_tune.deploy.command import CommandDeployment
from dynamo_tune.deploy.dynamo_defaults import dynamo_router_defaults
from dynamo_tune.deploy.external import ExternalDeployment
from dynamo_tune.deploy.factory import make_deployment
from dynamo_tune.deploy.local import LocalStack
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
from dynamo_tune.deploy.tiny_model import ensure_tiny_model

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
