"""The `external` deployment: fixed router, readiness over URLs."""

from __future__ import annotations

import pytest

from dynamo_tune.deploy.external import ExternalDeployment, changed_fields
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import ExternalDeploymentSpec
from dynamo_tune.errors import DeploymentError, SpecError
from dynamo_tune.net import free_port, loopback_url


def spec(url: str = "http://127.0.0.1:9", **fields: object) -> ExternalDeploymentSpec:
    return ExternalDeploymentSpec(kind="external", frontend_url=url, model="m", **fields)  # type: ignore[arg-type]


async def test_router_parameter_is_refused_by_name() -> None:
    deployment = ExternalDeployment(spec())
    with pytest.raises(SpecError, match=r"router\.temperature=0\.5") as exc:
        await deployment.apply(RouterConfig(temperature=0.5))
    assert "external deployment cannot set router parameters" in str(exc.value)


async def test_every_changed_parameter_is_named() -> None:
    deployment = ExternalDeployment(spec(router=RouterConfig(mode="kv", temperature=0.1)))
    with pytest.raises(SpecError, match=r"router\.mode='round-robin'.*router\.block_size=64"):
        await deployment.apply(RouterConfig(mode="round-robin", temperature=0.1, block_size=64))


async def test_the_fixed_router_itself_is_accepted() -> None:
    fixed = RouterConfig(mode="kv", overlap_score_credit=2.0)
    applied = await ExternalDeployment(spec(router=fixed)).apply(fixed)
    assert applied.router == fixed and applied.restarted == []


def test_changed_fields_is_pure_and_exact() -> None:
    assert changed_fields(RouterConfig(), RouterConfig()) == {}
    assert changed_fields(RouterConfig(), RouterConfig(kv_events=False)) == {"kv_events": False}


def test_endpoints_and_block_size() -> None:
    s = spec("http://127.0.0.1:8000/", metrics_urls=["http://127.0.0.1:8000/metrics"])
    ep = ExternalDeployment(s).endpoints()
    assert ep.frontend_url == "http://127.0.0.1:8000" and ep.metrics_urls == s.metrics_urls
    assert s.block_size == 16
    assert spec(router=RouterConfig(block_size=64)).block_size == 64


async def test_unreachable_frontend_is_a_deployment_error() -> None:
    url = loopback_url(free_port())
    with pytest.raises(DeploymentError, match="does not serve model 'm'"):
        await ExternalDeployment(spec(url)).wait_ready(0.3)


@pytest.mark.integration
async def test_ready_against_a_real_frontend(local_stack: LocalStack) -> None:
    ep = local_stack.endpoints()
    deployment = ExternalDeployment(
        ExternalDeploymentSpec(kind="external", frontend_url=ep.frontend_url, model=ep.model)
    )
    await deployment.start()
    await deployment.wait_ready(5.0)
    wrong = ExternalDeployment(
        ExternalDeploymentSpec(kind="external", frontend_url=ep.frontend_url, model="other")
    )
    with pytest.raises(DeploymentError, match=r"models \['tiny'\]"):
        await wrong.wait_ready(0.5)
