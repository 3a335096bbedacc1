"""One template syntax for deployment and workload commands, with the same error messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dynamo_tune import argv_template
from dynamo_tune.deploy import CommandDeploymentSpec
from dynamo_tune.errors import SpecError
from dynamo_tune.workload import CommandWorkloadSpec


def test_values_specs_escapes_and_splices() -> None:
    argv = argv_template.render(
        ["prog", "--name={a}", "{a}-{b}", "{{literal}}", "{n:.2f}", "{n}", "{flags}"],
        {"a": "x y; $(z)", "b": "B", "n": 0.126},
        "cmd",
        splices={"flags": ["--one", "1", "--two"]},
    )
    assert argv == [
        "prog",
        "--name=x y; $(z)",
        "x y; $(z)-B",
        "{literal}",
        "0.13",
        "0.126",
        "--one",
        "1",
        "--two",
    ]


def test_convert_writes_values_without_a_spec() -> None:
    argv = argv_template.render(["{n}", "{n:.1f}"], {"n": 0.25}, "cmd", convert=lambda v: "<v>")
    assert argv == ["<v>", "0.2"]


def test_an_empty_splice_removes_its_argument() -> None:
    assert argv_template.render(["a", "{flags}", "b"], {}, "cmd", splices={"flags": []}) == [
        "a",
        "b",
    ]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            "--x={nope}",
            "cmd[1]: unknown placeholder {nope} in '--x={nope}'; known: {a}, {b}, {flags} "
            "(write {{ and }} for a literal brace)",
        ),
        (
            "x{flags}",  # a splice only stands alone
            "cmd[1]: unknown placeholder {flags} in 'x{flags}'; known: {a}, {b}, {flags} "
            "(write {{ and }} for a literal brace)",
        ),
        ("{a!r}", "cmd[1]: '{a!r}': conversions (!r) are not allowed"),
    ],
)
def test_check_names_the_argument_and_the_known_placeholders(arg: str, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        argv_template.check(["prog", arg], "cmd", ["a", "b"], splices=["flags"])
    assert str(exc.value) == message


def test_bad_syntax_names_the_argument() -> None:
    with pytest.raises(SpecError, match=r"^cmd\[2\]: bad template argument '\{unclosed': "):
        argv_template.check(["prog", "ok", "{unclosed"], "cmd", ["a"])


def test_render_reports_an_unset_value_and_an_unusable_spec() -> None:
    with pytest.raises(SpecError) as exc:
        argv_template.render(["p", "{a}"], {"a": None}, "cmd", unset_hint="set {name} somewhere")
    assert str(exc.value) == "cmd[1]: {a} is unset (None) in '{a}'; set a somewhere"
    with pytest.raises(SpecError, match=r"^cmd\[0\]: cannot write 'text' as \{a:d\}"):
        argv_template.render(["{a:d}"], {"a": "text"}, "cmd")


def deployment_error(arg: str) -> str:
    with pytest.raises(ValidationError) as exc:
        CommandDeploymentSpec(
            kind="command",
            apply=["prog", arg],
            ready_url="http://127.0.0.1:1/health",
            frontend_url="http://127.0.0.1:1",
            model="m",
        )
    return str(exc.value.errors()[0]["msg"]).removeprefix("Value error, ")


def workload_error(arg: str) -> str:
    with pytest.raises(ValidationError) as exc:
        CommandWorkloadSpec(kind="command", argv=["prog", arg])
    return str(exc.value.errors()[0]["msg"]).removeprefix("Value error, ")


@pytest.mark.parametrize("arg", ["{unclosed", "closed}", "{model!r}", "--m={model!s:>4}"])
def test_deploy_and_workload_give_the_same_syntax_errors(arg: str) -> None:
    deploy, workload = deployment_error(arg), workload_error(arg)
    assert deploy.startswith("deployment.apply[1]: ")
    assert workload.startswith("workload.argv[1]: ")
    assert deploy.removeprefix("deployment.apply[1]: ") == workload.removeprefix(
        "workload.argv[1]: "
    )


def test_deploy_and_workload_name_an_unknown_placeholder_alike() -> None:
    deploy, workload = deployment_error("--m={modle}"), workload_error("--m={modle}")
    same = "unknown placeholder {modle} in '--m={modle}'; known: {frontend_url}, {model}"
    assert deploy.startswith(f"deployment.apply[1]: {same}, {{run_dir}}, {{router.mode}}, ")
    assert deploy.endswith(", {router_flags} (write {{ and }} for a literal brace)")
    assert workload == f"workload.argv[1]: {same} (write {{{{ and }}}} for a literal brace)"
