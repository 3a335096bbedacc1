"""The confirmation stage, presets and pasteable values, driven by the fake cluster.

Expected scores are computed here from the fake cluster's model (tests/fakes.py,
`true_metrics`) with the default weights 0.4 / 0.4 / 0.2 and targets 0.5 s / 0.05 s:
    kv, credit 1, scale 1, session ids, temperature t: kve 0.58 - 0.2 t, ttft 0.40 + 0.3 t,
    itl 0.04 + 0.01 t  ->  t=0: 0.832, t=0.3: 0.808, t=0.6: 0.7288
    round-robin: kve 0.25, ttft 0.9, itl 0.06  ->  0.1 + 0.4·0.5/0.9 + 0.2·0.05/0.06 = 0.48889
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_metrics_helpers import GRID, FlatNoisyMetrics
from fakes import FakeMetricsBackend, fake_stack, write_study
from optuna.trial import TrialState
from study_helpers import open_study, sigkill_when

from dynamo_tune.cli.main import main
from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.metrics import DynamoMetricsResult
from dynamo_tune.study import confirm_study_file, run_study_file
from dynamo_tune.study.confirmation.verdict_text import lines as verdict_lines
from dynamo_tune.study.read.answers import verdict_of

BASELINE_SCORE = 0.1 + 0.4 * 0.5 / 0.9 + 0.2 * 0.05 / 0.06


class LuckyMetrics(FakeMetricsBackend):
    """The first measurement of temperature 0.6 is a lucky draw (TTFT 0.1 s, KVE 0.9: score
    0.96); every other measurement is the cluster's truth with TTFT jittered by -2..+2 %
    (a cycle of 5, so members of a 3- or 4-configuration round see different jitter)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lucky_done = False

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        result = await super().collect(start, end)
        assert self.cluster.router is not None and result.ttft_p95 is not None
        if self.cluster.router.temperature == 0.6 and not self.lucky_done:
            self.lucky_done = True
            return result.model_copy(update={"ttft_p95": 0.1, "frontend_cached_tokens_rate": 90.0})
        jitter = 1 + 0.01 * ((len(self.windows) * 3) % 5 - 2)
        return result.model_copy(update={"ttft_p95": result.ttft_p95 * jitter})


def _confirmations(path: Path) -> list[Any]:
    return [t for t in open_study(path).get_trials() if t.user_attrs.get("stage") == "confirm"]


def test_a_lucky_draw_is_not_the_confirmed_winner(tmp_path: Path) -> None:
    path = write_study(tmp_path, {**GRID, "study.confirm": {"top": 3, "repeats": 3}})
    stack = fake_stack()
    stack.metrics = LuckyMetrics(stack.cluster)
    out = io.StringIO()
    summary = run_study_file(path, stack.services, report=TextReporter(out))
    trials = open_study(path).get_trials()
    search = trials[:4]
    lucky = next(t for t in search if t.params["router.temperature"] == 0.6 and not
                 t.user_attrs.get("baseline"))  # fmt: skip
    assert lucky.value == pytest.approx(0.4 * 0.9 + 0.4 + 0.2)  # the raw best: 0.96
    best_kv = next(
        t for t in search if t.params["router.temperature"] == 0.0 and not t.user_attrs.get(
            "baseline")
    )  # fmt: skip
    confirmations = _confirmations(path)
    assert len(confirmations) == 12 and all(t.state == TrialState.COMPLETE for t in confirmations)
    # interleaved: baseline, then the three configurations best first, round after round
    order = [t.user_attrs["confirms"] for t in confirmations]
    assert order[:4] == order[4:8] == order[8:] and order[0] == 0
    assert order[1] == lucky.number  # selected on its lucky search value ...
    verdict = summary.verdict
    assert verdict is not None and verdict.winner == best_kv.number  # ... not confirmed
    by_trial = {c.trial: c for c in verdict.configs}
    assert by_trial[best_kv.number].objectives[0].summary.mean == pytest.approx(0.832)
    assert by_trial[lucky.number].objectives[0].summary.mean < 0.80
    assert verdict.baseline.objectives[0].summary.mean == pytest.approx(BASELINE_SCORE, abs=0.01)
    text = out.getvalue()
    assert f"confirmed winner: #{best_kv.number}" in text and "Welch's t" in text
    assert verdict_of(open_study(path)) == verdict


def test_nothing_beating_the_baseline_is_said_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {**GRID, "study.confirm": {"top": 2, "repeats": 3}})
    stack = fake_stack()
    stack.metrics = FlatNoisyMetrics(stack.cluster)
    out = io.StringIO()
    summary = run_study_file(path, stack.services, report=TextReporter(out))
    assert summary.verdict is not None and summary.verdict.winner is None
    assert "no configuration beats the baseline beyond noise (±" in out.getvalue()
    assert main(["best", str(path), "--format", "flags"]) == 1
    assert "no configuration beats the baseline beyond noise" in capsys.readouterr().err
    assert main(["best", str(path), "--format", "flags", "--unconfirmed"]) == 0
    assert "unconfirmed (--unconfirmed)" in capsys.readouterr().err


def test_best_prints_the_flags_the_confirmation_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = {"study.n_trials": 6, "study.sampler": {"name": "random", "seed": 5}}
    path = write_study(tmp_path, {**changes, "study.confirm": {"top": 2, "repeats": 2}})
    summary = run_study_file(path, fake_stack().services)
    assert summary.verdict is not None and summary.verdict.winner is not None
    assert main(["best", str(path), "--format", "flags"]) == 0
    printed = capsys.readouterr().out.split()
    measured = [
        t for t in _confirmations(path) if t.user_attrs["confirms"] == summary.verdict.winner
    ]
    assert len(measured) == 2
    for t in measured:
        assert t.user_attrs["frontend_args"] == printed
    # every float the sampler proposed has at most 3 significant digits
    floats = [v for t in open_study(path).get_trials() for v in t.params.values()
              if isinstance(v, float)]  # fmt: skip
    assert floats and all(float(f"{v:.3g}") == v for v in floats)


def test_confirm_command_extends_and_a_kill_midway_resumes_to_exactly_k_r_plus_r(
    tmp_path: Path,
) -> None:
    path = write_study(tmp_path, {**GRID, "study.confirm": {"top": 2, "repeats": 2}})
    cmd = [sys.executable, str(Path(__file__).parent / "fakes.py"), str(path),
           "--trial-seconds", "0.4"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        sigkill_when(
            proc,
            lambda: any(t.state == TrialState.RUNNING for t in _safe_confirmations(path)),
            timeout_s=60,
        )
    finally:
        assert proc.stdout is not None
        proc.stdout.close()
    run_study_file(path, fake_stack().services)
    done = [t for t in _confirmations(path) if t.state == TrialState.COMPLETE]
    assert len(done) == 2 * 2 + 2  # K x R + R
    killed = [t for t in _confirmations(path) if t.state == TrialState.FAIL]
    assert len(killed) == 1 and "killed" in killed[0].user_attrs["fail_reason"]
    # `confirm` extends the plan: one more round of every member
    confirm_study_file(path, fake_stack().services, repeats=3)
    done = [t for t in _confirmations(path) if t.state == TrialState.COMPLETE]
    assert len(done) == 3 * 3
    verdict = verdict_of(open_study(path))
    assert verdict is not None and verdict.repeats == 3


def _safe_confirmations(path: Path) -> list[Any]:
    try:
        return _confirmations(path)
    except KeyError:  # the study is not created yet
        return []


def test_presets_are_enqueued_once_across_resumes(tmp_path: Path) -> None:
    entries: list[Any] = ["agentic", {"router.mode": "kv", "router.temperature": 0.25}]
    changes: dict[str, Any] = {"study.n_trials": 4, "study.enqueue": entries}
    path = write_study(tmp_path, changes)
    run_study_file(path, fake_stack().services)
    trials = open_study(path).get_trials()
    assert [t.user_attrs.get("preset") for t in trials[:3]] == [None, "agentic", "enqueue[1]"]
    assert trials[1].params["router.overlap_score_credit"] == 2.0
    assert trials[1].params["router.prefill_load_scale"] == 4.0
    assert trials[1].user_attrs["overrides"] == {"router.decode_active_request_weight": 64.0}
    assert trials[2].params["router.temperature"] == 0.25
    write_study(tmp_path, {**changes, "study.n_trials": 6})
    run_study_file(path, fake_stack().services)
    presets = [t.user_attrs.get("preset") for t in open_study(path).get_trials()]
    assert presets.count("agentic") == 1 and presets.count("enqueue[1]") == 1
    entries.append({"router.mode": "kv", "router.temperature": 0.75})
    write_study(tmp_path, {**changes, "study.n_trials": 7, "study.enqueue": entries})
    run_study_file(path, fake_stack().services)
    trials = open_study(path).get_trials()
    assert [t.user_attrs.get("preset") for t in trials].count("enqueue[2]") == 1
    assert trials[6].params["router.temperature"] == 0.75  # measured next, right away


def test_dynamo_defaults_preset_is_dynamos_own_parser_defaults(tmp_path: Path) -> None:
    import argparse

    from dynamo.frontend.frontend_args import FrontendArgGroup

    parser = argparse.ArgumentParser()
    FrontendArgGroup().add_arguments(parser)
    path = write_study(tmp_path, {"study.n_trials": 2, "study.enqueue": ["dynamo-defaults"]})
    run_study_file(path, fake_stack().services)
    trial = open_study(path).get_trials()[1]
    assert trial.user_attrs["preset"] == "dynamo-defaults"
    assert trial.params["router.mode"] == "kv"
    for name, dest in (
        ("router.overlap_score_credit", "overlap_score_credit"),
        ("router.temperature", "router_temperature"),
        ("router.prefill_load_scale", "prefill_load_scale"),
    ):
        default = parser.get_default(dest)
        assert default is not None, dest
        assert trial.params[name] == float(default), name


def test_a_pareto_study_confirms_its_front_per_objective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directions = [{"maximize": "kv_efficiency"}, {"minimize": "ttft_p95_seconds"}]
    path = write_study(
        tmp_path,
        {
            **GRID,
            "study.sampler": {"name": "nsga2", "seed": 1},
            "objective.directions": directions,
            "study.confirm": {"top": 2, "repeats": 2},
        },
    )
    summary = run_study_file(path, fake_stack().services)
    verdict = summary.verdict
    assert verdict is not None and verdict.winner is None
    assert 1 <= len(verdict.configs) <= 2
    for config in verdict.configs:
        kve, ttft = config.objectives
        assert (kve.metric, kve.direction) == ("kv_efficiency", "maximize")
        assert (ttft.metric, ttft.direction) == ("ttft_p95_seconds", "minimize")
        temperature = config.params["router.temperature"]
        # the fake cluster, kv with session ids: kve 0.58 - 0.2 t, ttft 0.40 + 0.3 t (exact)
        assert kve.summary.mean == pytest.approx(0.58 - 0.2 * temperature)
        assert ttft.summary.mean == pytest.approx(0.40 + 0.3 * temperature)
        assert kve.difference is not None and ttft.difference is not None
        assert kve.difference.diff == pytest.approx(0.58 - 0.2 * temperature - 0.25)
    assert any("Pareto study" in line for line in verdict_lines(verdict))
    assert main(["best", str(path), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["confirmed"] is True
    assert [b["number"] for b in shown["best"]] == [c.trial for c in verdict.configs]


def test_a_shortfall_queued_twice_is_measured_once(tmp_path: Path) -> None:
    """Two runners that plan the confirmation at once both queue the shortfall (the queueing
    takes no lock); the stage measures each configuration `repeats` times, prunes the rest."""
    from dynamo_tune.study.confirmation import plan as confirmation_plan
    from dynamo_tune.study.run.stages import ENOUGH_MEASURED
    from dynamo_tune.study.trial.record import enqueue

    path = write_study(tmp_path, {**GRID, "study.confirm": False})
    stack = fake_stack()
    run_study_file(path, stack.services)
    study = open_study(path)
    plan = confirmation_plan.extend_plan(study, 2, 2)
    assert plan is not None
    assert confirmation_plan.enqueue_missing(study, plan) == 6
    for t in study.get_trials(states=(TrialState.WAITING,)):  # the second runner's copies
        enqueue(study, t.system_attrs["fixed_params"], t.user_attrs)
    confirm_study_file(path, stack.services, top=2, repeats=2)
    confirmations = _confirmations(path)
    assert len(confirmations) == 12
    complete: dict[int, int] = {}
    for t in confirmations:
        if t.state == TrialState.COMPLETE:
            complete[t.user_attrs["confirms"]] = complete.get(t.user_attrs["confirms"], 0) + 1
        else:
            assert t.state == TrialState.PRUNED
            assert t.user_attrs["fail_reason"] == ENOUGH_MEASURED
    assert complete == {n: 2 for n in plan.members}
