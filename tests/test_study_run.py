"""The study runner end to end on the fakes: objective, storage, attrs, resume, failures."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from fakes import FakeClock, FakeMetricsBackend, fake_stack, write_study
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from study_helpers import REQUIRED_ATTRS, open_storage_of, open_study

from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.errors import RunStopped, SpecError
from dynamo_tune.study import run_study_file
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.trial.outcome import NO_DATA, recompute_score


def _states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials()]


def test_study_runs_end_to_end_and_stores_everything(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 4})
    stack = fake_stack()
    out = io.StringIO()
    summary = run_study_file(path, stack.services, report=TextReporter(out))
    assert (summary.target, summary.complete, summary.ran) == (4, 4, [0, 1, 2, 3])
    study = open_study(path)
    trials = study.get_trials()
    assert _states(study) == ["COMPLETE"] * 4
    loaded = load_spec(path)
    assert study.user_attrs["spec_sha256"] == loaded.sha256
    assert study.user_attrs["study_yaml"] == path.read_text()
    # the baseline ran first, once, as the reference configuration
    assert trials[0].user_attrs["baseline"] is True
    assert trials[0].params["router.mode"] == "round-robin"
    # a kv-only knob is not suggested under round-robin (conditional search space)
    assert "router.temperature" not in trials[0].params
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials) == 1
    for t in trials:
        missing = [k for k in REQUIRED_ATTRS if k not in t.user_attrs]
        assert not missing, missing
        assert t.value == pytest.approx(recompute_score(t.user_attrs, loaded.spec.objective))
        assert 0.0 <= t.value <= 1.0
        assert t.user_attrs["kv_efficiency_source"] == "frontend"
        names = sorted(m.filename for m in get_all_artifact_meta(t, storage=open_storage_of(path)))
        assert names == [f"trial{t.number}-metrics.json", f"trial{t.number}-workload.json"]
        # the trial's constraints reached Optuna (ttft_p95 <= 2.0 -> ttft - 2.0)
        assert t.constraints["ttft_p95_seconds<=2"] == pytest.approx(
            t.user_attrs["ttft_p95_seconds"] - 2.0
        )
    # windows do not overlap and are separated by >= 2 scrape intervals (1 s here)
    windows = sorted((t.user_attrs["window_start"], t.user_attrs["window_end"]) for t in trials)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start - end >= 2.0
    # one trial's order, as the objective defines it
    events = [e for e, _ in stack.cluster.events]
    assert events[0] == "start" and events[-1] == "stop"
    assert events[1:7] == ["apply", "ready", "mark_start", "workload", "health", "collect"]
    text = out.getvalue()
    assert "[4/4]" in text and "ETA" in text and "vs baseline #0" in text


def test_resume_continues_to_a_total_of_n_trials(tmp_path: Path) -> None:
    # kv fixed: every sampled trial draws continuous knobs, so a replayed draw is a repeat
    kv_only = {"search_space/router.mode": None, "study.baseline": {"hints.session_id": False}}
    path = write_study(tmp_path, {"study.n_trials": 2, **kv_only})
    run_study_file(path, fake_stack().services)
    write_study(tmp_path, {"study.n_trials": 3, **kv_only})
    run_study_file(path, fake_stack().services)
    assert _states(open_study(path)) == ["COMPLETE"] * 3
    out = io.StringIO()
    stack = fake_stack()
    run_study_file(path, stack.services, report=TextReporter(out))
    assert "search: the target is reached" in out.getvalue()
    assert not stack.cluster.started
    run_study_file(path, fake_stack().services, n_trials=5)
    study = open_study(path)
    assert _states(study) == ["COMPLETE"] * 5
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.get_trials()) == 1
    params = [tuple(sorted(t.params.items())) for t in study.get_trials()]
    assert len(set(params)) == len(params), "a resumed sampler replayed earlier points"


def test_changed_search_space_is_refused_unless_allowed(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 1})
    run_study_file(path, fake_stack().services)
    write_study(
        tmp_path,
        {"study.n_trials": 2, "search_space/router.temperature/high": 0.5},
    )
    with pytest.raises(SpecError, match="different search_space"):
        run_study_file(path, fake_stack().services)
    assert _states(open_study(path)) == ["COMPLETE"]
    run_study_file(path, fake_stack().services, allow_changed_space=True)
    assert _states(open_study(path)) == ["COMPLETE"] * 2


def test_crash_is_fail_with_reason_and_the_run_goes_on(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    stack = fake_stack(deployment={"fail_apply": {1}})
    run_study_file(path, stack.services)
    trials = open_study(path).get_trials()
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]
    assert trials[1].user_attrs["fail_reason"].startswith("apply: DeploymentError: frontend")


def test_repeated_crashes_stop_the_run_and_stop_the_deployment(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 5, "study.max_failures_in_a_row": 2})
    stack = fake_stack(workload={"fail": True})
    stopped = r"2 trials in a row failed \(study.max_failures_in_a_row = 2\); last: workload: Work"
    with pytest.raises(RunStopped, match=stopped):
        run_study_file(path, stack.services)
    assert _states(open_study(path)) == ["FAIL", "FAIL"]
    assert stack.cluster.stopped


def test_ctrl_c_fails_the_current_trial_and_stops_the_deployment(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    stack = fake_stack(deployment={"interrupt_apply": {1}})
    with pytest.raises(KeyboardInterrupt):
        run_study_file(path, stack.services)
    trials = open_study(path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]
    assert trials[1].user_attrs["fail_reason"] == "interrupted by SIGINT (Ctrl-C) during apply"
    assert stack.cluster.stopped
    run_study_file(path, fake_stack().services)
    assert _states(open_study(path)).count("COMPLETE") == 3


def test_incomplete_metrics_complete_with_the_violation_recorded(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2})
    stack = fake_stack(metrics={"drop": ("itl_p95",)})
    run_study_file(path, stack.services)
    for t in open_study(path).get_trials():
        assert t.state == TrialState.COMPLETE
        assert t.value == 0.0
        assert t.constraints["metrics_complete"] == 1.0
        assert f"metrics incomplete: itl_p95_seconds {NO_DATA}" in t.user_attrs["violations"]
        assert t.user_attrs["errors"] == ["itl_p95: no data"]
        assert t.user_attrs["feasible"] is False


class _NoisyMetrics(FakeMetricsBackend):
    """TTFT scaled per repeat: 1.0, 3.0, 2.0, ... (a noisy measurement)."""

    factors = (1.0, 3.0, 2.0)

    async def collect(self, start: float, end: float):  # type: ignore[no-untyped-def]
        result = await super().collect(start, end)
        factor = self.factors[(len(self.windows) - 1) % len(self.factors)]
        assert result.ttft_p95 is not None
        return result.model_copy(update={"ttft_p95": result.ttft_p95 * factor})


def test_repeats_take_the_median_and_store_the_spread(tmp_path: Path) -> None:
    path = write_study(
        tmp_path,
        {
            "study.n_trials": 1,
            "study.baseline": None,
            "objective.repeats": 3,
            "objective.ttft_target_seconds": 0.2,
            "search_space": {"router.mode": {"type": "categorical", "choices": ["kv"]}},
        },
    )
    stack = fake_stack()
    stack.metrics = _NoisyMetrics(stack.cluster)
    run_study_file(path, stack.services)
    (trial,) = open_study(path).get_trials()
    # the fake cluster under kv with Dynamo's defaults and session ids (the hints' default):
    # kve 0.58, ttft 0.40 s, itl 0.04 s; ttft x 1, 3, 2 ->
    # 0.4 * 0.58 + 0.4 * min(1, 0.2 / ttft) + 0.2 * 1 = 0.632, 0.498667, 0.532
    assert trial.user_attrs["repeat_values"] == pytest.approx([0.632, 0.498667, 0.532], abs=1e-6)
    assert trial.value == pytest.approx(0.532)  # the median repeat
    assert trial.user_attrs["value_spread"] == pytest.approx(0.133333, abs=1e-6)
    assert trial.value == pytest.approx(
        recompute_score(trial.user_attrs, load_spec(path).spec.objective)
    )
    assert [e for e, _ in stack.cluster.events].count("reset") == 2
    assert len(get_all_artifact_meta(trial, storage=open_storage_of(path))) == 6


def test_pareto_directions_store_several_values(tmp_path: Path) -> None:
    path = write_study(
        tmp_path,
        {
            "study.n_trials": 3,
            "study.sampler": {"name": "nsga2", "seed": 1},
            "objective.directions": [
                {"maximize": "kv_efficiency"},
                {"minimize": "ttft_p95_seconds"},
            ],
        },
    )
    run_study_file(path, fake_stack().services)
    study = open_study(path)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    for t in study.get_trials():
        assert t.values == [t.user_attrs["kv_efficiency"], t.user_attrs["ttft_p95_seconds"]]


def test_gp_without_torch_is_one_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    # torch is not in the dev environment (a CPU build is several GB from PyPI): studies/README.md
    path = write_study(tmp_path, {"study.sampler": {"name": "gp", "seed": 3}})
    cpu_build = r"`UV_DEFAULT_INDEX=https://download\.pytorch\.org/whl/cpu uv pip install torch`"
    with pytest.raises(SpecError, match=f"gp needs torch: install with {cpu_build}$"):
        run_study_file(path, fake_stack().services)
    assert not (tmp_path / "fake.db").exists()


@pytest.mark.parametrize("name", ["tpe", "random", "grid", "nsga2", "qmc", "cmaes"])
def test_every_sampler_runs_seeded(tmp_path: Path, name: str) -> None:
    changes: dict[str, object] = {"study.n_trials": 3, "study.sampler": {"name": name, "seed": 3}}
    if name == "grid":
        changes["search_space/router.overlap_score_credit/step"] = 1.0
        changes["search_space/router.temperature/step"] = 0.5
        changes["search_space/router.prefill_load_scale"] = {
            "type": "categorical",
            "choices": [0.5, 1.0],
        }
    path = write_study(tmp_path, changes)
    run_study_file(path, fake_stack().services)
    first = [t.params for t in open_study(path).get_trials()]
    (tmp_path / "fake.db").unlink()
    run_study_file(path, fake_stack().services)
    assert [t.params for t in open_study(path).get_trials()] == first, (
        "seeded sampler not reproducible"
    )


def test_journal_storage_and_relative_paths(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2, "study.storage": "journal:runs/j.log"})
    (tmp_path / "runs").mkdir()  # the storage's folder must exist (never created)
    run_study_file(path, fake_stack().services)
    assert (tmp_path / "runs" / "j.log").exists()
    assert (tmp_path / "runs" / "j.log.artifacts").is_dir()
    assert _states(open_study(path)) == ["COMPLETE"] * 2


def test_quiet_gap_waits_two_scrape_intervals(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3, "study.baseline": None})
    clock = FakeClock()
    stack = fake_stack(clock=clock, deployment={"scrape_interval_s": 5.0})
    run_study_file(path, stack.services)
    assert len(clock.slept) >= 3 + 2  # 3 workloads + 2 gaps
    gaps = [s for s in clock.slept if s != 10.0]
    assert gaps and all(g == pytest.approx(10.1, abs=1e-4) for g in gaps)


def test_the_quiet_gap_counts_from_the_end_of_a_steady_windows_drain(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3, "study.baseline": None})
    clock = FakeClock()
    stack = fake_stack(
        clock=clock, deployment={"scrape_interval_s": 5.0}, workload={"drain_s": 4.0}
    )
    run_study_file(path, stack.services)
    # each window closes 4 s before its run's traffic ends: the gap is 10.1 s after the traffic
    gaps = [s for s in clock.slept if s != 10.0]
    assert len(gaps) == 2 and all(g == pytest.approx(10.1, abs=1e-4) for g in gaps)


def test_a_failed_trial_still_gets_a_quiet_gap_before_the_next_window(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2, "study.baseline": None})
    clock = FakeClock()
    stack = fake_stack(clock=clock, workload={"crash_runs": {0}})
    run_study_file(path, stack.services)
    workload_starts = [t for e, t in stack.cluster.events if e == "workload"]
    crashed_at = workload_starts[0] + 10.0  # the crashed run sent traffic for its 10 s
    assert workload_starts[1] - crashed_at >= 2.0


def test_a_metrics_source_that_answers_nothing_fails_the_trial_with_its_reason(
    tmp_path: Path,
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2, "study.max_failures_in_a_row": 2})
    stack = fake_stack(metrics={"unreachable": True})
    with pytest.raises(RunStopped, match="2 trials in a row failed"):
        run_study_file(path, stack.services)
    *trials, queued = open_study(path).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    # the baseline's third attempt waits for the next run (recovery.BASELINE_ATTEMPTS)
    assert queued.state == TrialState.WAITING and queued.user_attrs["retry_of"] == 1
    for t in trials:
        assert t.user_attrs["fail_reason"] == (
            "collect: MeasurementFault: the metrics source could not be read: "
            "prometheus at http://127.0.0.1:10 is unreachable: connection refused"
        )
