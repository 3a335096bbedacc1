"""The study runner on the real local Dynamo stack (frontend + KV router + mockers + Prometheus).

Short on purpose: a tiny agentic workload at a high mocker speed-up, so a trial takes a few
seconds beyond the stack's restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fakes import fake_stack, write_study
from local_stack_helpers import LOCAL, TINY_WORKLOAD
from optuna.trial import TrialState
from study_helpers import (
    REQUIRED_ATTRS,
    open_study,
    running_trials,
    sigkill_mid_trial,
    stop_process_group,
    wait_for,
)

from dynamo_tune.cli.main import main
from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.net import free_port
from dynamo_tune.study import run_study_file
from dynamo_tune.study.run.services import build_services
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.space import Candidate
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.trial.objective import TrialServices
from dynamo_tune.study.trial.outcome import recompute_score
from dynamo_tune.workload.base import Workload
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.result import WorkloadReport

pytestmark = pytest.mark.integration

DYNAMO_TUNE = str(Path(sys.executable).with_name("dynamo-tune"))


def _real_study(folder: Path, changes: dict[str, Any] | None = None) -> Path:
    base = {
        "study.name": "real",
        "study.storage": "sqlite:///real.db",
        "deployment": dict(LOCAL, run_dir=str(folder / "stack")),
        "workload": TINY_WORKLOAD,
        "search_space": {
            "router.mode": {"type": "categorical", "choices": ["kv", "round-robin"]},
            "router.temperature": {"type": "float", "low": 0.0, "high": 1.0},
            "hints.session_id": {"type": "categorical", "choices": [True, False]},
        },
    }
    return write_study(folder, {**base, **(changes or {})})


def _snapshot(path: Path) -> list[tuple[int, str, Any, dict[str, Any]]]:
    return [(t.number, t.state.name, t.values, t.user_attrs) for t in open_study(path).get_trials()]


def test_three_trial_study_on_the_local_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _real_study(tmp_path, {"study.n_trials": 3})
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[3/3]" in out and "vs baseline #0" in out
    study = open_study(path)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    objective = load_spec(path).spec.objective
    for t in trials:
        assert t.value is not None and 0.0 <= t.value <= 1.0
        assert not [k for k in REQUIRED_ATTRS if k not in t.user_attrs]
        assert t.value == pytest.approx(recompute_score(t.user_attrs, objective))
        assert t.user_attrs["requests_ok"] == 8 and t.user_attrs["requests_failed"] == 0
        assert t.user_attrs["kv_efficiency_source"] == "frontend"
        assert "--router-mode" in t.user_attrs["frontend_args"]
        assert t.user_attrs["kv_efficiency"] == pytest.approx(t.user_attrs["client_kve"], abs=1e-6)
    assert trials[0].user_attrs["frontend_args"][:2] == ["--router-mode", "round-robin"]
    windows = sorted((t.user_attrs["window_start"], t.user_attrs["window_end"]) for t in trials)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start - end >= 2.0  # two scrape intervals of the local Prometheus (1 s)
    assert main(["trials", str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in table[1:4]] == ["COMPLETE"] * 3
    assert table[4] == ""  # no FAIL row, so no reason line; then the legend
    assert table[5].startswith("ok: yes = meets every constraint")
    assert main(["best", str(path), "--format", "json"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["best"][0]["values"][0] == max(t.value for t in trials)
    assert best["improvement_over_baseline"]["baseline_trial"] == 0
    csv_path = tmp_path / "trials.csv"
    assert main(["export", str(path), "--csv", str(csv_path)]) == 0
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["value"]) for r in rows] == [t.value for t in trials]


def test_confirmed_study_on_the_local_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _real_study(
        tmp_path,
        {
            "study.n_trials": 5,
            "study.sampler": {"name": "random", "seed": 2},
            "study.enqueue": [{"router.mode": "kv", "router.temperature": 0.0}],
            "study.confirm": {"top": 2, "repeats": 2},
        },
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    study = open_study(path)
    trials = study.get_trials()
    search = [t for t in trials if t.user_attrs.get("stage") != "confirm"]
    confirms = [t for t in trials if t.user_attrs.get("stage") == "confirm"]
    assert [t.state for t in search] == [TrialState.COMPLETE] * 5
    # conditional space: a kv-only knob is never suggested under round-robin
    round_robin = [t for t in search if t.params["router.mode"] == "round-robin"]
    assert round_robin and all("router.temperature" not in t.params for t in round_robin)
    assert all("router.temperature" in t.params for t in search if t.params["router.mode"] == "kv")
    # the evaluator optuna-dashboard uses (PED-ANOVA; the default fANOVA needs scikit-learn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        )
    assert set(importances) <= {"router.mode", "router.temperature", "hints.session_id"}
    # two configurations and the baseline, two fresh measurements each, interleaved
    assert len(confirms) == 6 and all(t.state == TrialState.COMPLETE for t in confirms)
    members = [t.user_attrs["confirms"] for t in confirms]
    assert members[:3] == members[3:] and members[0] == 0 and len(set(members)) == 3
    assert "confirmation (Welch's t, 95 % intervals):" in out
    verdict = study.user_attrs["verdict"]
    assert verdict["baseline"]["trial"] == 0 and len(verdict["configs"]) == 2
    code = main(["best", str(path), "--format", "flags"])
    captured = capsys.readouterr()
    if verdict["winner"] is None:
        assert code == 1 and "no configuration beats the baseline beyond noise" in captured.err
    else:
        assert code == 0 and "confirmed winner" in captured.err
        winner = [t for t in confirms if t.user_attrs["confirms"] == verdict["winner"]]
        assert all(t.user_attrs["frontend_args"] == captured.out.split() for t in winner)


def test_resume_after_sigkill_mid_trial(tmp_path: Path) -> None:
    path = _real_study(tmp_path, {"study.n_trials": 2})
    log = (tmp_path / "killed-run.log").open("wb")
    proc = subprocess.Popen(
        [DYNAMO_TUNE, "run", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        killed = sigkill_mid_trial(proc, path, timeout_s=120)
    finally:
        log.close()
    # the killed runner's stack dies with it (its children get SIGKILL when their parent dies)
    wait_for(lambda: not _processes_using(tmp_path / "stack"), timeout_s=15)
    assert main(["run", str(path)]) == 0
    trials = open_study(path).get_trials()
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 2
    assert trials[killed.number].state == TrialState.FAIL
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE


def _prefilled(folder: Path, changes: dict[str, Any]) -> Path:
    """A study file whose study already holds two trials (run on the fakes)."""
    path = write_study(folder, {"study.n_trials": 2, **changes})
    run_study_file(path, fake_stack().services)
    write_study(folder, {"study.n_trials": 4, **changes})
    return path


def test_unreachable_prometheus_is_exit_2_and_trials_untouched(
    tmp_path: Path, local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    path = _prefilled(
        tmp_path,
        {
            "deployment": {
                "kind": "external",
                "frontend_url": local_stack.frontend_url,
                "model": "tiny",
            },
            "metrics": {"backend": "prometheus", "prometheus_url": dead, "timeout_s": 2},
            "workload": TINY_WORKLOAD,
            "search_space": {"hints.session_id": {"type": "categorical", "choices": [True, False]}},
            "study.baseline": None,
        },
    )
    before = _snapshot(path)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"Prometheus at {dead} does not answer" in err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(path) == before


def test_command_deployment_exiting_1_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fail = "import sys; sys.stderr.write('cannot reserve GPUs\\n'); sys.exit(1)"
    path = _prefilled(
        tmp_path,
        {
            "deployment": {
                "kind": "command",
                "start": [sys.executable, "-c", fail],
                "ready_url": f"http://127.0.0.1:{free_port()}/health",
                "frontend_url": f"http://127.0.0.1:{free_port()}",
                "model": "tiny",
            },
            "workload": TINY_WORKLOAD,
        },
    )
    before = _snapshot(path)
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cannot reserve GPUs" in err and "exit" in err
    assert _snapshot(path) == before


def test_invalid_file_leaves_an_existing_study_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _prefilled(tmp_path, {})
    before = _snapshot(path)
    text = path.read_text().replace("n_trials: 4", "n_trials: 4\n  n_trails: 5")
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    assert "study.n_trails: unknown key" in capsys.readouterr().err
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'fake.db'}")
    assert [(t.number, t.state.name, t.values, t.user_attrs) for t in study.get_trials()] == before


CHROMIUM = "/usr/bin/chromium"


def _rendered(url: str, profile: Path) -> str:
    """The DOM of `url` after its scripts ran, from headless Chromium."""
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _text(html: str) -> str:
    """The visible text of rendered HTML, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_dashboard_in_headless_chromium_shows_study_and_user_attrs(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "CI installs Debian's chromium"
    path = write_study(tmp_path, {"study.n_trials": 2, "study.name": "browser-check"})
    run_study_file(path, fake_stack().services)
    trial = open_study(path).get_trials()[1]
    with serving_dashboard(path) as url:
        assert url.startswith("http://127.0.0.1:")
        home = _rendered(url.split("/dashboard/")[0] + "/dashboard/", tmp_path / "profile-a")
        assert "browser-check" in home
        page = _text(_rendered(f"{url}/trials?numbers={trial.number}", tmp_path / "profile-b"))
        assert "User Attributes" in page
        assert "kv_efficiency_source frontend" in page
        assert f"ttft_p95_seconds {trial.user_attrs['ttft_p95_seconds']!r}" in page
        assert f"kv_efficiency {trial.user_attrs['kv_efficiency']!r}" in page


@contextlib.contextmanager
def serving_dashboard(study_file: Path) -> Iterator[str]:
    """`dynamo-tune dashboard STUDY` in its own process group; yields the URL it prints."""
    proc = subprocess.Popen(
        [DYNAMO_TUNE, "dashboard", str(study_file)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().split(": ", 1)[1].strip()
    finally:
        stop_process_group(proc)


def _processes_using(folder: Path) -> list[int]:
    """Pids whose command line or environment mentions `folder` (read-only /proc scan)."""
    needle = str(folder).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in blob:
            found.append(int(entry.name))
    return found


def test_ctrl_c_mid_trial_fails_it_and_stops_the_stack(tmp_path: Path) -> None:
    path = _real_study(tmp_path, {"study.n_trials": 3})
    log_path = tmp_path / "interrupted-run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [DYNAMO_TUNE, "run", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(lambda: bool(running_trials(path)), timeout_s=120)
            assert _processes_using(tmp_path / "stack"), "the stack should be running"
            (running,) = running_trials(path)
            os.kill(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=60) == 130
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    trial = open_study(path).get_trials()[running.number]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith("interrupted by SIGINT (Ctrl-C) during")
    wait_for(lambda: not _processes_using(tmp_path / "stack"), timeout_s=15)
    assert "dynamo-tune: interrupted" in log_path.read_text()


class _KillsAWorker:
    """A workload that SIGKILLs one worker of the local stack `after_s` into its `run`."""

    def __init__(self, inner: Workload, stack: LocalStack, after_s: float) -> None:
        self.inner, self.stack, self.after_s = inner, stack, after_s
        self.killed: list[tuple[str, int, bool]] = []  # (name, pid, workload still running)

    async def run(self, endpoints: Any, hints: PrefixHints) -> WorkloadReport:
        task = asyncio.create_task(self.inner.run(endpoints, hints))
        await asyncio.sleep(self.after_s)
        pid = self.stack.pids()["worker-1"]
        self.killed.append(("worker-1", pid, not task.done()))
        os.kill(pid, signal.SIGKILL)
        return await task


def test_a_worker_killed_mid_workload_fails_the_trial_and_the_configuration_is_retried(
    tmp_path: Path,
) -> None:
    # 0.5 s of think time between 3 turns: the workload runs > 1 s, the kill at 0.3 s is inside
    longer = dict(TINY_WORKLOAD, turns=3, think_time_s=0.5)
    path = _real_study(
        tmp_path,
        {
            "study.n_trials": 2,
            "study.baseline": None,
            "workload": longer,
            # isolation none: the dead worker must come back although nothing asks for restarts
            "deployment": dict(LOCAL, run_dir=str(tmp_path / "stack"), isolation="none"),
            "search_space": {
                "router.mode": {"type": "categorical", "choices": ["kv"]},
                "router.temperature": {"type": "float", "low": 0.0, "high": 1.0},
            },
        },
    )
    killers: list[_KillsAWorker] = []

    def services_for(handle: StudyHandle) -> TrialServices:
        services = build_services(handle)
        real = services.workload_for
        assert isinstance(services.deployment, LocalStack)
        stack = services.deployment

        def workload_for(candidate: Candidate) -> Workload:
            if killers:  # only the first trial's workload is sabotaged
                return real(candidate)
            killers.append(_KillsAWorker(real(candidate), stack, after_s=0.3))
            return killers[0]

        services.workload_for = workload_for
        return services

    out = io.StringIO()
    run_study_file(path, services_for, report=TextReporter(out))
    (killer,) = killers
    assert killer.killed[0][2], "the workload should still have been running at the kill"
    trials = open_study(path).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    killed, retry, fresh = trials
    pid = killer.killed[0][1]
    assert killed.user_attrs["fail_reason"] == (
        f"workload: DeploymentFault: worker-1 (pid {pid}) exited (signal 9, SIGKILL) "
        "during the workload"
    )
    assert killed.user_attrs["fault"].startswith(f"worker-1 (pid {pid}) exited")
    # the same configuration again, measured on a stack brought back to health
    assert retry.user_attrs["retry_of"] == 0 and retry.params == killed.params
    assert retry.user_attrs["restart_seconds"] > 0  # workers restarted with isolation: none
    for t in (retry, fresh):
        assert t.user_attrs["requests_failed"] == 0 and t.user_attrs["requests_ok"] > 0
    assert "retry_of" not in fresh.user_attrs
    assert "trial #0: deployment fault; configuration re-enqueued once" in out.getvalue()
