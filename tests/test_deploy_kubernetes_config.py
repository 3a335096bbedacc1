"""configs/deployment-kubernetes.yaml: its rendered argv, and what configs/kubectl_dgd.py sends.

The helper runs against a fake `kubectl` on PATH that records its arguments and serves
Dynamo 1.6.1's own DGD template (shipped in the ai-dynamo wheel), so the JSON patch is
checked against the real v1beta1 shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from dynamo_tune.deploy import DeploymentSpec
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import CommandDeploymentSpec
from dynamo_tune.deploy.templates import render
from dynamo_tune.study.spec.schema import MetricsSpec

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "deployment-kubernetes.yaml"
ROUTER = RouterConfig(mode="kv", temperature=0.5, prefill_load_scale=4.0)
ROUTER_FLAGS = [
    "--router-mode", "kv", "--router-prefill-load-scale", "4.0", "--router-temperature", "0.5",
]  # fmt: skip
COMMON = ["--name", "my-dgd", "--namespace", "dynamo"]

FAKE_KUBECTL = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if "get" in args:
    sys.stdout.write(open(os.environ["FAKE_KUBECTL_DGD"]).read())
elif "patch" in args:
    sys.stdout.write("7")
elif args[2:4] == ["wait", "pod"]:
    marker = os.environ["FAKE_KUBECTL_LOG"] + ".waited"
    if not os.path.exists(marker):  # the replacement pods do not exist yet
        open(marker, "w").close()
        sys.stderr.write("error: no matching resources found\\n")
        sys.exit(1)
"""


def spec() -> CommandDeploymentSpec:
    loaded = TypeAdapter(DeploymentSpec).validate_python(yaml.safe_load(CONFIG.read_text()))
    assert isinstance(loaded, CommandDeploymentSpec)
    return loaded


def rendered(step: str) -> list[str]:
    plain = {"frontend_url": "http://127.0.0.1:8000", "model": "m", "run_dir": "/tmp/r"}
    template = getattr(spec(), step)
    assert template is not None
    return render(template, ROUTER, plain, where=f"deployment.{step}")


def dynamo_dgd() -> dict[str, Any]:
    """Dynamo 1.6.1's vllm/agg DGD, with a Planner component and a sidecar put first, so the
    Frontend and its `main` container are at index 1."""
    template = files("dynamo.profiler").joinpath("templates", "dgd", "vllm", "agg.yaml")
    dgd: dict[str, Any] = yaml.safe_load(template.read_text())
    frontend = dgd["spec"]["components"][0]
    assert frontend["name"] == "Frontend" and frontend["type"] == "frontend"
    main = frontend["podTemplate"]["spec"]["containers"][0]
    assert main["name"] == "main" and main["args"] == ["-m", "dynamo.frontend"]
    frontend["podTemplate"]["spec"]["containers"].insert(0, {"name": "proxy", "image": "p"})
    dgd["spec"]["components"].insert(0, {"name": "Planner", "type": "planner"})
    return dgd


def run_helper(argv: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list]:
    """Run the rendered argv (its `python3` replaced by this interpreter) with the fake
    kubectl first on PATH; (the result, kubectl's recorded argument lists)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
    kubectl.chmod(0o755)
    (tmp_path / "dgd.json").write_text(json.dumps(dynamo_dgd()))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_KUBECTL_LOG": str(tmp_path / "kubectl.log"),
        "FAKE_KUBECTL_DGD": str(tmp_path / "dgd.json"),
    }
    assert argv[0] == "python3"
    done = subprocess.run(
        [sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    log = tmp_path / "kubectl.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def test_apply_and_reset_render_to_these_argvs() -> None:
    helper = ["python3", "configs/kubectl_dgd.py"]
    assert rendered("apply") == [
        *helper, "set-frontend-args", *COMMON, "--component", "Frontend", "--timeout", "400s",
        "--", "-m", "dynamo.frontend", *ROUTER_FLAGS,
    ]  # fmt: skip
    assert rendered("reset") == [
        *helper, "restart-workers", *COMMON, "--component", "worker", "--timeout", "400s",
    ]  # fmt: skip
    assert spec().start is None and spec().stop is None
    assert spec().prometheus_url is not None and spec().prometheus_url.startswith("https://")


def test_apply_sends_one_guarded_json_patch_and_waits_for_the_rollout(tmp_path: Path) -> None:
    done, calls = run_helper(rendered("apply"), tmp_path)
    assert done.returncode == 0, done.stderr
    ns = ["--namespace", "dynamo"]
    dgd = "dynamographdeployment"
    assert calls[0] == [*ns, "get", dgd, "my-dgd", "--output=json"]
    assert calls[1][:5] == [*ns, "patch", dgd, "my-dgd"]
    assert calls[1][5] == "--type=json"
    assert calls[1][7] == "--output=jsonpath={.metadata.generation}"
    patch = json.loads(calls[1][6].removeprefix("--patch="))
    main = "/spec/components/1/podTemplate/spec/containers/1"
    assert patch == [
        {"op": "test", "path": "/spec/components/1/name", "value": "Frontend"},
        {"op": "test", "path": f"{main}/name", "value": "main"},
        {"op": "add", "path": f"{main}/args", "value": ["-m", "dynamo.frontend", *ROUTER_FLAGS]},
    ]
    assert calls[2:] == [
        [*ns, "wait", f"{dgd}/my-dgd", "--for=jsonpath={.status.observedGeneration}=7",
         "--timeout=400s"],
        [*ns, "wait", f"{dgd}/my-dgd", "--for=condition=Ready", "--timeout=400s"],
    ]  # fmt: skip


def test_reset_deletes_worker_pods_and_waits_for_their_replacements(tmp_path: Path) -> None:
    done, calls = run_helper(rendered("reset"), tmp_path)
    assert done.returncode == 0, done.stderr
    selector = (
        "--selector=nvidia.com/dynamo-graph-deployment-name=my-dgd,"
        "nvidia.com/dynamo-component in (worker)"
    )
    ns = ["--namespace", "dynamo"]
    wait = [*ns, "wait", "pod", selector, "--for=condition=Ready", "--timeout=400s"]
    assert calls == [
        [*ns, "delete", "pod", selector, "--wait=true", "--timeout=400s"],
        wait,  # "no matching resources": the replacements are not created yet
        wait,
    ]


def test_apply_to_a_missing_component_fails_without_patching(tmp_path: Path) -> None:
    argv = rendered("apply")
    argv[argv.index("Frontend")] = "Router"
    done, calls = run_helper(argv, tmp_path)
    assert done.returncode == 1
    assert "no component 'Router' in spec.components ['Planner', 'Frontend', 'worker']" in (
        done.stderr
    )
    assert [call[2] for call in calls] == ["get"]


def test_commented_study_metrics_section_is_valid() -> None:
    lines = CONFIG.read_text().splitlines()
    start = lines.index("# --- study metrics section ---") + 1
    block = "\n".join(
        line.removeprefix("# ") for line in lines[start : lines.index("# --- end ---")]
    )
    metrics = MetricsSpec.model_validate(yaml.safe_load(block)["metrics"])
    assert metrics.backend == "prometheus"
    assert metrics.bearer_token_env == "PROM_TOKEN"
    assert metrics.prometheus_url is None  # the deployment's prometheus_url is used


def test_apply_waits_fit_in_the_command_timeout() -> None:
    argv = rendered("apply")
    seconds = int(argv[argv.index("--timeout") + 1].removesuffix("s"))
    assert 2 * seconds < spec().command_timeout_s  # apply runs two `kubectl wait`s
