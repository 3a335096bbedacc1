"""`PrometheusAccess` and its uses, without a server: the study-file syntax, secrets refused
in files and URLs, secrets read only when a client is built (errors name the variable or
file, never the value), and a 401/403 turned into one reason (`httpx.MockTransport`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import write_study
from pydantic import ValidationError

from dynamo_tune.cli.main import main
from dynamo_tune.errors import SpecError
from dynamo_tune.metrics import (
    BasicAuthSpec,
    PrometheusAccess,
    PrometheusAPI,
    QueryFailed,
    TlsSpec,
    new_client,
)
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import MetricsSpec

SECRET = "hunter2-literal-7Qx"


def test_study_file_syntax(tmp_path: Path) -> None:
    metrics = {
        "prometheus_url": "https://prom.example:9090",
        "bearer_token_env": "PROM_TOKEN",
        "tls": {"ca_file": "ca.pem"},
    }
    spec = load_spec(write_study(tmp_path, {"metrics": metrics})).spec
    assert spec.metrics.backend == "auto"
    assert spec.metrics.access() == PrometheusAccess(
        bearer_token_env="PROM_TOKEN", tls=TlsSpec(ca_file=Path("ca.pem"))
    )
    basic = {"basic_auth": {"username": "alice", "password_file": "/run/secrets/prom"}}
    spec = load_spec(write_study(tmp_path, {"metrics": basic})).spec
    assert spec.metrics.access().basic_auth == BasicAuthSpec(
        username="alice", password_file=Path("/run/secrets/prom")
    )
    assert not load_spec(write_study(tmp_path)).spec.metrics.has_settings


@pytest.mark.parametrize(
    ("metrics", "problem"),
    [
        ({"token": SECRET}, "metrics: `token`: a secret cannot be written here"),
        ({"password": SECRET}, "metrics: `password`: a secret cannot be written here"),
        (
            {"basic_auth": {"username": "alice", "password": SECRET}},
            "metrics.basic_auth: `password`: a secret cannot be written here",
        ),
        (
            {"prometheus_url": f"https://alice:{SECRET}@prom:9090"},
            "metrics.prometheus_url: remove the user:password@ part",
        ),
    ],
)
def test_a_literal_secret_in_the_study_file_is_refused_without_echo(
    tmp_path: Path, metrics: dict[str, Any], problem: str
) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_study(tmp_path, {"metrics": metrics}))
    message = str(caught.value)
    assert problem in message
    assert "environment variable or a file" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"bearer_token_env": "A", "bearer_token_file": "f"},
            "give at most one credential, but got bearer_token_env and bearer_token_file",
        ),
        (
            {"basic_auth": {"username": "u"}},
            "give exactly one of `password_env` or `password_file`",
        ),
        (
            {"basic_auth": {"username": "u", "password_env": "A", "password_file": "f"}},
            "give exactly one of `password_env` or `password_file`",
        ),
        (
            {"tls": {"ca_file": "ca.pem", "insecure_skip_verify": True}},
            "`ca_file` and `insecure_skip_verify: true` contradict each other",
        ),
        ({"bearer_token_env": "1BAD"}, "String should match pattern"),
    ],
)
def test_access_rules(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PrometheusAccess.model_validate(fields)


def test_credentials_with_the_scrape_backend_are_refused() -> None:
    with pytest.raises(ValidationError, match="credentials and tls apply to a Prometheus"):
        MetricsSpec(backend="scrape", bearer_token_env="PROM_TOKEN")


def test_secrets_are_read_when_the_client_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROM_TOKEN", raising=False)
    access = PrometheusAccess(bearer_token_env="PROM_TOKEN")  # no error yet
    with pytest.raises(SpecError) as caught:
        new_client(1.0, access)
    assert str(caught.value) == (
        "bearer_token_env: the environment variable PROM_TOKEN is not set or empty"
    )
    missing = tmp_path / "nope"
    with pytest.raises(SpecError) as caught:
        new_client(1.0, PrometheusAccess(bearer_token_file=missing))
    assert (
        str(caught.value) == f"bearer_token_file: cannot read {missing}: No such file or directory"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SpecError, match=f"basic_auth.password_file: {empty} is empty"):
        new_client(
            1.0, PrometheusAccess(basic_auth=BasicAuthSpec(username="u", password_file=empty))
        )
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" + SECRET.encode())
    with pytest.raises(SpecError) as caught:
        new_client(1.0, PrometheusAccess(bearer_token_file=binary))
    assert str(caught.value) == f"bearer_token_file: {binary} is not UTF-8 text"
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(SpecError, match=f"tls.ca_file: {not_pem} is not a PEM CA bundle"):
        PrometheusAccess(tls=TlsSpec(ca_file=not_pem)).verify()
    with pytest.raises(SpecError, match=f"tls.ca_file: cannot read {missing}"):
        PrometheusAccess(tls=TlsSpec(ca_file=missing)).verify()


def _echo_auth(request: httpx.Request) -> httpx.Response:
    """Answers like Prometheus; the data is the Authorization header it got."""
    header = request.headers.get("Authorization", "")
    return httpx.Response(200, json={"status": "success", "data": [header]})


@pytest.mark.parametrize(
    ("access", "header"),
    [
        (PrometheusAccess(bearer_token_env="PROM_TOKEN"), f"Bearer {SECRET}"),
        (
            PrometheusAccess(basic_auth=BasicAuthSpec(username="u", password_env="PROM_TOKEN")),
            # base64("u:hunter2-literal-7Qx")
            "Basic dTpodW50ZXIyLWxpdGVyYWwtN1F4",
        ),
        (PrometheusAccess(tls=TlsSpec(insecure_skip_verify=True)), ""),
    ],
)
def test_the_client_sends_the_credential(
    access: PrometheusAccess, header: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_TOKEN", SECRET)

    async def sent() -> str:
        async with new_client(5.0, access) as built:
            client = httpx.AsyncClient(transport=httpx.MockTransport(_echo_auth), auth=built.auth)
            async with client:
                response = await client.get("http://prom/api/v1/label/__name__/values")
        return str(response.json()["data"][0])

    assert asyncio.run(sent()) == header


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejection_is_one_reason_even_with_a_plain_text_body(status: int) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, text="Unauthorized\n"))

    async def ask() -> PrometheusAPI:
        async with httpx.AsyncClient(transport=transport) as client:
            api = PrometheusAPI(client, "https://prom:9090/")
            with pytest.raises(QueryFailed) as caught:
                await api.query("vector(1)")
        assert caught.value.unreachable
        return api

    api = asyncio.run(ask())
    expected = f"prometheus at https://prom:9090 rejected the credentials (HTTP {status})"
    assert api.rejection == expected


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(["metrics", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--prometheus-url", f"https://alice:{SECRET}@prom:9090"),
            "--prometheus-url: credentials in the URL are not accepted: use --basic-auth-user "
            "with --basic-auth-password-env/-file, or --bearer-token-env/-file",
        ),
        (
            ("--prometheus-url", "http://p:9090", "--basic-auth-password-env", "P"),
            "--basic-auth-password-env/-file need --basic-auth-user",
        ),
        (
            ("--prometheus-url", "http://p:9090", "--basic-auth-user", "u"),
            "--basic-auth-user: give exactly one of `password_env` or `password_file`",
        ),
        (
            ("--prometheus-url", "http://p:9090", "--ca-file", "c", "--insecure-skip-verify"),
            "--ca-file: `ca_file` and `insecure_skip_verify: true` contradict each other",
        ),
        (
            ("--scrape", "http://p:9/metrics", "--bearer-token-env", "T"),
            "credential and TLS flags apply to --prometheus-url, not --scrape",
        ),
    ],
)
def test_cli_credential_flag_errors(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, err = _cli(capsys, *args)
    assert code == 2
    assert err == f"dynamo-tune: error: {message}\n"
