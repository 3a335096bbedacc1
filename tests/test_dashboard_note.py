"""The confirmed verdict as optuna-dashboard's study note, read back with the dashboard's own
reader (`optuna_dashboard.get_note`) and from the study system attrs it keeps the note in.

Expected numbers come from the fake cluster's model (tests/fakes.py, see
tests/test_study_confirm.py): on the temperature grid the baseline (round-robin) scores
0.1 + 0.4 * 0.5 / 0.9 + 0.2 * 0.05 / 0.06 = 0.48889 and temperature 0.0 scores 0.832, every
measurement exactly (no noise): the winner's gain is 0.832 / 0.48889 - 1 = +70.2 %.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import optuna
import pytest
from fake_metrics_helpers import GRID
from fakes import fake_stack, write_study
from optuna_dashboard import get_note
from study_helpers import open_study

from dynamo_tune.study import confirm_study_file, run_study_file

GAIN = "+70.2 %"  # 0.832 / 0.48889 - 1, one decimal


def _note_attrs(study: optuna.Study) -> dict[str, object]:
    """The study system attrs optuna-dashboard keeps notes in (`dashboard:...`)."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {k: v for k, v in attrs.items() if k.startswith("dashboard:")}


def _numbers(study: optuna.Study, stage: str | None) -> list[int]:
    return [t.number for t in study.get_trials() if t.user_attrs.get("stage") == stage]


def _winner(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The search trial of temperature 0.0 (after the baseline, #0, round-robin)."""
    (winner,) = [t for t in study.get_trials()[1:4] if t.params["router.temperature"] == 0.0]
    return winner


@pytest.fixture
def confirmed(tmp_path: Path) -> Path:
    """A grid study (4 search trials) confirmed with top 2, 2 repeats each (+ the baseline)."""
    path = write_study(tmp_path, {**GRID, "study.confirm": {"top": 2, "repeats": 2}})
    summary = run_study_file(path, fake_stack().services)
    assert summary.verdict is not None and summary.verdict.winner is not None
    return path


def test_the_note_states_the_confirmed_winner_and_what_the_dashboard_best_is(
    confirmed: Path,
) -> None:
    study = open_study(confirmed)
    winner = _winner(study)
    note = get_note(study)
    headline = (
        f"**confirmed winner: #{winner.number}: router.temperature=0.0: {GAIN} "
        "(95 % CI 70.2..70.2 %, n=2 each, Welch's t)**"
    )
    assert headline in note.splitlines()
    assert "#0 (baseline) score 0.4889 (sd 0.0000, n=2)" in note
    assert "\"Best Trial\" (on the study's first page) is Optuna's raw best single value" in note
    assert "confirmation measurements included: it is not the verdict" in note
    # the confirmation measurements: 3 members (baseline + top 2) x 2 repeats, after 4 search
    confirmations = _numbers(study, "confirm")
    assert confirmations == [4, 5, 6, 7, 8, 9] and _numbers(study, None) == [0, 1, 2, 3]
    assert "[the 6 confirmation measurements](trials?numbers=4,5,6,7,8,9)" in note
    assert "[the 4 search trials](trials?numbers=0,1,2,3)" in note
    assert '(Table) groups them when sorted by its "UserAttribute confirms" column' in note
    # relative to the Note page, the link opens the study's Trials (List) page filtered
    note_page = "http://127.0.0.1:8080/dashboard/studies/1/note"
    expected = "http://127.0.0.1:8080/dashboard/studies/1/trials?numbers=4"
    assert urljoin(note_page, "trials?numbers=4") == expected
    assert _note_attrs(study)["dashboard:note_ver"] == 1


def test_a_new_verdict_replaces_the_note(confirmed: Path) -> None:
    run_study_file(confirmed, fake_stack().services)  # nothing left to measure: same verdict
    assert _note_attrs(open_study(confirmed))["dashboard:note_ver"] == 1  # not rewritten
    confirm_study_file(confirmed, fake_stack().services, repeats=3)  # one more round each
    study = open_study(confirmed)
    note = get_note(study)
    assert note.count("## dynamo-tune verdict") == 1
    assert note.count("confirmed winner:") == 2  # the bold headline and the verdict's own line
    assert f"{GAIN} (95 % CI 70.2..70.2 %, n=3 each, Welch's t)" in note
    assert "n=2" not in note
    assert "[the 9 confirmation measurements](trials?numbers=4,5,6,7,8,9,10,11,12)" in note
    attrs = _note_attrs(study)
    assert attrs["dashboard:note_ver"] == 2  # one note, its second version
    chunks = [v for k, v in attrs.items() if k.startswith("dashboard:note_str:")]
    assert "".join(str(c) for c in chunks) == note


def test_no_verdict_writes_no_note(tmp_path: Path) -> None:
    path = write_study(tmp_path, {**GRID})  # no confirmation: nothing decided
    run_study_file(path, fake_stack().services)
    study = open_study(path)
    assert get_note(study) == "" and _note_attrs(study) == {}


@pytest.mark.integration
def test_the_dashboard_shows_the_note_in_headless_chromium(confirmed: Path, tmp_path: Path) -> None:
    from test_study_integration import CHROMIUM, _rendered, _text, serving_dashboard

    assert Path(CHROMIUM).exists(), "CI installs Debian's chromium"
    winner = _winner(open_study(confirmed)).number
    with serving_dashboard(confirmed) as url:
        html = _rendered(f"{url}/note", tmp_path / "profile")  # the sidebar's "Note" page
        assert f"confirmed winner: #{winner}: router.temperature=0.0: {GAIN}" in _text(html)
        assert '<a href="trials?numbers=4,5,6,7,8,9">the 6 confirmation measurements</a>' in html
