"""The typed view of a stored trial: one reader, studies written by an older version read back
unchanged, malformed attrs become notes, metric names match what a trial stores."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import optuna
import pytest
from fakes import fake_stack, write_study
from optuna.trial import TrialState

from dynamo_tune.cli.main import main
from dynamo_tune.cli.run_output import TextReporter, next_steps
from dynamo_tune.study import run_study_file
from dynamo_tune.study.confirmation.verdict import Verdict
from dynamo_tune.study.confirmation.verdict_text import lines as verdict_lines
from dynamo_tune.study.read.answers import answer, verdict_of
from dynamo_tune.study.spec.metric_names import CORE_KEYS, WORKLOAD_KEYS, MetricName
from dynamo_tune.study.trial.attr_keys import ConstraintKey, TrialAttr
from dynamo_tune.study.trial.record import StudyRecord, TrialRecord, records
from dynamo_tune.workload.result import WorkloadReport

LEGACY = Path(__file__).parent / "fixtures" / "legacy_study"
"""A study written by commit accb4ed (before the typed record; see make.py there)."""


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A copy of the legacy study folder (reading opens SQLite in WAL mode, which writes)."""
    folder = tmp_path / "legacy"
    shutil.copytree(LEGACY, folder)
    return folder


@pytest.mark.parametrize("name", ["single", "pareto"])
def test_a_study_written_by_the_previous_version_reads_back_unchanged(
    legacy: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file = legacy / f"{name}.yaml"
    for command, expected in [
        (["trials"], f"{name}.trials.txt"),
        (["best", "--format", "json"], f"{name}.best.json"),
        (["best", "--format", "yaml"], f"{name}.best.yaml"),
        (["best", "--format", "flags"], f"{name}.best.flags"),
        (["best", "--format", "json", "--unconfirmed"], f"{name}.best-unconfirmed.json"),
    ]:
        assert main([command[0], str(study_file), *command[1:]]) == 0, command
        out = capsys.readouterr().out
        before = (legacy / expected).read_text()
        if expected.endswith(".json"):  # the verdict inside is now data: compared apart
            new, old = json.loads(out), json.loads(before)
            new_verdict, old_verdict = new.pop("verdict"), old.pop("verdict")
            for new_best, old_best in zip(new["best"], old["best"], strict=True):
                added = set(new_best["metrics"]) - set(old_best["metrics"])
                assert all(new_best["metrics"].pop(k) is None for k in added), added  # unmeasured
                # since: the search value labelled apart, the stack's own flags apart
                assert new_best.pop("search_values") == old_best["values"]
                for key in ("values_source", "vs_baseline", "metrics_source"):
                    new_best.pop(key, None)
                stack_args = new_best.pop("stack_frontend_args")
                assert sorted(new_best["frontend_args"] + stack_args) == sorted(
                    old_best["frontend_args"]
                )
                new_best["frontend_args"] = old_best["frontend_args"]
            new_imp, old_imp = (
                new.pop("improvement_over_baseline"),
                old.pop("improvement_over_baseline"),
            )
            if old_imp is not None and new_imp is not None:  # since: the verdict's gain
                assert new_imp["best_trial"] == old_imp["best_trial"], command
            assert new == old, command
            if old_verdict is not None:
                rendered = verdict_lines(Verdict.model_validate(new_verdict))
                assert rendered == old_verdict["lines"], command
        elif expected.endswith(".yaml"):  # since: the confirmed mean said under the header
            lines = [line for line in out.splitlines(True) if not line.startswith("# score:")]
            assert "".join(lines) == before, command
        else:
            assert out == before, command


def test_the_legacy_verdict_is_data_derived_from_numbers_not_text(legacy: Path) -> None:
    study = optuna.load_study(study_name="legacy-single", storage=f"sqlite:///{legacy}/legacy.db")
    verdict = verdict_of(study)
    assert verdict is not None and verdict.kind == "winner" and verdict.winner == 1
    assert verdict.edges is None  # stored before edges were data: `verdict_of(study, spec)` adds
    chosen = answer(study)
    assert chosen.kind == "winner" and [r.number for r in chosen.trials] == [1]
    expected = json.loads((legacy / "single.answer.json").read_text())
    assert [r.number for r in chosen.trials] == expected["trials"]


def test_every_stored_trial_of_the_legacy_study_has_a_record_without_notes(legacy: Path) -> None:
    study = optuna.load_study(study_name="legacy-single", storage=f"sqlite:///{legacy}/legacy.db")
    rs = records(study)
    assert [r.number for r in rs] == list(range(12))
    assert all(not r.notes for r in rs)
    assert rs[0].baseline and rs[1].preset == "agentic" and rs[6].confirms == 0
    assert rs[3].state == TrialState.FAIL and rs[3].fail_reason is not None
    assert rs[1].number_of(TrialAttr.KV_EFFICIENCY) == pytest.approx(0.7)
    plan = StudyRecord.from_study(study).confirm_plan
    assert plan is not None and plan.members == (0, 1, 4) and plan.repeats == 2


def test_a_malformed_attr_reads_as_its_default_with_a_note() -> None:
    study = optuna.create_study()
    study.enqueue_trial({}, user_attrs={})
    trial = study.ask()
    trial.set_user_attr(TrialAttr.CONFIRMS, "seven")  # an int belongs here
    trial.set_user_attr(TrialAttr.VIOLATIONS, {"not": "a list"})
    trial.set_user_attr(TrialAttr.BASELINE, 1)  # strict: 1 is not True
    trial.set_user_attr(TrialAttr.KV_EFFICIENCY, "0.5")  # a string metric stays a string
    trial.set_user_attr("odd", [1, 2])
    study.tell(trial, 0.5)
    (record,) = records(study)
    assert record.confirms is None and record.violations == [] and record.baseline is False
    assert record.number_of(TrialAttr.KV_EFFICIENCY) is None
    assert record.value(TrialAttr.KV_EFFICIENCY) == "0.5"
    assert len(record.notes) == 4
    assert any("'confirms'" in n and "'seven'" in n for n in record.notes)
    assert any("'odd'" in n for n in record.notes)


def test_a_malformed_study_attr_reads_as_none_with_a_note() -> None:
    study = optuna.create_study()
    study.set_user_attr("confirm_plan", {"baseline": "zero"})
    study.set_user_attr("verdict", "confirmed winner: #3")  # prose is not a verdict
    record = StudyRecord.from_study(study)
    assert record.confirm_plan is None and record.verdict is None
    assert len(record.notes) == 2


def test_every_metric_name_is_a_key_a_measured_trial_stores(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"study.n_trials": 1, "study.baseline": None})
    run_study_file(path, fake_stack().services)
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path}/fake.db")
    (trial,) = study.get_trials(states=(TrialState.COMPLETE,))
    stored = set(trial.user_attrs)
    assert set(MetricName.__args__) <= stored  # type: ignore[attr-defined]
    assert set(CORE_KEYS) | set(WORKLOAD_KEYS) <= stored
    assert set(WORKLOAD_KEYS) <= set(WorkloadReport.model_fields)
    assert set(ConstraintKey.PER_MEASUREMENT) <= set(trial.user_attrs[TrialAttr.CONSTRAINTS])
    record = TrialRecord.from_frozen(trial)
    assert record.notes == [] and record.score == trial.values[0]


def _masked(text: str, folder: Path) -> list[str]:
    """Lines with wall-clock numbers (trial time, overhead, ETA) and the folder masked."""
    text = text.replace(str(folder), "{DIR}")
    text = re.sub(r"\b\d+(\.\d+)?s\b|\b\d+m\d+s\b|\d+(\.\d+)?% overhead|\d+\.\d+%", "T", text)
    return text.splitlines()


def test_run_prints_what_the_previous_version_printed(tmp_path: Path) -> None:
    """The same fake-driven study as the legacy fixture's: the same lines, times aside."""
    for name in ("single.yaml", "pareto.yaml"):
        shutil.copy(LEGACY / name, tmp_path / name)
    for name, stack in [
        ("single", fake_stack(deployment={"fail_apply": {3}})),
        ("pareto", fake_stack()),
    ]:
        out = io.StringIO()
        study_file = tmp_path / f"{name}.yaml"
        run_study_file(study_file, stack.services, report=TextReporter(out))
        printed = out.getvalue() + "\n".join(next_steps(study_file)) + "\n"
        before = (LEGACY / f"{name}.run.txt").read_text().replace("{DIR}", str(tmp_path))
        assert _masked(printed, tmp_path) == _masked(before, tmp_path), name


def test_the_report_columns_name_keys_a_trial_stores() -> None:
    from dynamo_tune.report.trial_rows import CLIENT_COLUMNS, CORE_COLUMNS

    assert {k for k, _ in CORE_COLUMNS} <= set(CORE_KEYS)
    assert {k for k, _ in CLIENT_COLUMNS} <= set(WORKLOAD_KEYS)
