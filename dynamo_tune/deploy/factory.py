"""Builds the `Deployment` a `deployment:` section describes. Does I/O: only constructors'.

Nothing is started; the command deployment's constructor makes its run dir. The factory
lives beside the implementations it picks from, so `deploy/spec.py` imports none of them.
"""

from __future__ import annotations

from dynamo_tune.deploy.base import Deployment
from dynamo_tune.deploy.command import CommandDeployment
from dynamo_tune.deploy.external import ExternalDeployment
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.spec import (
    AnyDeploymentSpec,
    CommandDeploymentSpec,
    ExternalDeploymentSpec,
    LocalDeploymentSpec,
)


def make_deployment(spec: AnyDeploymentSpec) -> Deployment:
    """The `Deployment` for `spec` (nothing is started yet)."""
    match spec:
        case LocalDeploymentSpec():
            return LocalStack(spec)
        case ExternalDeploymentSpec():
            return ExternalDeployment(spec)
        case CommandDeploymentSpec():
            return CommandDeployment(spec)
    raise TypeError(f"unknown deployment spec {spec!r}")  # pragma: no cover
