"""The `deployment:` schema, make_deployment, and the local stack's env/argv (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from dynamo_tune.deploy import (
    CommandDeploymentSpec,
    Deployment,
    DeploymentSpec,
    ExternalDeploymentSpec,
    LocalDeploymentSpec,
    RouterConfig,
    make_deployment,
)
from dynamo_tune.deploy.command import CommandDeployment
from dynamo_tune.deploy.external import ExternalDeployment
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.local_commands import (
    LOOPBACK_HOST_VARS,
    dynamo_env,
    frontend_argv,
    frontend_env,
    worker_argv,
    worker_env,
)
from dynamo_tune.deploy.spec import FrontendBuckets, MockerSpec

ADAPTER: TypeAdapter[LocalDeploymentSpec | ExternalDeploymentSpec | CommandDeploymentSpec] = (
    TypeAdapter(DeploymentSpec)
)

URLS = {"frontend_url": "http://127.0.0.1:8000", "model": "m"}


def test_kind_defaults_to_the_local_stack() -> None:
    spec = ADAPTER.validate_python({})
    assert isinstance(spec, LocalDeploymentSpec)
    assert (spec.workers, spec.isolation, spec.prometheus, spec.block_size) == (
        2,
        "restart",
        "auto",
        16,
    )


def test_study_yaml_section_parses() -> None:
    doc = yaml.safe_load(
        """
        kind: local
        workers: 4
        mocker: {speedup_ratio: 1, block_size: 32, num_gpu_blocks: 1024}
        router: {mode: kv, overlap_score_credit: 2.0}
        prometheus: false
        """
    )
    spec = ADAPTER.validate_python(doc)
    assert isinstance(spec, LocalDeploymentSpec)
    assert spec.block_size == 32 and spec.router.overlap_score_credit == 2.0
    assert spec.model_copy(update={"router": RouterConfig(block_size=64)}).block_size == 64


@pytest.mark.parametrize(
    ("doc", "named"),
    [
        ({"kind": "cluster"}, "cluster"),
        ({"worker": 2}, "worker"),
        ({"workers": 0}, "workers"),
        ({"mocker": {"speedup": 2}}, "speedup"),
        ({"mocker": {"num_gpu_blocks": 0}}, "num_gpu_blocks"),
        ({"isolation": "sometimes"}, "isolation"),
        ({"prometheus": "maybe"}, "prometheus"),
        ({"router": {"temperature": -1}}, "temperature"),
        ({"buckets": {"ttft_min": 5, "ttft_max": 1}}, "ttft_min < ttft_max"),
        ({"buckets": {"itl_count": 513}}, "itl_count"),
        ({"kind": "external", "model": "m"}, "frontend_url"),
        ({"kind": "external", **URLS, "frontend_url": "127.0.0.1:8000"}, "frontend_url"),
        ({"kind": "external", **URLS, "start": ["x"]}, "start"),
        ({"kind": "command", **URLS}, "ready_url"),
        ({"kind": "command", **URLS, "ready_url": "http://x/h", "apply": []}, "apply"),
    ],
)
def test_bad_sections_name_the_problem(doc: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        ADAPTER.validate_python(doc)


def test_make_deployment_builds_each_kind(tmp_path: Path) -> None:
    local = make_deployment(LocalDeploymentSpec())
    external = make_deployment(ExternalDeploymentSpec(kind="external", **URLS))
    command = make_deployment(
        CommandDeploymentSpec(kind="command", ready_url="http://x/h", run_dir=tmp_path, **URLS)
    )
    assert isinstance(local, LocalStack)
    assert isinstance(external, ExternalDeployment)
    assert isinstance(command, CommandDeployment)
    assert all(isinstance(d, Deployment) for d in (local, external, command))


def test_dynamo_env_is_loopback_only_and_private(tmp_path: Path) -> None:
    inherited = {"PATH": "/bin", "DYN_ROUTER_TEMPERATURE": "9", "ETCD_ENDPOINTS": "x:1"}
    env = dynamo_env(inherited, tmp_path / "discovery")
    assert env["PATH"] == "/bin"
    assert "DYN_ROUTER_TEMPERATURE" not in env and "ETCD_ENDPOINTS" not in env
    assert all(env[name] == "127.0.0.1" for name in LOOPBACK_HOST_VARS)
    assert env["DYN_DISCOVERY_BACKEND"] == "file"
    assert env["DYN_FILE_KV"] == str(tmp_path / "discovery")
    assert env["HF_HUB_OFFLINE"] == "1"


def test_worker_port_must_fit_dynamos_i16() -> None:
    assert worker_env({}, 32767)["DYN_SYSTEM_PORT"] == "32767"
    with pytest.raises(ValueError, match="32767"):
        worker_env({}, 32768)


def test_worker_and_frontend_agree_on_block_size(tmp_path: Path) -> None:
    mocker = MockerSpec(
        speedup_ratio=2.5,
        num_gpu_blocks=100,
        max_num_seqs=8,
        enable_prefix_caching=False,
        extra_args=["--startup-time", "0"],
    )
    w = worker_argv("py", tmp_path, "tiny", mocker, block_size=32)
    assert w[:3] == ["py", "-m", "dynamo.mocker"]
    assert w[w.index("--block-size") + 1] == "32"
    assert w[w.index("--speedup-ratio") + 1] == "2.5"
    assert w[w.index("--num-gpu-blocks-override") + 1] == "100"
    assert w[w.index("--max-num-seqs") + 1] == "8"
    assert "--no-enable-prefix-caching" in w and w[-2:] == ["--startup-time", "0"]
    f = frontend_argv("py", 8123, RouterConfig(mode="kv", block_size=None), block_size=32)
    assert f[f.index("--http-host") + 1] == "127.0.0.1"
    assert f[f.index("--http-port") + 1] == "8123"
    assert f[f.index("--kv-cache-block-size") + 1] == "32"


def test_frontend_env_sets_the_bucket_layout() -> None:
    env = frontend_env({"A": "1"}, FrontendBuckets(ttft_count=200))
    assert env["A"] == "1" and env["DYN_METRICS_TTFT_COUNT"] == "200"
    assert float(env["DYN_METRICS_ITL_MIN"]) == 0.0005 and float(env["DYN_METRICS_TTFT_MAX"]) == 60


async def test_local_stack_refuses_calls_before_start() -> None:
    from dynamo_tune.errors import DeploymentError

    stack = LocalStack(LocalDeploymentSpec())
    for call in (stack.reset(), stack.wait_ready(1.0), stack.apply(RouterConfig())):
        with pytest.raises(DeploymentError, match="not started"):
            await call
    with pytest.raises(DeploymentError, match="not started"):
        stack.endpoints()
    await stack.stop()  # stopping a stack that never started is fine
