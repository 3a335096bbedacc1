"""`trials`, `best`, `export` and `dashboard` on a study the fakes filled."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from fakes import fake_stack, write_study
from study_helpers import open_study, stop_process_group

from dynamo_tune.cli.main import main
from dynamo_tune.errors import StorageError
from dynamo_tune.study import run_study_file


@pytest.fixture(scope="module")
def done_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    path = write_study(folder, {"study.n_trials": 4})
    stack = fake_stack(deployment={"fail_apply": {2}})
    run_study_file(path, stack.services)
    return path


def test_trials_table(done_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trials", str(done_study)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["#", "state", "value", "kve", "ttft95", "itl95", "ok", "params"]
    assert len(lines) == 1 + 5 + 1 + 2  # header, 5 trials, the FAIL row's reason, legend
    assert lines[1].split()[:2] == ["0", "COMPLETE"] and "[baseline]" in lines[1]
    assert lines[3].split()[:3] == ["2", "FAIL", "-"]
    assert lines[4] == "   failed: apply: DeploymentError: frontend exited with code 1: bad flag"
    assert lines[5].split()[:2] == ["3", "COMPLETE"]
    assert lines[-2:] == [
        "",
        "ok: yes = meets every constraint; no = violates one (the best only if no trial meets "
        "them all); - = not COMPLETE",
    ]
    assert "router.mode=round-robin" in lines[1]


def test_best_json_yaml_flags(done_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["best", str(done_study), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (best,) = data["best"]
    imp = data["improvement_over_baseline"]
    # the fake cluster under round-robin: kve 0.25, ttft 0.9 s, itl 0.06 s
    baseline = 0.4 * 0.25 + 0.4 * (0.5 / 0.9) + 0.2 * (0.05 / 0.06)
    top = max(t.value for t in open_study(done_study).get_trials() if t.value is not None)
    assert imp["baseline_trial"] == 0
    assert imp["baseline_value"] == pytest.approx(baseline)
    assert imp["best_value"] == best["values"][0] == pytest.approx(top)
    assert imp["absolute"] == pytest.approx(top - baseline)
    assert imp["relative"] == pytest.approx((top - baseline) / baseline)
    assert best["metrics"]["kv_efficiency"] is not None
    assert main(["best", str(done_study), "--format", "yaml"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# trial #{best['number']}; unconfirmed (the study has no confirmation")
    assert yaml.safe_load(text)["router"] == best["router"]
    assert main(["best", str(done_study), "--format", "flags"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == best["frontend_args"]
    assert "vs baseline #0" in captured.err


def test_export_csv(done_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x" / "trials.csv"
    out.parent.mkdir()  # export never creates a folder (tests/test_storage_secrets_paths.py)
    assert main(["export", str(done_study), "--csv", str(out)]) == 0
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert float(rows[0]["value"]) > 0
    assert rows[0]["params_router.mode"] == "round-robin"
    assert float(rows[1]["user_attrs_kv_efficiency"]) > 0
    assert "DeploymentError" in rows[2]["user_attrs_fail_reason"]
    assert "5 trials" in capsys.readouterr().out


def test_inspecting_a_missing_study_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path)
    assert main(["trials", str(path)]) == 2
    assert "run `dynamo-tune run` first" in capsys.readouterr().err
    assert not (tmp_path / "fake.db").exists()


@pytest.mark.integration
def test_dashboard_serves_the_study_api(done_study: Path) -> None:
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dynamo-tune")), "dashboard", str(done_study)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(": ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/dashboard/studies/1")
        base = url.split("/dashboard/")[0]
        studies = httpx.get(f"{base}/api/studies", timeout=10).json()["study_summaries"]
        assert [s["study_name"] for s in studies] == ["fake"]
    finally:
        stop_process_group(proc)


def test_a_storage_that_cannot_be_created_is_exit_3_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"study.storage": "sqlite:////proc/x.db"})
    assert main(["run", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("dynamo-tune: error: cannot open storage sqlite:////proc/x.db: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    stack = fake_stack()
    with pytest.raises(StorageError):
        run_study_file(path, stack.services)
    assert not stack.cluster.started  # refused before any deployment starts


def test_a_file_that_is_no_database_is_exit_3_and_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fake.db"
    db.write_bytes(b"not a database, but somebody's notes\n" * 200)
    path = write_study(tmp_path)
    for command in ("run", "trials"):
        assert main([command, str(path)]) == 3
        err = capsys.readouterr().err
        assert f"storage sqlite:///{db}: file is not a database" in err, err
        assert len(err.strip().splitlines()) == 1
    assert db.read_bytes() == b"not a database, but somebody's notes\n" * 200


def test_a_storage_password_never_reaches_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNE_DB_PASSWORD", "s3cret-pw")
    url = "postgresql://tuner:${TUNE_DB_PASSWORD}@127.0.0.1:9/optuna"
    path = write_study(tmp_path, {"study.storage": url})
    assert main(["run", str(path)]) == 3
    err = capsys.readouterr().err
    assert "postgresql://tuner:***@127.0.0.1:9/optuna" in err
    assert "s3cret-pw" not in err
