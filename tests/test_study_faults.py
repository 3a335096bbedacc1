"""Faults are not verdicts on a configuration; a dead KV signal is named. On the fakes (respx
for the command and external deployments' health checks).

A deployment that breaks during a trial's workload fails the trial with the reason, is brought
back before the next trial, and the configuration is measured once more (`retry_of`); a retry
that faults again is not retried. A kv-mode trial whose router applied no KV event records a
violation and the run warns once.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
import respx
from fakes import FakeDeployment, FakeMetricsBackend, fake_stack, write_study
from optuna.trial import TrialState
from study_helpers import open_study

from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.deploy.command import CommandDeployment
from dynamo_tune.deploy.external import ExternalDeployment
from dynamo_tune.deploy.spec import CommandDeploymentSpec, ExternalDeploymentSpec
from dynamo_tune.errors import RunStopped
from dynamo_tune.metrics import DynamoMetricsResult
from dynamo_tune.study import confirm_study_file, run_study_file
from dynamo_tune.study.read.answers import verdict_of
from dynamo_tune.study.trial.outcome import NO_KV_EVENTS, NO_KV_EVENTS_WARNING

FAULT_REASON = (
    "workload: DeploymentFault: worker-1 (pid 4242) exited (signal 9, SIGKILL) during the workload"
)


def _trial_events(events: list[str]) -> list[list[str]]:
    """The cluster's event log cut at every `apply` (one list per trial, `start` dropped)."""
    trials: list[list[str]] = []
    for event in events[1:-1]:
        if event in ("apply", "revive") and (not trials or "apply" in trials[-1]):
            trials.append([])
        trials[-1].append(event)
    return trials


def test_a_fault_fails_the_trial_revives_the_deployment_and_retries_once(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    stack = fake_stack(deployment={"fault_after_workload": {0}})  # the baseline's workload
    out = io.StringIO()
    summary = run_study_file(path, stack.services, report=TextReporter(out))
    assert summary.complete == 3
    trials = open_study(path).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    failed, retry = trials[0], trials[1]
    assert failed.user_attrs["fail_reason"] == FAULT_REASON
    assert failed.user_attrs["fault"] == FAULT_REASON.removeprefix("workload: DeploymentFault: ")
    # the retry measures the same configuration, keeps the baseline mark, and says whose it is
    assert retry.params == failed.params and failed.params["router.mode"] == "round-robin"
    assert retry.user_attrs["retry_of"] == 0 and retry.user_attrs["baseline"] is True
    assert [t.number for t in trials if "retry_of" in t.user_attrs] == [1]
    # the faulty trial collected nothing; the deployment was revived before the next apply
    per_trial = _trial_events([e for e, _ in stack.cluster.events])
    assert per_trial[0] == ["apply", "ready", "mark_start", "workload", "health"]
    assert per_trial[1][:2] == ["revive", "apply"] and per_trial[1][-1] == "collect"
    assert "trial #0: deployment fault; configuration re-enqueued once" in out.getvalue()


def test_a_retry_that_faults_again_is_recorded_failing_and_not_retried(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2})
    stack = fake_stack(deployment={"fault_after_workload": {1, 2}})
    out = io.StringIO()
    run_study_file(path, stack.services, report=TextReporter(out))
    trials = open_study(path).get_trials()
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == trials[1].params
    assert trials[2].user_attrs["fail_reason"] == FAULT_REASON
    assert "retry_of" not in trials[3].user_attrs  # a fresh suggestion, not a third attempt
    text = out.getvalue()
    assert "trial #1: deployment fault; configuration re-enqueued once" in text
    assert (
        "trial #2: deployment fault; configuration not retried again (it was the retry of #1)"
        in (text)
    )


def test_a_workload_failing_because_of_the_fault_is_a_fault(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2})
    stack = fake_stack(
        workload={"crash_runs": {1}}, deployment={"fault_after_workload": {1}}
    )  # the frontend lost its worker and the workload broke off
    run_study_file(path, stack.services)
    trials = open_study(path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[1].user_attrs["fail_reason"] == FAULT_REASON
    assert trials[2].user_attrs["retry_of"] == 1


def test_a_crash_without_a_fault_is_not_retried(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2})
    stack = fake_stack(workload={"crash_runs": {1}})
    run_study_file(path, stack.services)
    trials = open_study(path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[1].user_attrs["fail_reason"].startswith("workload: WorkloadError: connection")
    assert "fault" not in trials[1].user_attrs
    assert not [t for t in trials if "retry_of" in t.user_attrs]


def test_a_faulty_confirmation_measurement_is_measured_again_in_the_same_run(
    tmp_path: Path,
) -> None:
    """The confirmation plan, not the fault retry, re-queues what it lacks, before the run
    ends: a run that returns has every planned measurement (found by the fault-injection
    soak, where a run ended with n=1 for members planned twice)."""
    path = write_study(
        tmp_path,
        {
            "study.n_trials": 2,
            "study.enqueue": [{"router.mode": "kv"}],
            "study.confirm": {"top": 1, "repeats": 2},
        },
    )
    # workloads 0, 1: the search; 2: the baseline's first confirmation measurement
    stack = fake_stack(deployment={"fault_after_workload": {2}})
    out = io.StringIO()
    run_study_file(path, stack.services, report=TextReporter(out))
    trials = open_study(path).get_trials()
    confirms = [t for t in trials if t.user_attrs.get("stage") == "confirm"]
    assert [t.state.name for t in confirms] == ["FAIL"] + ["COMPLETE"] * 4
    assert confirms[0].user_attrs["fail_reason"] == FAULT_REASON
    assert confirms[0].user_attrs["confirms"] == 0
    assert confirms[-1].user_attrs["confirms"] == 0  # the baseline's, measured again
    assert not [t for t in trials if "retry_of" in t.user_attrs]
    assert "trial #2: deployment fault; configuration not re-enqueued here" in out.getvalue()
    verdict = verdict_of(open_study(path))
    assert verdict is not None
    # nothing is left for a later `confirm` to queue
    confirm_study_file(path, fake_stack().services)
    confirms = [t for t in open_study(path).get_trials() if t.user_attrs.get("stage") == "confirm"]
    assert len(confirms) == 5


class _PrometheusGoesAway(FakeMetricsBackend):
    """Answers the first `answers` collections, then reports an unreachable source."""

    answers = 1

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        self.unreachable = len(self.windows) >= self.answers
        return await super().collect(start, end)


def test_prometheus_going_away_mid_study_fails_trials_as_faults_until_the_guard_stops_the_run(
    tmp_path: Path,
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 4, "study.max_failures_in_a_row": 2})
    stack = fake_stack()
    stack.metrics = _PrometheusGoesAway(stack.cluster)
    fault = (
        "the metrics source could not be read: "
        "prometheus at http://127.0.0.1:10 is unreachable: connection refused"
    )
    reason = f"collect: MeasurementFault: {fault}"
    out = io.StringIO()
    with pytest.raises(RunStopped) as stopped:
        run_study_file(path, stack.services, report=TextReporter(out))
    assert str(stopped.value) == (
        f"2 trials in a row failed (study.max_failures_in_a_row = 2); last: {reason}"
    )
    trials = open_study(path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "FAIL"]
    assert [t.user_attrs["fail_reason"] for t in trials[1:]] == [reason, reason]
    # a measurement fault: the configuration is measured once more, then not again
    assert [t.user_attrs["fault"] for t in trials[1:]] == [f"metrics: {fault}"] * 2
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == trials[1].params
    assert "trial #1: metrics fault; configuration re-enqueued once" in out.getvalue()
    assert [e for e, _ in stack.cluster.events].count("workload") == 3
    assert stack.cluster.stopped


def _kv_study(tmp_path: Path, router: dict[str, object] | None = None) -> Path:
    """Three trials: the round-robin baseline, then kv (enqueued), then a sampled one."""
    return write_study(
        tmp_path,
        {
            "study.n_trials": 3,
            "study.enqueue": [{"router.mode": "kv"}],
            "deployment/router": router or {"mode": "kv"},
        },
    )


def test_kv_trials_without_kv_events_record_a_violation_and_warn_once(tmp_path: Path) -> None:
    path = _kv_study(tmp_path)
    stack = fake_stack(metrics={"no_kv_events": True})
    out = io.StringIO()
    run_study_file(path, stack.services, report=TextReporter(out))
    trials = open_study(path).get_trials()
    modes = [t.params["router.mode"] for t in trials]
    assert modes[:2] == ["round-robin", "kv"]
    for t, mode in zip(trials, modes, strict=True):
        assert t.state == TrialState.COMPLETE
        assert (NO_KV_EVENTS in t.user_attrs["violations"]) == (mode == "kv")
        if mode == "kv":
            assert t.user_attrs["feasible"] is False
            assert t.user_attrs["router_kv_events_rate"] == 0.0
            assert t.user_attrs["router_kv_hit_rate_mean"] == 0.0
        else:  # no kv router, no evidence either way
            assert "router_kv_events_rate" not in t.user_attrs
    assert out.getvalue().count(NO_KV_EVENTS_WARNING) == 1


def test_kv_trials_with_kv_events_record_no_violation(tmp_path: Path) -> None:
    path = _kv_study(tmp_path)
    out = io.StringIO()
    run_study_file(path, fake_stack().services, report=TextReporter(out))
    kv = open_study(path).get_trials()[1]
    assert kv.params["router.mode"] == "kv" and kv.user_attrs["feasible"] is True
    assert kv.user_attrs["router_kv_events_rate"] == 12.0
    # the fake router predicts the fake cluster's KVE: 0.40 + 0.12 x credit 1.0 + 0.06 (session)
    assert kv.user_attrs["router_kv_hit_rate_mean"] == pytest.approx(0.58)
    assert NO_KV_EVENTS_WARNING not in out.getvalue()


def test_a_router_told_to_run_without_kv_events_is_not_flagged(tmp_path: Path) -> None:
    path = _kv_study(tmp_path, {"mode": "kv", "kv_events": False})
    out = io.StringIO()
    run_study_file(
        path, fake_stack(metrics={"no_kv_events": True}).services, report=TextReporter(out)
    )
    for t in open_study(path).get_trials()[1:]:
        assert NO_KV_EVENTS not in t.user_attrs["violations"]
    assert NO_KV_EVENTS_WARNING not in out.getvalue()


def test_fake_fault_reason_is_the_local_stack_wording() -> None:
    from dynamo_tune.deploy.local_processes import exit_status

    assert f"worker-1 (pid 4242) exited ({exit_status(-9)})" == FakeDeployment.FAULT
    assert exit_status(-9) == "signal 9, SIGKILL" and exit_status(1) == "code 1"


URL = "http://127.0.0.1:9"


def _models(*names: str) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": [{"id": n} for n in names]})


async def test_command_deployment_health_is_its_ready_check_once(
    respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    spec = CommandDeploymentSpec(
        kind="command", ready_url=f"{URL}/health", frontend_url=URL, model="m", run_dir=tmp_path
    )
    deployment = CommandDeployment(spec)
    health = respx_mock.get(f"{URL}/health").mock(return_value=httpx.Response(200))
    respx_mock.get(f"{URL}/v1/models").mock(return_value=_models("m"))
    assert await deployment.check_health() is None
    health.mock(return_value=httpx.Response(503))
    assert await deployment.check_health() == f"ready check {URL}/health failed (HTTP 503)"
    assert health.call_count == 2  # one look each, no polling


async def test_external_deployment_health_is_the_model_being_listed(
    respx_mock: respx.MockRouter,
) -> None:
    deployment = ExternalDeployment(
        ExternalDeploymentSpec(kind="external", frontend_url=URL, model="m")
    )
    models = respx_mock.get(f"{URL}/v1/models").mock(return_value=_models("m", "other"))
    assert await deployment.check_health() is None
    models.mock(return_value=_models("other"))
    assert await deployment.check_health() == (
        f"{URL}/v1/models no longer lists model 'm' (HTTP 200)"
    )
    models.mock(side_effect=httpx.ConnectError("refused"))
    assert await deployment.check_health() == (
        f"{URL}/v1/models does not answer (ConnectError: refused)"
    )


def test_the_baseline_is_attempted_up_to_three_times(tmp_path: Path) -> None:
    """The study has no verdict without a COMPLETE baseline: a fault chain on it is retried
    past the once of other configurations, up to 3 attempts (found by the fault-injection
    soak, where a fault and then a killed runner lost the baseline for good)."""
    path = write_study(tmp_path, {"study.n_trials": 2})
    stack = fake_stack(deployment={"fault_after_workload": {0, 1}})  # the first two attempts
    run_study_file(path, stack.services)
    trials = open_study(path).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert [t.user_attrs.get("retry_of") for t in trials[:3]] == [None, 0, 1]
    assert all(t.user_attrs["baseline"] is True for t in trials[:3])
    # three faults in a row: the third attempt is the last
    (tmp_path / "again").mkdir()
    path = write_study(tmp_path / "again", {"study.n_trials": 1, "study.max_failures_in_a_row": 5})
    stack = fake_stack(deployment={"fault_after_workload": {0, 1, 2}})
    run_study_file(path, stack.services)
    trials = open_study(path).get_trials()
    assert [t.user_attrs.get("retry_of") for t in trials] == [None, 0, 1, None]
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "FAIL", "COMPLETE"]
    assert "baseline" not in trials[3].user_attrs
