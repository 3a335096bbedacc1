"""Pure parts of the study runner: storage paths, candidates, outcomes, progress, seeds."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from fakes import fake_stack, write_study
from optuna.trial import TrialState
from pydantic import ValidationError

from dynamo_tune.cli.run_output import progress_line
from dynamo_tune.deploy.base import AppliedConfig
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.errors import SpecError
from dynamo_tune.metrics import DynamoMetricsResult
from dynamo_tune.study.confirmation.confidence import Summary
from dynamo_tune.study.confirmation.edges import Edge
from dynamo_tune.study.confirmation.verdict import ConfigResult, ObjectiveResult, Verdict
from dynamo_tune.study.confirmation.verdict_text import headline
from dynamo_tune.study.confirmation.verdict_text import lines as verdict_lines
from dynamo_tune.study.run.events import TrialFinished
from dynamo_tune.study.run.progress import duration, eta_seconds, overhead_share
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import (
    CategoricalParam,
    ConstraintSpec,
    FloatParam,
    IntParam,
    ObjectiveSpec,
)
from dynamo_tune.study.spec.space import SearchSpace, fixed_values, grid_values, make_candidate
from dynamo_tune.study.store.samplers import constraints_from_attrs, run_seed
from dynamo_tune.study.store.storage import resolve_storage
from dynamo_tune.study.trial.objective import Objective
from dynamo_tune.study.trial.outcome import NO_DATA, Measurement, evaluate
from dynamo_tune.study.trial.record import TrialRecord
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.spec import AgenticWorkloadSpec


def test_storage_paths_resolve_against_the_study_folder(tmp_path: Path) -> None:
    t = resolve_storage("sqlite:///db/s.db", "s", tmp_path)
    assert t.kind == "sqlite" and t.url == f"sqlite:///{tmp_path}/db/s.db"
    assert t.artifact_dir == tmp_path / "db" / "s.db.artifacts"
    t = resolve_storage("sqlite:////abs/x.db", "s", tmp_path)
    assert t.path == Path("/abs/x.db")
    t = resolve_storage("journal:j.log", "s", tmp_path, artifact_dir="art")
    assert t.kind == "journal" and t.path == tmp_path / "j.log"
    assert t.artifact_dir == tmp_path / "art" and t.display == f"journal:{tmp_path}/j.log"
    t = resolve_storage("postgresql://u@db.example/optuna", "s", tmp_path)
    assert t.kind == "rdb" and t.path is None and t.artifact_dir == tmp_path / "s.artifacts"
    assert resolve_storage(None, "name", tmp_path).path == tmp_path / "name.db"
    for bad in ("sqlite:///:memory:", "study.db", "journal:"):
        with pytest.raises(SpecError, match="study.storage"):
            resolve_storage(bad, "s", tmp_path)


def test_candidate_overlays_router_hints_and_workload() -> None:
    workload = AgenticWorkloadSpec(sessions=4)
    base = RouterConfig(mode="kv", queue_policy="wspt")
    c = make_candidate(
        {"router.temperature": 0.3, "hints.session_id": False, "workload.concurrency": 3},
        base,
        workload,
    )
    assert c.router == RouterConfig(mode="kv", queue_policy="wspt", temperature=0.3)
    assert c.hints.session_id is False and c.hints.dialect == "dynamo"
    assert c.workload.concurrency == 3 and c.workload.sessions == 4  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        make_candidate({"router.temperature": -1.0}, base, workload)
    with pytest.raises(ValueError, match="<section>.<field>"):
        make_candidate({"gpu.count": 1}, base, workload)


def test_a_fixed_configuration_takes_fixed_values_and_dynamo_defaults() -> None:
    space = SearchSpace(
        {
            "router.temperature": FloatParam(type="float", low=0.0, high=1.0),
            "router.overlap_score_credit": FloatParam(type="float", low=0.5, high=2.0),
            "router.prefill_load_scale": FloatParam(type="float", low=2.0, high=4.0),
        }
    )
    params, overrides = fixed_values(
        space,
        {"router.queue_policy": "fcfs"},
        RouterConfig(mode="kv", overlap_score_credit=0.7),
        AgenticWorkloadSpec(),
        {"temperature": 0.0, "overlap_score_credit": 1.0, "prefill_load_scale": 1.0},
    )
    # temperature: Dynamo's default 0.0; credit: the study's fixed 0.7; scale 1.0 is outside
    assert params == {"router.temperature": 0.0, "router.overlap_score_credit": 0.7}
    assert overrides == {"router.queue_policy": "fcfs"}


def test_a_fixed_configuration_drops_knobs_its_router_mode_ignores() -> None:
    space = SearchSpace(
        {
            "router.mode": CategoricalParam(type="categorical", choices=["kv", "round-robin"]),
            "router.temperature": FloatParam(type="float", low=0.0, high=1.0),
            "hints.session_id": CategoricalParam(type="categorical", choices=[True, False]),
        }
    )
    settings = {"router.mode": "round-robin", "router.temperature": 0.5}
    params, _ = fixed_values(space, settings, RouterConfig(), AgenticWorkloadSpec(), {})
    assert params == {"router.mode": "round-robin", "hints.session_id": True}
    settings = {"router.mode": "kv", "router.temperature": 0.5}
    params, _ = fixed_values(space, settings, RouterConfig(), AgenticWorkloadSpec(), {})
    assert params == {"router.mode": "kv", "router.temperature": 0.5, "hints.session_id": True}


def test_grid_values() -> None:
    assert grid_values(IntParam(type="int", low=1, high=7, step=3)) == [1, 4, 7]
    assert grid_values(FloatParam(type="float", low=0, high=1, step=0.25)) == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert grid_values(FloatParam(type="float", low=0, high=1)) is None


def _measurement(ttft: float | None, kve: float = 0.5, failed: bool = False) -> Measurement:
    result = DynamoMetricsResult(
        frontend_cached_tokens_rate=kve * 10,
        frontend_input_tokens_rate=10.0,
        ttft_p95=ttft,
        itl_p95=0.05,
    )
    report = WorkloadReport(
        window_start=100.0, window_end=110.0, requests_sent=10, requests_failed=5, failed=failed
    )
    applied = AppliedConfig(router=RouterConfig(), frontend_args=["--router-mode", "kv"])
    return Measurement(applied, report, result, started=99.0, finished=112.0)


def test_outcome_constraints_min_max_missing_and_failed_workload() -> None:
    objective = ObjectiveSpec(
        constraints=[
            ConstraintSpec(metric="ttft_p95_seconds", max=1.0),
            ConstraintSpec(metric="kv_efficiency", min=0.6),
            ConstraintSpec(metric="client_kve", min=0.1),
        ]
    )
    out = evaluate([_measurement(1.5, kve=0.5, failed=True)], objective)
    assert out.constraints["ttft_p95_seconds<=1"] == pytest.approx(0.5)
    assert out.constraints["0.6<=kv_efficiency"] == pytest.approx(0.1)
    assert out.constraints["0.1<=client_kve"] == 1.0  # missing: infeasible
    assert out.constraints["workload_ok"] == 1.0 and out.constraints["metrics_complete"] == 0.0
    assert not out.feasible and len(out.violations) == 4
    expected = 0.4 * 0.5 + 0.4 * (0.5 / 1.5) + 0.2 * 1.0
    assert out.values == [pytest.approx(expected)]


def test_outcome_median_of_even_repeats_is_a_real_measurement() -> None:
    ms = [_measurement(t) for t in (0.5, 2.0, 1.0, 4.0)]
    out = evaluate(ms, ObjectiveSpec())
    # scores 0.8, 0.5, 0.6, 0.45: the lower median 0.5 (ttft 2.0), never an average
    assert out.chosen == 1 and out.values == [pytest.approx(0.5)]
    assert out.attrs["ttft_p95_seconds"] == 2.0
    assert out.attrs["repeat_values"] == pytest.approx([0.8, 0.5, 0.6, 0.45])
    assert out.attrs["value_spread"] == pytest.approx(0.8 - 0.45)
    assert out.attrs["measured_seconds"] == 40.0


def test_missing_objective_metric_gets_the_worst_value() -> None:
    objective = ObjectiveSpec(
        directions=[{"maximize": "kv_efficiency"}, {"minimize": "ttft_p95_seconds"}]
    )
    out = evaluate([_measurement(None)], objective)
    assert out.values[0] == pytest.approx(0.5) and math.isinf(out.values[1])
    assert out.constraints["metrics_complete"] == 1.0
    assert out.violations == [f"metrics incomplete: ttft_p95_seconds {NO_DATA}"]


def test_progress_formatting() -> None:
    assert [duration(s) for s in (3.21, 302, 3720, None)] == ["3.2s", "5m02s", "1h02m", "?"]
    assert overhead_share(30.0, 40.0) == pytest.approx(0.25)
    assert overhead_share(None, 40.0) is None
    assert eta_seconds([10.0, 20.0], 3) == 45.0 and eta_seconds([], 2) is None
    failed = TrialRecord(
        number=5, state=TrialState.FAIL, fail_reason="apply: DeploymentError: boom"
    )
    best = TrialRecord(number=1, state=TrialState.COMPLETE, values=(0.61,))
    line = progress_line(
        TrialFinished(
            stage="search",
            record=failed,
            done=2,
            target=10,
            best=best,
            trial_seconds=4.0,
            eta_seconds=80.0,
            noise_sd=None,
            noise_n=0,
        )
    )
    assert line == (
        "[ 2/10] #5 FAIL: apply: DeploymentError: boom | best 0.6100 (#1) | 4.0s | ETA 1m20s"
    )
    # a fault's reason carries the dead process's log tail: the progress line stays one line
    tail = "apply: DeploymentFault: frontend exited\nlog /tmp/x.log:\nINFO a\nINFO b"
    line = progress_line(
        TrialFinished(
            stage="search",
            record=failed.model_copy(update={"fail_reason": tail}),
            done=2,
            target=10,
            best=None,
            trial_seconds=4.0,
            eta_seconds=None,
            noise_sd=None,
            noise_n=0,
        )
    )
    assert "\n" not in line
    assert line.startswith(
        "[ 2/10] #5 FAIL: apply: DeploymentFault: frontend exited "
        "(+3 log lines in its fail_reason) | 4.0s"
    )


def test_run_seed_never_replays_an_earlier_run() -> None:
    assert run_seed(7, 0, False, 1) == 7
    assert run_seed(7, 5, False, 1) == 12
    assert run_seed(7, 5, True, 1) != run_seed(7, 5, True, 2)
    assert run_seed(None, 5, True, 1) is None


def test_without_set_constraint_constraints_travel_in_user_attrs(tmp_path: Path) -> None:
    """The Optuna 4 path: no `trial.set_constraint`; `constraints_func` reads the attrs."""
    path = write_study(tmp_path, {"study.baseline": None})
    loaded = load_spec(path)
    stack = fake_stack()
    stack.artifacts = False
    study = optuna.create_study(direction="maximize")
    objective = Objective(loaded.spec, stack.services(None), use_set_constraint=False)  # type: ignore[arg-type]
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.constraints == {}
    assert constraints_from_attrs(trial) == list(trial.user_attrs["constraints"].values())
    assert len(constraints_from_attrs(trial)) == 3


def test_the_verdict_headline_is_its_concluding_line_not_a_later_suggestion() -> None:
    def config(trial: int, label: str, mean: float) -> ConfigResult:
        summary = Summary(n=3, mean=mean, sd=0.02)
        objective = ObjectiveResult(metric="score", direction="maximize", summary=summary)
        return ConfigResult(
            trial=trial, label=label, params={"router.overlap_score_credit": 3.9},
            overrides={}, frontend_args=[], objectives=[objective], feasible=True, violations=[],
        )  # fmt: skip

    edge = Edge("router.overlap_score_credit", "high", 3.9, 4.0, 0.05, False)
    verdict = Verdict(
        kind="no_winner", repeats=3, baseline=config(0, "#0 (baseline)", 0.69),
        configs=[config(4, "#4", 0.70)], winner=None, noise_sd=0.02, noise_half_width=0.065,
        edges=[edge],
    )  # fmt: skip
    body = verdict_lines(verdict)
    assert headline(verdict) == "no configuration beats the baseline beyond noise (±0.0650)"
    assert body[-2] == headline(verdict)
    assert body[-1].startswith("router.overlap_score_credit = 3.9 is within 5 % of the upper")
