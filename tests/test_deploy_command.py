"""The `command` deployment: argv templates reach real programs verbatim, never via a shell."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from dynamo_tune.deploy.command import CommandDeployment, run_step
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import CommandDeploymentSpec
from dynamo_tune.deploy.templates import render
from dynamo_tune.errors import DeploymentError, SpecError

NASTY = "a b; touch {pwned} && echo $(id) `id` 'sq' \"dq\" | cat > /dev/null & $HOME *"

# A program that records its arguments (and pid) as JSON, then exits with $EXIT_CODE.
RECORDER = """\
import json, os, sys
out = os.environ["RECORD_TO"]
with open(out, "a") as fh:
    fh.write(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:]}) + "\\n")
sys.stderr.write("line one\\n" + os.environ.get("STDERR_TEXT", "") + "\\n")
if os.environ.get("SLEEP"):
    import time; time.sleep(float(os.environ["SLEEP"]))
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    return script


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_render_substitutes_per_argument() -> None:
    router = RouterConfig(temperature=0.5, mode="kv", queue_policy="wspt")
    argv = render(
        ["prog", "--t={router.temperature}", "{router.mode}-{router.queue_policy}", "{{x}}"],
        router,
        {"frontend_url": "http://h", "model": "m", "run_dir": "/r"},
        where="apply",
    )
    assert argv == ["prog", "--t=0.5", "kv-wspt", "{x}"]


def test_render_expands_router_flags_and_formats() -> None:
    router = RouterConfig(temperature=0.125, mode="kv")
    argv = render(["go", "{router_flags}", "{router.temperature:.2f}"], router, {}, where="apply")
    assert argv == ["go", "--router-mode", "kv", "--router-temperature", "0.125", "0.12"]


def test_render_refuses_an_unset_value() -> None:
    message = (
        "apply[1]: {router.temperature} is unset (None) in '{router.temperature}'; "
        "set router.temperature in deployment.router or in the search space"
    )
    with pytest.raises(SpecError) as exc:
        render(["x", "{router.temperature}"], RouterConfig(), {}, where="apply")
    assert str(exc.value) == message


@pytest.mark.parametrize("bad", ["{router.temp}", "{nope}", "{model!r}", "{unclosed"])
def test_spec_rejects_bad_templates(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"deployment\.apply\[1\]: "):
        CommandDeploymentSpec(
            kind="command",
            apply=["prog", bad],
            ready_url="http://127.0.0.1:1/health",
            frontend_url="http://127.0.0.1:1",
            model="m",
        )


async def test_metacharacters_reach_the_program_verbatim(recorder: Path, tmp_path: Path) -> None:
    out, pwned = tmp_path / "argv.jsonl", tmp_path / "pwned"
    nasty = NASTY.replace("{pwned}", str(pwned))
    model = "my model; rm -rf / $(touch " + str(pwned) + ")"
    template = [sys.executable, str(recorder), nasty.replace("{", "{{").replace("}", "}}"),
                "--model", "{model}", "{router.temperature}", "x {router.mode} y"]  # fmt: skip
    argv = render(template, RouterConfig(temperature=0.5), {"model": model}, where="apply")
    env = {**os.environ, "RECORD_TO": str(out)}
    await run_step(argv, tmp_path / "logs", "apply", 30.0, env, None)
    assert records(out)[0]["argv"] == [nasty, "--model", model, "0.5", "x kv y"]
    assert not pwned.exists()


async def test_nonzero_exit_fails_with_stderr_tail(recorder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "RECORD_TO": str(tmp_path / "a.jsonl"), "EXIT_CODE": "3",
           "STDERR_TEXT": "boom: temperature 9 is too hot"}  # fmt: skip
    tail = "line one\nboom: temperature 9 is too hot"
    with pytest.raises(
        DeploymentError, match=rf"^deployment\.apply: .* exited with code 3; stderr tail:\n{tail}$"
    ):
        await run_step([sys.executable, str(recorder)], tmp_path, "apply", 30.0, env, None)


async def test_timeout_kills_the_command(recorder: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    env = {**os.environ, "RECORD_TO": str(out), "SLEEP": "30"}
    with pytest.raises(DeploymentError, match="^deployment.apply: .* did not finish within 0.5 s"):
        await run_step([sys.executable, str(recorder)], tmp_path, "apply", 0.5, env, None)
    pid = int(str(records(out)[0]["pid"]))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_missing_program_is_a_deployment_error(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="^deployment.start: cannot start"):
        await run_step([str(tmp_path / "nope")], tmp_path, "start", 5.0, dict(os.environ), None)


@pytest.mark.integration
async def test_lifecycle_against_a_real_frontend(
    local_stack: LocalStack, recorder: Path, tmp_path: Path
) -> None:
    """start/apply/reset/stop run in order; readiness is checked on a real frontend."""
    out = tmp_path / "calls.jsonl"
    ep = local_stack.endpoints()
    prog = [sys.executable, str(recorder)]
    spec = CommandDeploymentSpec(
        kind="command",
        start=[*prog, "start", "{frontend_url}"],
        apply=[*prog, "apply", "--router-temperature", "{router.temperature}", "{router_flags}"],
        reset=[*prog, "reset"],
        stop=[*prog, "stop"],
        ready_url=ep.frontend_url + "/health",
        frontend_url=ep.frontend_url,
        model=ep.model,
        metrics_urls=ep.metrics_urls,
        run_dir=tmp_path / "run",
        env={"RECORD_TO": str(out)},
    )
    deployment = CommandDeployment(spec)
    await deployment.start()
    applied = await deployment.apply(RouterConfig(temperature=0.5))
    await deployment.reset()
    await deployment.stop()
    calls = [r["argv"] for r in records(out)]
    assert calls == [
        ["start", ep.frontend_url],
        [
            "apply",
            "--router-temperature",
            "0.5",
            "--router-mode",
            "kv",
            "--router-temperature",
            "0.5",
        ],
        ["reset"],
        ["stop"],
    ]
    assert applied.restarted == ["apply"] and applied.router.temperature == 0.5
    assert deployment.endpoints().metrics_urls == ep.metrics_urls


async def test_not_ready_url_fails_in_time(tmp_path: Path) -> None:
    from dynamo_tune.net import free_port, loopback_url

    url = loopback_url(free_port())  # nothing listens there
    spec = CommandDeploymentSpec(kind="command", ready_url=url + "/health", frontend_url=url,
                                 model="m", run_dir=tmp_path)  # fmt: skip
    with pytest.raises(DeploymentError, match="not ready after 0.3 s"):
        await CommandDeployment(spec).wait_ready(0.3)
