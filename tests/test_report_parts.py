"""Report sections that the fake-driven studies do not reach: other deployments and workloads,
trial roles, the study's state from hand-made trials."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from optuna.trial import FrozenTrial, TrialState, create_trial

from dynamo_tune.report.measured import measured_facts
from dynamo_tune.report.status import study_state
from dynamo_tune.report.trial_rows import role_of
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord

SPACE = {"router.temperature": {"type": "float", "low": 0.0, "high": 1.0}}


def _spec(deployment: dict[str, Any], workload: dict[str, Any], **study: Any) -> StudySpec:
    return StudySpec.model_validate(
        {
            "study": {"name": "s", "n_trials": 4, **study},
            "deployment": deployment,
            "workload": workload,
            "search_space": SPACE,
        }
    )


def _facts(spec: StudySpec) -> dict[str, str]:
    return {f.label: f.text for f in measured_facts(spec, [])}


def test_an_external_deployment_shows_its_url_without_credentials_or_query() -> None:
    spec = _spec(
        {"kind": "external", "frontend_url": "http://tuner:s3cret@10.0.0.5:8000/v1?token=abc",
         "model": "llama"},
        {"kind": "command", "argv": ["aiperf", "profile", "--url", "{frontend_url}"]},
    )  # fmt: skip
    facts = _facts(spec)
    assert facts["frontend"] == "http://10.0.0.5:8000/v1 (model llama)"
    assert "s3cret" not in str(facts) and "token" not in str(facts)
    assert facts["engine"] == "as deployed (not managed by dynamo-tune)"
    assert facts["size"] == "command aiperf (3 arguments)"
    assert facts["KVE ceiling"] == "not measured (a command workload does not report its prompts)"


def test_a_trace_workload_and_a_rate_are_described() -> None:
    trace = _spec({"kind": "local"}, {"kind": "trace", "path": "/data/mooncake.jsonl",
                                      "limit": 500, "speedup": 4})  # fmt: skip
    assert _facts(trace)["size"] == "mooncake.jsonl: 500 records from 0, speedup 4x"
    rate = _spec({"kind": "local"}, {"kind": "agentic", "sessions": 10, "turns": 3, "rate": 2.5})
    assert _facts(rate)["size"] == (
        "10 sessions x 3 turns x 1 calls (30 requests), 2.5 sessions/s, unbounded in flight"
    )


def test_roles_name_baseline_preset_confirmation_and_retry() -> None:
    def role(**attrs: Any) -> str:
        return role_of(TrialRecord.from_frozen(create_trial(value=1.0, user_attrs=attrs)))

    assert role(baseline=True) == "baseline"
    assert role(preset="agentic", retry_of=3) == "agentic, retry of #3"
    assert role(stage="confirm", confirms=4) == "confirms #4"
    assert role() == "search"


def test_wall_time_and_overhead_from_trial_times() -> None:
    start = dt.datetime(2026, 12, 1, 7, 0, 0)

    trials = [
        _timed(start, 0, 20, 16, TrialState.COMPLETE),  # 4 s outside the window: 20 %
        _timed(start, 25, 10, 4, TrialState.COMPLETE),  # 6 s: 60 %
        _timed(start, 40, 5, 0, TrialState.FAIL),
    ]
    spec = _spec({"kind": "local"}, {"kind": "agentic"}, confirm=False)
    state = study_state(trials, spec, StudyRecord(), dt.datetime.now(dt.UTC))
    assert state.wall_seconds == 45.0  # first start to last end
    assert state.mean_trial_seconds == 15.0
    assert state.overhead_seconds == 5.0 and state.overhead_share == pytest.approx(0.4)
    assert state.search == {"COMPLETE": 2, "FAIL": 1}
    assert state.lines == ["search incomplete: 2 of 4 search trials COMPLETE (`dynamo-tune run` "
                           "resumes)"]  # fmt: skip


def _timed(
    start: dt.datetime, offset_s: float, seconds: float, measured: float, state: TrialState
) -> TrialRecord:
    """A trial that started `offset_s` after `start` and took `seconds`."""
    begin = start + dt.timedelta(seconds=offset_s)
    trial = FrozenTrial(
        number=0,
        state=state,
        value=1.0 if state == TrialState.COMPLETE else None,
        datetime_start=begin,
        datetime_complete=begin + dt.timedelta(seconds=seconds),
        params={},
        distributions={},
        user_attrs={"measured_seconds": measured},
        system_attrs={},
        intermediate_values={},
        trial_id=0,
    )
    return TrialRecord.from_frozen(trial)
