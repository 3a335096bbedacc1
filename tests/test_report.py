"""`dynamo-tune report` on fake-driven studies: the file, what it loads, what it says.

The fake cluster (tests/fakes.py) is deterministic; `ModeOnlyMetrics`
(tests/fake_metrics_helpers.py) makes the router mode the only knob that moves the score and
adds a repeating TTFT jitter, so the knobs that did not matter are known by construction.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from fake_metrics_helpers import GRID, PARETO, RANDOM_12, FlatNoisyMetrics, ModeOnlyMetrics
from fakes import fake_stack, write_study
from report_helpers import listed_trials, read, remote_loads, text_of
from study_helpers import closing_study, open_study

from dynamo_tune.cli.main import main
from dynamo_tune.cli.run_output import TextReporter, next_steps
from dynamo_tune.errors import RunStopped
from dynamo_tune.study import load_spec, open_for_run, run_study_file
from dynamo_tune.study.confirmation.verdict import label_of
from dynamo_tune.study.confirmation.verdict_text import headline
from dynamo_tune.study.read.answers import verdict_of
from dynamo_tune.study.trial.selection import ranked


def _report(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[Path, str]:
    """Run `dynamo-tune report` on `path`; (the file written, its HTML)."""
    out = path.parent / "out" / "report.html"
    out.parent.mkdir(exist_ok=True)
    assert main(["report", str(path), "-o", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    assert f"-> {out} (" in printed
    return out, read(out)


def _check_self_contained_and_complete(html: str, path: Path) -> str:
    """Nothing loaded from another host; every trial listed. Returns the page's text."""
    assert remote_loads(html) == []
    with closing_study(path) as study:
        numbers = {t.number for t in study.trials}
    assert numbers and listed_trials(html) == numbers
    return text_of(html)


def test_a_confirmed_study_reports_its_winner_noise_and_idle_knobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {**RANDOM_12, "study.confirm": {"top": 2, "repeats": 3}})
    stack = fake_stack()
    stack.metrics = ModeOnlyMetrics(stack.cluster)
    printed = io.StringIO()
    run_study_file(path, stack.services, report=TextReporter(printed))
    assert printed.getvalue()  # the run's own lines; the CLI then prints where to look next:
    assert next_steps(path)[-1].startswith(f"report:  dynamo-tune report {path}  (")
    out, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    verdict = verdict_of(open_study(path))
    assert verdict is not None and verdict.winner is not None
    assert headline(verdict).startswith("confirmed winner: #")
    assert headline(verdict) in text
    assert "--router-mode kv" in text  # the winner's frontend flags, paste-ready
    assert "router: mode: kv" in text  # ... and as router YAML
    # what was measured
    assert "search: 12 COMPLETE (target 12 COMPLETE); confirmation: 9 COMPLETE" in text
    assert "KVE ceiling 0.800" in text  # FakeWorkload reports kve_ceiling 0.8
    assert "constraints ttft_p95_seconds <= 2" in text
    # the kv-only knobs cannot move this fake's score: no effect beyond its ±4 % jitter
    assert "router.temperature: no effect beyond noise over 0–1" in text
    assert "router.overlap_score_credit: no effect beyond noise over 0–2" in text
    assert "router.prefill_load_scale: no effect beyond noise over 0.25–4 (log)" in text
    assert re.search(
        r"router\.mode score matters: score \+0\.\d+ at router\.mode=kv vs "
        r"router\.mode=round-robin with the same hints\.session_id",
        text,
    )
    # session ids cannot move it either: compared within one router mode, only the jitter
    assert "hints.session_id: no effect beyond noise over true, false" in text
    # plots: history, KVE vs TTFT, importances, slices, confirmation (no Pareto front)
    drawn = re.findall(r'<div class="figure" id="figure-([\w-]+)">', html)
    assert drawn == ["history-0", "kve-ttft", "importance-0", "slice", "confirm-0"]
    # 12 search trials: too few for importances (the reason instead); slices of the knobs
    # that varied, router.mode (the one that matters) first
    assert html.count('<div class="plot"') == 4
    assert "not drawn: 12 COMPLETE search trial(s), fewer than 20." in text
    assert "Slices of 2 knob(s), that varied, those that matter in the knob section first" in text
    assert os.path.getsize(out) < 8_000_000


def test_nothing_beating_the_baseline_is_the_headline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {**GRID, "study.confirm": {"top": 2, "repeats": 3}})
    stack = fake_stack()
    stack.metrics = FlatNoisyMetrics(stack.cluster)
    run_study_file(path, stack.services)
    _, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    assert (
        '<p class="verdict no-winner">no configuration beats the baseline beyond noise (±' in html
    )
    assert "frontend flags" not in text  # nothing to paste
    # every measurement is round-robin-like: temperature cannot matter
    assert "router.temperature: no effect beyond noise over 0, 0.3, 0.6" in text


def test_an_unconfirmed_study_says_so_and_cannot_judge_its_knobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 5})  # BASE_STUDY: confirm false
    run_study_file(path, fake_stack().services)
    _, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    assert '<p class="verdict unconfirmed">UNCONFIRMED raw best' in html
    with closing_study(path) as study:
        best = max(
            (t for t in study.trials if not t.user_attrs.get("baseline")), key=lambda t: t.value
        )
    assert f"best #{best.number} {best.value:.4f} vs baseline #0" in text
    assert "noise of score unknown: no configuration was measured twice" in text
    assert "Cannot tell: the measurement noise is unknown" in text
    assert "no effect beyond noise" not in text.split("Knobs that did not matter")[1].split(
        "How this is decided")[0]  # fmt: skip


def test_a_pareto_study_draws_its_front_and_each_objective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(
        tmp_path,
        {
            **RANDOM_12,
            "study.sampler": {"name": "nsga2", "seed": 1},
            "objective.directions": PARETO,
            "study.confirm": {"top": 2, "repeats": 2},
        },
    )
    run_study_file(path, fake_stack().services)
    _, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    assert "confirmed Pareto set:" in text
    drawn = re.findall(r'<div class="figure" id="figure-([\w-]+)">', html)
    assert drawn == [
        "history-0", "history-1", "kve-ttft", "importance-0", "importance-1", "slice",
        "pareto", "confirm-0", "confirm-1",
    ]  # fmt: skip
    assert "objectives maximize kv_efficiency; minimize ttft_p95_seconds" in text
    assert "The study file changed" not in text
    path.write_text(path.read_text().replace("turns: 2", "turns: 3"))  # comments do not count
    _, html = _report(path, capsys)
    assert "The study file changed since the study last ran" in text_of(html)


def test_an_unconfirmed_pareto_study_lists_its_raw_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = {**RANDOM_12, "objective.directions": PARETO, "study.n_trials": 6}
    path = write_study(tmp_path, changes)  # BASE_STUDY: confirm false
    run_study_file(path, fake_stack(deployment={"fail_apply": {2}}).services)
    _, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    with closing_study(path) as study:
        front = ranked(study)
        failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert front and len(failed) == 1
    labels = ", ".join(label_of(t) for t in front)
    assert "UNCONFIRMED raw best (one measurement, biased upward" in text
    assert f"`dynamo-tune confirm` measures it again): best {labels}" in text
    assert "DeploymentError: frontend exited with code 1: bad flag" in text  # its fail reason
    drawn = re.findall(r'<div class="figure" id="figure-([\w-]+)">', html)
    assert "pareto" in drawn and not any(d.startswith("confirm") for d in drawn)


def test_a_study_whose_trials_all_failed_still_gets_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"study.max_failures_in_a_row": 2})
    with pytest.raises(RunStopped):
        run_study_file(path, fake_stack(workload={"fail": True}).services)
    _, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    assert "no trial completed: all 2 finished trials FAILed" in text
    assert "no result: no search trial COMPLETE yet" in text
    assert text.count("workload: WorkloadError: command exited with code 1: boom") == 2
    assert "not drawn: no COMPLETE trial with both KVE and TTFT p95" in text


def test_a_running_study_is_reported_as_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    run_study_file(path, fake_stack().services)
    with closing_study(path) as study:
        running = study.ask()  # another runner's trial, in progress
    _, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    assert f"still running: 1 trial(s) RUNNING (numbers #{running.number})" in text
    assert f'<tr class="RUNNING" id="trial-{running.number}">' in html


def test_a_study_with_only_its_queued_baseline_gets_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 3})
    open_for_run(load_spec(path))  # created: the baseline is enqueued, nothing measured
    _, html = _report(path, capsys)
    text = _check_self_contained_and_complete(html, path)
    assert "no trial has finished yet 1 trial(s) queued (WAITING: #0)" in text
    assert "search incomplete: 0 of 3 search trials COMPLETE" in text
    assert "no result: no search trial COMPLETE yet" in text
    assert "KVE ceiling not measured yet (no COMPLETE trial)" in text


def test_default_output_is_beside_the_study_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2})
    run_study_file(path, fake_stack().services)
    assert main(["report", str(path)]) == 0
    assert (tmp_path / "fake.report.html").stat().st_size > 1_000_000  # plotly.js inlined
    assert "fake.report.html" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no study", "no study storage at"),
        ("output is a folder", "is a folder; name the HTML file to write"),
        ("output under a file", "-o: cannot write"),
        ("bad study file", "study.n_trails: unknown key"),
    ],
)
def test_bad_input_is_a_clear_error_and_exit_2_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    path = write_study(tmp_path, {"study.n_trials": 2})
    if setup != "no study":
        run_study_file(path, fake_stack().services)
    before = _snapshot(path) if setup != "no study" else None
    original = path.read_text()
    out: Path = tmp_path / "report.html"
    if setup == "output is a folder":
        out.mkdir()
    elif setup == "output under a file":
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "report.html"
    elif setup == "bad study file":
        path.write_text(path.read_text().replace("n_trials", "n_trails"))
    assert main(["report", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dynamo-tune: error: ") and message in err and "Traceback" not in err
    assert not out.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []
    if before is not None:
        path.write_text(original)
        assert _snapshot(path) == before


def _snapshot(path: Path) -> list[Any]:
    with closing_study(path) as study:
        return [(t.number, t.state, t.values, t.user_attrs, t.params) for t in study.trials]


def test_optuna_logging_and_warnings_stay_off_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two COMPLETE trials: PED-ANOVA warns that its quantiles hold too few trials
    path = write_study(tmp_path, {"study.n_trials": 2})
    run_study_file(path, fake_stack().services)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    out = tmp_path / "r.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert len(captured.out.strip().splitlines()) == 2
