"""The example files in configs/ stay valid: schemas and Dynamo's own policy-config parser."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from dynamo_tune.deploy import DeploymentSpec
from dynamo_tune.deploy.router_flags import FLAG_TABLE

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("deployment-local.yaml", "local"),
        ("deployment-external.yaml", "external"),
        ("deployment-command.yaml", "command"),
        ("deployment-kubernetes.yaml", "command"),
    ],
)
def test_deployment_examples_validate(name: str, kind: str) -> None:
    spec = TypeAdapter(DeploymentSpec).validate_python(yaml.safe_load((CONFIGS / name).read_text()))
    assert spec.kind == kind


def test_router_policy_template_is_accepted_by_dynamo() -> None:
    from dynamo.frontend.frontend_args import FrontendArgGroup, FrontendConfig

    path = CONFIGS / "router-policy.yaml"
    keys = set(yaml.safe_load(path.read_text())["router"])
    assert keys == {rule.policy_key for rule in FLAG_TABLE if rule.policy_key}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = argparse.ArgumentParser()
        FrontendArgGroup().add_arguments(parser)
        config = FrontendConfig.from_cli_args(
            parser.parse_args(["--router-policy-config", str(path)])
        )
        config.validate()
    kwargs = config.kv_router_kwargs()
    assert kwargs["use_kv_events"] is True and kwargs["router_ttl_secs"] == 120.0
