"""A protected Prometheus: basic auth over TLS (the real server's `--web.config.file`) and a
bearer token (a checking reverse proxy in front of the real server).

Right credentials collect the window; wrong or missing ones are one line, "prometheus at URL
rejected the credentials (HTTP 401)", from the backends, the collector, the CLI (exit 2),
the pre-run check (exit 2, no trial) and a trial (FAIL with that reason). A study that used
a token stores it nowhere and prints it nowhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import os
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fakes import RealClock, fake_stack, write_study
from fixtures.prometheus import SCRAPE_INTERVAL_S, DynamoExporter, wait_scraped_after
from study_helpers import open_study

from dynamo_tune.cli.main import main
from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.prometheus import (
    PrometheusServer,
    parse_rfc3339,
    prometheus_binary,
    render_config,
)
from dynamo_tune.errors import MetricsError, RunStopped
from dynamo_tune.metrics import (
    BasicAuthSpec,
    DynamoMetricsConfig,
    PrometheusAccess,
    PrometheusBackend,
    TlsSpec,
    collect_dynamo_metrics,
)
from dynamo_tune.net import LOOPBACK, free_port, loopback_url
from dynamo_tune.process import ManagedProcess
from dynamo_tune.study import run_study_file
from dynamo_tune.study.run.services import metrics_backend, preflight
from dynamo_tune.study.spec.schema import MetricsSpec
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.trial.attr_keys import TrialAttr

pytestmark = pytest.mark.integration

USER = "alice"
PASSWORD = "s3cret-basic-Zq81"
TOKEN = "tok-bearer-9f1c77e2"


def rejected(url: str, status: int = 401) -> str:
    return f"prometheus at {url} rejected the credentials (HTTP {status})"


# -- a Prometheus with basic auth and TLS -----------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A fresh CA and a server certificate for IP 127.0.0.1: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("dynamo-tune test CA"))
        .issuer_name(_name("dynamo-tune test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(LOOPBACK))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def trust(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@dataclasses.dataclass
class SecuredPrometheus:
    url: str
    ca_file: Path


def _wait_ready(url: str, ca_file: Path, process: ManagedProcess) -> None:
    deadline = time.monotonic() + 20
    with httpx.Client(verify=trust(ca_file), auth=(USER, PASSWORD), timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{process.log_tail()}")
            try:
                targets = client.get(f"{url}/api/v1/targets").json()["data"]["activeTargets"]
                if targets and all(t["health"] == "up" for t in targets):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"secured prometheus not ready:\n{process.log_tail()}")


@pytest.fixture(scope="module")
def secured_prometheus(
    dynamo_exporter: DynamoExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredPrometheus]:
    """The real Prometheus scraping the exporter, serving only HTTPS with basic auth."""
    import bcrypt  # the dev group's; imported here so collecting `-m "not integration"` needs none

    binary = prometheus_binary()
    assert binary is not None, "the `prometheus` binary is not on PATH (apt-get install it)"
    folder = tmp_path_factory.mktemp("secured-prometheus")
    ca_file, cert, key = write_tls_files(folder)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = {
        "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
        "basic_auth_users": {USER: hashed},
    }
    (folder / "web.yml").write_text(yaml.safe_dump(web))
    targets = folder / "targets.json"
    targets.write_text(f'[{{"targets": ["{dynamo_exporter.address}"]}}]')
    (folder / "prometheus.yml").write_text(render_config(targets, SCRAPE_INTERVAL_S))
    port = free_port()
    process = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--web.config.file={folder / 'web.yml'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            "--log.level=warn",
        ],
        folder / "prometheus.log",
    )
    process.start()
    try:
        url = f"https://{LOOPBACK}:{port}"
        _wait_ready(url, ca_file, process)
        yield SecuredPrometheus(url, ca_file)
    finally:
        process.stop()


def basic_access(ca_file: Path | None, password_env: str = "PROM_PASSWORD") -> PrometheusAccess:
    return PrometheusAccess(
        basic_auth=BasicAuthSpec(username=USER, password_env=password_env),
        tls=TlsSpec(ca_file=ca_file) if ca_file else None,
    )


# -- a bearer-token proxy in front of the plain Prometheus ------------------------------------


class BearerProxy:
    """127.0.0.1 HTTP proxy: forwards GETs carrying `Authorization: Bearer <token>` to
    `upstream`, answers 401 otherwise; counts both."""

    def __init__(self, upstream: str, token: str) -> None:
        self.accepted = 0
        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {token}":
                    proxy.refused += 1
                    self._answer(401, b"Unauthorized\n", "text/plain")
                    return
                proxy.accepted += 1
                answer = httpx.get(f"{upstream}{self.path}", timeout=10)
                self._answer(answer.status_code, answer.content, answer.headers["content-type"])

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, free_port()), Handler)
        self.url = loopback_url(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def bearer_proxy(prometheus: PrometheusServer) -> Iterator[BearerProxy]:
    proxy = BearerProxy(prometheus.url, TOKEN)
    try:
        yield proxy
    finally:
        proxy.stop()


def feed_window(scraped_by: str, exporter: DynamoExporter, **client: Any) -> tuple[float, float]:
    """20 requests (KVE 400/1000) inside a window both ends of which `scraped_by` scraped."""
    asyncio.run(_wait_scraped(scraped_by, time.time(), client))
    start = time.time()
    for i in range(20):
        exporter.feed(f"w{i % 2}", 0.03 + i * 0.01, [0.01, 0.02], 1000, 400)
    end = time.time()
    asyncio.run(_wait_scraped(scraped_by, end, client))
    return start, end


async def _wait_scraped(url: str, moment: float, client: dict[str, Any]) -> None:
    if not client:
        await wait_scraped_after(url, moment)
        return
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(timeout=2, **client) as http:
        while time.monotonic() < deadline:
            data = (await http.get(f"{url}/api/v1/targets")).json()["data"]["activeTargets"]
            stamps = [parse_rfc3339(t["lastScrape"]) for t in data]
            if stamps and all(stamp > moment for stamp in stamps):
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not scrape after {moment}")


# -- backends and the seed collector ----------------------------------------------------------


def test_basic_auth_over_tls_collects_the_window(
    secured_prometheus: SecuredPrometheus,
    dynamo_exporter: DynamoExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
    url, ca = secured_prometheus.url, secured_prometheus.ca_file
    start, end = feed_window(url, dynamo_exporter, verify=trust(ca), auth=(USER, PASSWORD))
    backend = PrometheusBackend(url, timeout_s=5, access=basic_access(ca))
    result = asyncio.run(backend.collect(start, end))
    assert result.reachable and result.errors == []
    assert result.get_core_metrics().get_effective_kv_efficiency() == pytest.approx(0.4)
    assert result.requests_per_minute is not None


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_wrong_or_missing_password_is_the_401_line(
    secured_prometheus: SecuredPrometheus, monkeypatch: pytest.MonkeyPatch, password: str | None
) -> None:
    monkeypatch.setenv("PROM_PASSWORD", password or "unused")
    url, ca = secured_prometheus.url, secured_prometheus.ca_file
    access = basic_access(ca) if password else PrometheusAccess(tls=TlsSpec(ca_file=ca))
    result = asyncio.run(
        PrometheusBackend(url, timeout_s=5, access=access).collect(time.time() - 5, time.time())
    )
    assert result.reachable is False
    assert result.errors == [rejected(url)]  # one reason, not one error per query
    assert result.ttft_p95 is None and result.scrape_wait_seconds is None


def test_seed_collector_uses_the_config_access(
    secured_prometheus: SecuredPrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca = secured_prometheus.url, secured_prometheus.ca_file
    config = DynamoMetricsConfig.core_metrics_only(url).model_copy(
        update={"access": basic_access(ca)}
    )
    monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
    good = asyncio.run(collect_dynamo_metrics(config))
    assert good.reachable and good.mode == "range"
    monkeypatch.setenv("PROM_PASSWORD", "wrong")
    bad = asyncio.run(collect_dynamo_metrics(config))
    assert bad.reachable is False and bad.errors == [rejected(url)]


def test_bearer_token_from_env_or_file_through_a_checking_proxy(
    bearer_proxy: BearerProxy,
    prometheus: PrometheusServer,
    dynamo_exporter: DynamoExporter,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    start, end = feed_window(prometheus.url, dynamo_exporter)
    monkeypatch.setenv("PROM_TOKEN", TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    for access in (
        PrometheusAccess(bearer_token_env="PROM_TOKEN"),
        PrometheusAccess(bearer_token_file=token_file),
    ):
        backend = PrometheusBackend(bearer_proxy.url, timeout_s=5, access=access)
        result = asyncio.run(backend.collect(start, end))
        assert result.reachable and result.errors == []
        assert result.get_core_metrics().get_effective_kv_efficiency() == pytest.approx(0.4)
    assert bearer_proxy.accepted > 0 and bearer_proxy.refused == 0
    monkeypatch.setenv("PROM_TOKEN", "not-the-token")
    backend = PrometheusBackend(
        bearer_proxy.url, timeout_s=5, access=PrometheusAccess(bearer_token_env="PROM_TOKEN")
    )
    result = asyncio.run(backend.collect(start, end))
    assert result.reachable is False and result.errors == [rejected(bearer_proxy.url)]


# -- the CLI ----------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["metrics", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_right_wrong_and_missing_credentials(
    secured_prometheus: SecuredPrometheus,
    dynamo_exporter: DynamoExporter,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, ca = secured_prometheus.url, str(secured_prometheus.ca_file)
    start, end = feed_window(url, dynamo_exporter, verify=trust(Path(ca)), auth=(USER, PASSWORD))
    window = ("--prometheus-url", url, "--start", str(start), "--end", str(end), "--timeout", "5")
    auth = ("--basic-auth-user", USER, "--basic-auth-password-env", "PROM_PASSWORD")
    monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
    code, out, err = run_cli(capsys, *window, *auth, "--ca-file", ca)
    assert code == 0, err
    assert "KV efficiency  0.4000  (source: frontend)" in out
    code, out, err = run_cli(capsys, *window, *auth, "--insecure-skip-verify")
    assert code == 0 and "KV efficiency  0.4000" in out, err

    code, out, err = run_cli(capsys, *window, "--ca-file", ca)  # no credentials
    assert (code, out, err) == (2, "", f"dynamo-tune: error: {rejected(url)}\n")
    monkeypatch.setenv("PROM_PASSWORD", "wrong-password")
    code, out, err = run_cli(capsys, *window, *auth, "--ca-file", ca)
    assert (code, out, err) == (2, "", f"dynamo-tune: error: {rejected(url)}\n")
    assert "wrong-password" not in err

    monkeypatch.delenv("PROM_PASSWORD")
    code, out, err = run_cli(capsys, *window, *auth, "--ca-file", ca)
    assert (code, out) == (2, "")
    assert err == (
        "dynamo-tune: error: basic_auth.password_env: the environment variable PROM_PASSWORD "
        "is not set or empty\n"
    )
    monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
    code, out, err = run_cli(capsys, *window, *auth)  # the system CAs do not know ours
    assert (code, out) == (2, "")
    assert err.startswith(f"dynamo-tune: error: prometheus at {url} is unreachable")
    assert "CERTIFICATE_VERIFY_FAILED" in err and len(err.splitlines()) == 1


# -- the pre-run check and a study ------------------------------------------------------------


def test_preflight_uses_the_study_credentials(
    bearer_proxy: BearerProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = MetricsSpec(prometheus_url=bearer_proxy.url, bearer_token_env="PROM_TOKEN")
    endpoints = Endpoints(frontend_url="http://127.0.0.1:9", model="tiny")
    monkeypatch.setenv("PROM_TOKEN", TOKEN)
    asyncio.run(preflight(spec, endpoints))
    monkeypatch.setenv("PROM_TOKEN", "stale")
    with pytest.raises(MetricsError) as caught:
        asyncio.run(preflight(spec, endpoints))
    assert str(caught.value) == rejected(bearer_proxy.url) and caught.value.exit_code == 2


def test_run_with_rejected_credentials_exits_2_before_any_trial(
    tmp_path: Path,
    local_stack: LocalStack,
    secured_prometheus: SecuredPrometheus,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROM_PASSWORD", "wrong-password")
    path = write_study(
        tmp_path,
        {
            "deployment": {
                "kind": "external",
                "frontend_url": local_stack.frontend_url,
                "model": "tiny",
            },  # fmt: skip
            "metrics": {
                "prometheus_url": secured_prometheus.url,
                "basic_auth": {"username": USER, "password_env": "PROM_PASSWORD"},
                "tls": {"ca_file": str(secured_prometheus.ca_file)},
            },
            "search_space": {"hints.session_id": {"type": "categorical", "choices": [True]}},
            "study.baseline": None,
        },
    )
    assert main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err == f"dynamo-tune: error: {rejected(secured_prometheus.url)}\n"
    assert open_study(path).get_trials() == []
    assert "wrong-password" not in out + err


def _fake_study_with_real_metrics(
    folder: Path, proxy_url: str, *, check_first: bool
) -> tuple[Path, Any]:
    """A fake-driven study whose metrics come from the bearer proxy (real time)."""
    path = write_study(
        folder,
        {
            "study.n_trials": 2,
            "study.max_failures_in_a_row": 1,
            "metrics": {
                "prometheus_url": proxy_url,
                "bearer_token_env": "PROM_TOKEN",
                "timeout_s": 5,
            },  # fmt: skip
        },
    )
    stack = fake_stack(clock=RealClock(), workload_seconds=0.2)

    def services(handle: StudyHandle) -> Any:
        metrics = handle.loaded.spec.metrics

        async def check(endpoints: Endpoints, notify: Any) -> None:
            await preflight(metrics, endpoints, notify)

        return dataclasses.replace(
            stack.services(handle),
            metrics_for=lambda endpoints: metrics_backend(metrics, endpoints),
            preflight=check if check_first else None,
        )

    return path, services


def test_a_trial_with_rejected_credentials_fails_with_the_401_reason(
    tmp_path: Path, bearer_proxy: BearerProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_TOKEN", "stale-token")
    path, services = _fake_study_with_real_metrics(tmp_path, bearer_proxy.url, check_first=True)
    with pytest.raises(MetricsError, match="rejected the credentials"):
        run_study_file(path, services)
    # the pre-run check stopped it: only the enqueued baseline, not measured
    assert [t.state.name for t in open_study(path).get_trials()] == ["WAITING"]

    path, services = _fake_study_with_real_metrics(tmp_path, bearer_proxy.url, check_first=False)
    with pytest.raises(RunStopped):
        run_study_file(path, services)
    # a measurement fault: FAIL, its configuration queued again once
    trial, retry = open_study(path).get_trials()
    assert (trial.state.name, retry.state.name) == ("FAIL", "WAITING")
    assert rejected(bearer_proxy.url) in trial.user_attrs[TrialAttr.FAIL_REASON]
    assert trial.user_attrs[TrialAttr.FAULT].startswith("metrics: ")
    assert "kv_efficiency" not in trial.user_attrs and "ttft_p95_seconds" not in trial.user_attrs


def test_the_token_is_stored_and_printed_nowhere(
    tmp_path: Path,
    bearer_proxy: BearerProxy,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PROM_TOKEN", TOKEN)
    path, services = _fake_study_with_real_metrics(tmp_path, bearer_proxy.url, check_first=True)
    run_study_file(path, services)
    out, err = capfd.readouterr()
    assert bearer_proxy.accepted > 0  # the token was used
    study = open_study(path)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert all(t.user_attrs["backend"] == "prometheus" for t in trials)
    stored: list[Any] = [study.user_attrs]
    stored += [(t.user_attrs, t.system_attrs, t.params) for t in trials]
    assert TOKEN not in repr(stored)
    assert "PROM_TOKEN" in repr(study.user_attrs)  # the study file names the variable only
    assert TOKEN not in out + err
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in files if p.parent.name == "fake.db.artifacts"]) >= 2  # artifacts
    assert any(p.suffix == ".db" for p in files)  # and the whole storage is read too
    for file in files:
        assert TOKEN.encode() not in file.read_bytes(), file
    assert os.environ["PROM_TOKEN"] == TOKEN
