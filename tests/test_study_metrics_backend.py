"""Which metrics backend a study uses: `auto` (the default) takes the deployment's Prometheus
when there is one, else scrapes /metrics; an explicit `backend: prometheus` without any
Prometheus is an error before a study or a deployment exists."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import fake_stack, write_study
from study_helpers import open_study

from dynamo_tune.cli.main import main
from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import SpecError
from dynamo_tune.metrics import PrometheusAccess, PrometheusBackend, ScrapeBackend
from dynamo_tune.study import run_study_file
from dynamo_tune.study.run.services import metrics_backend, uses_prometheus
from dynamo_tune.study.spec.checks import check_metrics_source
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import MetricsSpec

DYNAMO_TUNE = str(Path(sys.executable).with_name("dynamo-tune"))
EXTERNAL = {"kind": "external", "frontend_url": "http://127.0.0.1:9", "model": "tiny"}


def external(**fields: Any) -> dict[str, Any]:
    """Study changes for an external deployment with `fields` (no router search)."""
    return {
        "deployment": {**EXTERNAL, **fields},
        "search_space": {"hints.session_id": {"type": "categorical", "choices": [True, False]}},
        "study.baseline": None,
    }


@pytest.fixture
def path_without_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PATH with every program of the current one except `prometheus` (symlinks)."""
    shadow = tmp_path_factory.mktemp("bin")
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = shadow / entry.name
            if entry.name != "prometheus" and not target.exists() and not target.is_symlink():
                target.symlink_to(entry.path)
    yield str(shadow)


def _issues(tmp_path: Path, changes: dict[str, Any], on_path: bool) -> list[str]:
    spec = load_spec(write_study(tmp_path, changes)).spec
    return check_metrics_source(spec, prometheus_on_path=on_path)


@pytest.mark.parametrize(
    ("changes", "on_path", "expected"),
    [
        ({}, False, []),  # auto: falls back to scraping the local stack
        ({}, True, []),
        ({"metrics": {"backend": "prometheus"}}, True, []),
        ({"metrics": {"backend": "scrape"}}, False, []),
        (
            {"metrics": {"backend": "prometheus"}},
            False,
            [
                "metrics.backend: prometheus, but the deployment runs no Prometheus (`prometheus` "
                "is not on PATH): set metrics.prometheus_url, or use `backend: auto` to scrape "
                "/metrics instead"
            ],
        ),
        ({"metrics": {"backend": "prometheus", "prometheus_url": "http://p:9090"}}, False, []),
        (
            {"deployment.prometheus": True},
            False,
            [
                "deployment.prometheus: true, but `prometheus` is not on PATH (Debian: apt-get "
                "install prometheus); `auto` falls back to the scrape backend"
            ],
        ),
        (
            external(metrics_urls=["http://127.0.0.1:9/metrics"]),
            True,
            [],
        ),
    ],
)
def test_metrics_source_rules(
    tmp_path: Path, changes: dict[str, Any], on_path: bool, expected: list[str]
) -> None:
    assert _issues(tmp_path, changes, on_path) == expected


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"deployment.prometheus": False, "metrics": {"backend": "prometheus"}},
            "metrics.backend: prometheus, but the deployment runs no Prometheus "
            "(deployment.prometheus is false)",
        ),
        (
            {**external(), "metrics": {"backend": "prometheus"}},
            "metrics.backend: prometheus, but the deployment runs no Prometheus "
            "(deployment.prometheus_url is not set)",
        ),
        (
            external(prometheus_url="http://u:pw-123@prom:9090"),
            "deployment.prometheus_url: remove the user:password@ part",
        ),
    ],
)
def test_machine_independent_problems_are_file_errors(
    tmp_path: Path, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_study(tmp_path, changes))
    assert problem in str(caught.value)
    assert "pw-123" not in str(caught.value)


def test_auto_resolves_per_endpoints() -> None:
    bare = Endpoints(
        frontend_url="http://127.0.0.1:9",
        model="tiny",
        metrics_urls=["http://127.0.0.1:9/metrics"],
    )
    with_prometheus = bare.model_copy(update={"prometheus_url": "http://127.0.0.1:10"})
    auto = MetricsSpec(bearer_token_env="PROM_TOKEN")
    assert not uses_prometheus(auto, bare) and uses_prometheus(auto, with_prometheus)
    assert isinstance(metrics_backend(auto, bare), ScrapeBackend)
    backend = metrics_backend(auto, with_prometheus)
    assert isinstance(backend, PrometheusBackend)
    assert backend.access == PrometheusAccess(bearer_token_env="PROM_TOKEN")
    assert uses_prometheus(MetricsSpec(prometheus_url="http://p:9090"), bare)
    assert not uses_prometheus(MetricsSpec(backend="scrape"), with_prometheus)


def test_explicit_prometheus_without_one_exits_2_before_the_storage_exists(
    tmp_path: Path,
    path_without_prometheus: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_study(tmp_path, {"metrics": {"backend": "prometheus"}})
    monkeypatch.setenv("PATH", path_without_prometheus)
    assert main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"dynamo-tune: error: {path}: 1 problem",
        "  metrics.backend: prometheus, but the deployment runs no Prometheus (`prometheus` is "
        "not on PATH): set metrics.prometheus_url, or use `backend: auto` to scrape /metrics "
        "instead",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # no fake.db


def test_default_metrics_run_without_prometheus_on_path(
    tmp_path: Path, path_without_prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_without_prometheus)
    stack = fake_stack()
    summary = run_study_file(write_study(tmp_path, {"study.n_trials": 2}), stack.services)
    assert summary is not None and len(stack.metrics.windows) == 2


@pytest.mark.integration
def test_local_stack_without_prometheus_records_the_scrape_backend(
    tmp_path: Path, path_without_prometheus: str
) -> None:
    path = write_study(
        tmp_path,
        {
            "study.n_trials": 1,
            "study.baseline": None,
            "deployment": {
                "kind": "local",
                "workers": 1,
                "mocker": {"speedup_ratio": 20, "block_size": 16, "num_gpu_blocks": 512},
                "run_dir": str(tmp_path / "stack"),
            },
            "workload": {
                "kind": "agentic",
                "sessions": 2,
                "turns": 2,
                "concurrency": 2,
                "system_prompt_tokens": 100,
                "session_context_tokens": 100,
                "appended_tokens": 20,
                "output_tokens": 4,
                "seed": 0,
            },  # fmt: skip
            "search_space": {"hints.session_id": {"type": "categorical", "choices": [True]}},
        },
    )
    env = {**os.environ, "PATH": path_without_prometheus}
    done = subprocess.run(
        [DYNAMO_TUNE, "run", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (trial,) = open_study(path).get_trials()
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["backend"] == "scrape"
    assert trial.user_attrs["requests_ok"] == 4
    assert trial.user_attrs["ttft_p95_seconds"] is not None
