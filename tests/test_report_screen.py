"""The screen stage in `trials` and the report: its size, its best configurations, which of them
were measured live, and screen vs live per configuration.

The screen is the real one (`Screening`: Dynamo's virtual-time replay, in-process, a fraction
of a second on a tiny workload); the live trials are told by hand, as the live search would
have measured the configurations the screen queued.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from fakes import write_study
from report_helpers import listed_trials, read, remote_loads, text_of
from study_helpers import open_study

from dynamo_tune.cli.main import main
from dynamo_tune.report.screen_figure import rho_text, screen_live_plot
from dynamo_tune.study import build_services, load_spec, open_for_run
from dynamo_tune.study.confirmation.agreement import AgreementPair, ScreenAgreement
from dynamo_tune.study.confirmation.verdict_text import screen_line
from dynamo_tune.study.read.screen_view import ScreenView, screen_view
from dynamo_tune.study.run.screening import Screening
from dynamo_tune.study.spec.space import SearchSpace
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.store.screen_study import load_screen_study, open_screen_study
from dynamo_tune.study.trial.attr_keys import TrialAttr

os.environ.setdefault("DYN_LOG", "warn")

TINY: dict[str, Any] = {
    "study.screen": {"trials": 6, "top": 2, "repeats": 1},
    "study.enqueue": ["agentic"],
    "workload": {
        "kind": "agentic",
        "sessions": 8,
        "turns": 2,
        "system_prompt_tokens": 64,
        "session_context_tokens": 64,
        "appended_tokens": 16,
        "output_tokens": 4,
    },
}


def _screened(tmp_path: Path) -> tuple[Path, StudyHandle]:
    """A study whose screen ran (nothing live measured yet)."""
    path = write_study(tmp_path, TINY)
    handle = open_for_run(load_spec(path))
    Screening(handle, build_services(handle).workload_for, lambda e: None).run(handle.study)
    return path, handle


def load_screen_view(handle: StudyHandle) -> ScreenView | None:
    """What `trials` and the report read: the screen study, summed up (None: no screen)."""
    screen = load_screen_study(handle)
    if screen is None:
        return None
    return screen_view(handle.study, screen, handle.loaded.spec)


def _measure_live(path: Path, scores: dict[int, float]) -> None:
    """Tell every queued live trial as measured: live trial n scores `scores[n]` (through a
    storage without the run's heartbeat)."""
    space = SearchSpace(load_spec(path).spec.search_space)
    study = open_study(path)
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    for _ in waiting:
        trial = study.ask()
        params = space.suggest(trial)
        score = scores.get(trial.number, 0.3 + 0.01 * trial.number)
        trial.set_user_attr(TrialAttr.SCORE, score)
        trial.set_user_attr(TrialAttr.KV_EFFICIENCY, score / 2)
        trial.set_user_attr(TrialAttr.TTFT_P95, 0.2)
        trial.set_user_attr(TrialAttr.ROUTER_CONFIG, {"mode": params["router.mode"]})
        study.tell(trial, score)


def test_the_screen_view_lists_size_best_and_what_was_measured_live(tmp_path: Path) -> None:
    path, handle = _screened(tmp_path)
    _measure_live(path, {0: 0.5, 1: 0.6, 2: 0.7, 3: 0.4, 4: 0.45})
    view = load_screen_view(handle)
    assert view is not None
    assert view.name == "fake.screen"
    assert (view.complete, view.target, view.repeats, view.top) == (6, 6, 1, 2)
    assert view.queued and len(view.queued) <= 2  # the top 2, distinct and not measured yet
    by_trial = {r.screen_trial: r for r in view.rows}
    # the baseline, the preset and both queued configurations are listed, with their live trials
    roles = {r.role: r for r in view.rows}
    assert roles["baseline"].live_trials == [0] and roles["baseline"].live_score == 0.5
    assert roles["agentic"].live_trials == [1]
    for n in view.queued:
        assert by_trial[n].queued and len(by_trial[n].live_trials) == 1
        assert by_trial[n].live_score is not None
    ranks = [r.rank for r in view.rows if r.rank is not None]
    assert ranks[: min(len(ranks), 5)] == list(range(1, min(len(ranks), 5) + 1))
    scores = [r.score for r in view.rows if r.rank is not None and r.rank <= 5]
    assert scores == sorted(scores, reverse=True)
    for r in view.rows:
        assert r.metrics["kv_efficiency"] is not None and r.metrics["ttft_p95_seconds"] is not None
    # the agreement pairs exactly the configurations measured both ways
    paired = {p.screen_trial: p for p in view.agreement.pairs}
    assert set(paired) == {r.screen_trial for r in view.rows if r.live_trials}
    assert view.agreement.n == len(paired) >= 3


def test_trials_prints_the_screen_stage_before_the_live_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, handle = _screened(tmp_path)
    _measure_live(path, {0: 0.5, 1: 0.6, 2: 0.7, 3: 0.4, 4: 0.45})
    view = load_screen_view(handle)
    assert view is not None and view.queued is not None
    assert main(["trials", str(path)]) == 0
    out = capsys.readouterr().out
    screen, live = out.split("\n\n", 1)
    assert screen.splitlines()[0] == (
        "screen 'fake.screen': 6/6 COMPLETE (target 6), 1 replay(s) each, "
        f"{view.pruned} pruned, {view.feasible} feasible"
    )
    assert re.search(r"^  rank +# +role +score +kve +ttft95 +itl95 +live +params$", screen, re.M)
    assert re.search(r"^  1 +\d+ +\w+ +0\.\d{4} ", screen, re.M)
    assert re.search(
        r"^  \d+ +\d+ +baseline +0\.\d{4} .* #0 \(0\.5000\) +router\.mode=", screen, re.M
    )
    assert "queued live: screen " + ", ".join(f"#{n}" for n in view.queued) in screen
    assert f"  {screen_line(view.agreement)}" in screen.splitlines()
    assert live.splitlines()[0].split()[:3] == ["#", "state", "value"]
    for n in view.queued:  # a live trial the screen queued names its screen trial
        assert re.search(rf"^\d+ +COMPLETE .*\[screen #{n}\] router\.mode=", live, re.M)


def test_the_report_shows_the_screen_and_draws_screen_vs_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, handle = _screened(tmp_path)
    _measure_live(path, {0: 0.5, 1: 0.6, 2: 0.7, 3: 0.4, 4: 0.45})
    view = load_screen_view(handle)
    assert view is not None
    numbers = {t.number for t in open_study(path).get_trials()}
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    capsys.readouterr()
    html = read(out)
    assert remote_loads(html) == []
    assert listed_trials(html) == numbers
    text = text_of(html)
    assert "3. Screen (virtual-time replay)" in text and "4. Plots" in text
    assert "5. Knobs that did not matter" in text and f"6. Trials ({len(numbers)})" in text
    assert "Study fake.screen : 6/6 COMPLETE (target 6), 1 replay(s) each" in text
    assert f"Screen vs live score per configuration ({rho_text(view.agreement)})" in text
    assert "#0 (0.5000)" in text  # the baseline's screen row names its live trial
    assert html.count('id="figure-screen-live"') == 1
    drawn = html.split('id="figure-screen-live"', 1)[1].split("</section>", 1)[0]
    assert '<div class="plot">' in drawn
    for pair in view.agreement.pairs:  # every configuration measured both ways, labelled
        assert f'"{pair.label}"' in drawn


def test_a_screen_with_no_trial_yet_is_reported_without_a_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, TINY)
    handle = open_for_run(load_spec(path))
    open_screen_study(handle)
    assert main(["trials", str(path)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("screen 'fake.screen': 0/6 COMPLETE (target 6)")
    assert "  no COMPLETE screen trial yet" in printed
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    text = text_of(read(out))
    assert "3. Screen (virtual-time replay)" in text and "No COMPLETE screen trial yet." in text
    assert "not drawn: no configuration was measured both in the screen and live" in text
    assert "Spearman's rho undefined, n=0" in text


def test_a_study_without_a_screen_has_no_screen_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path)
    handle = open_for_run(load_spec(path))
    assert load_screen_view(handle) is None
    assert main(["trials", str(path)]) == 0
    assert "screen" not in capsys.readouterr().out
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    html = read(out)
    assert 'id="screen"' not in html and "figure-screen-live" not in html
    text = text_of(html)
    assert "3. Plots" in text and "4. Knobs that did not matter" in text and "5. Trials" in text


def test_the_screen_vs_live_plot_labels_each_pair() -> None:
    pairs = [
        AgreementPair(label=f"#{n} screened", live_trial=n, screen_trial=10 + n, screen=s,
                      live=v, live_n=1)
        for n, s, v in [(1, 0.8, 0.6), (2, 0.7, 0.5), (3, 0.6, 0.55)]
    ]  # fmt: skip
    plot = screen_live_plot(ScreenAgreement(rho=0.5, n=3, pairs=pairs))
    assert plot.title == "Screen vs live score per configuration (Spearman's rho 0.50, n=3)"
    assert plot.figure is not None and not plot.notes
    (trace,) = plot.figure.data
    assert list(trace.x) == [0.8, 0.7, 0.6] and list(trace.y) == [0.6, 0.5, 0.55]
    assert list(trace.text) == ["#1 screened", "#2 screened", "#3 screened"]
    empty = screen_live_plot(ScreenAgreement(rho=None, n=0))
    assert empty.figure is None and empty.notes
    assert "rho undefined, n=0" in empty.title
