"""External command workload: real child processes, no shell, templates checked on load."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import WorkloadError
from dynamo_tune.workload import CommandWorkloadSpec, PrefixHints, make_workload

ENDPOINTS = Endpoints(frontend_url="http://127.0.0.1:8123", model="tiny model")


def command(*argv: str, **extra: object) -> CommandWorkloadSpec:
    return CommandWorkloadSpec.model_validate({"kind": "command", "argv": list(argv), **extra})


async def test_window_is_the_program_run_and_arguments_arrive_verbatim(tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    script = (
        "import sys, time; time.sleep(0.3); open(sys.argv[1], 'w').write('|'.join(sys.argv[2:]))"
    )
    spec = command(
        sys.executable, "-c", script, str(out), "--url={frontend_url}", "{model}", "$HOME; `x` *"
    )
    before = time.time()
    report = await make_workload(spec, block_size=16).run(ENDPOINTS, PrefixHints())
    after = time.time()
    assert before <= report.window_start < report.window_end <= after
    assert report.window_end - report.window_start >= 0.3
    assert out.read_text() == "--url=http://127.0.0.1:8123|tiny model|$HOME; `x` *"


async def test_nonzero_exit_fails_with_the_stderr_tail() -> None:
    # `{{i}}`: the argv is a template, so a literal brace is doubled.
    script = "import sys; [print(f'line {{i}}', file=sys.stderr) for i in range(50)]; sys.exit(3)"
    with pytest.raises(
        WorkloadError, match=r"exited with code 3; stderr tail:\n(.|\n)*line 49$"
    ) as exc:
        await make_workload(command(sys.executable, "-c", script), block_size=16).run(
            ENDPOINTS, PrefixHints()
        )
    assert "line 29" not in str(exc.value)  # only the tail


async def test_missing_program_and_timeout_are_workload_errors() -> None:
    with pytest.raises(WorkloadError, match="^workload: cannot start '/nonexistent/aiperf'"):
        await make_workload(command("/nonexistent/aiperf"), block_size=16).run(
            ENDPOINTS, PrefixHints()
        )
    slow = command(sys.executable, "-c", "import time; time.sleep(30)", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(WorkloadError, match="did not finish within 0.3 s"):
        await make_workload(slow, block_size=16).run(ENDPOINTS, PrefixHints())
    assert time.monotonic() - started < 5


async def test_literal_braces_are_escaped_by_doubling(tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    script = "import sys; open(sys.argv[1], 'w').write('|'.join(sys.argv[2:]))"
    spec = command(sys.executable, "-c", script, str(out), '{{"model": "{model}"}}')
    await make_workload(spec, block_size=16).run(ENDPOINTS, PrefixHints())
    assert out.read_text() == '{"model": "tiny model"}'


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            "--url={frontend_ur}",
            "workload.argv[1]: unknown placeholder {frontend_ur} in '--url={frontend_ur}'; "
            "known: {frontend_url}, {model} (write {{ and }} for a literal brace)",
        ),
        ('{"a": 1}', 'workload.argv[1]: unknown placeholder {"a"} in \'{"a": 1}\''),
        ("{model!r}", "workload.argv[1]: '{model!r}': conversions (!r) are not allowed"),
    ],
)
def test_a_template_mistake_is_a_validation_error(arg: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        command("aiperf", arg)
    assert message in str(exc.value)
