"""Issue 19 (points 1, 7, 8): a storage password only through `${NAME}` and stored nowhere;
folders the user names are never created (a typo is one line, exit 2); help and messages say
what the code does (the torch CPU build, `stack` descriptions and router modes, the `trials`
table's `ok` column and FAIL reasons are in tests/test_study_cli.py::test_trials_table)."""

from __future__ import annotations

import gc
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fakes import fake_stack, write_study
from fixtures.postgres import ROLE, ROLE_PASSWORD, PostgresServer
from study_helpers import closing_study

from dynamo_tune.cli.main import main
from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.errors import SpecError
from dynamo_tune.net import LOOPBACK
from dynamo_tune.study import run_study_file
from dynamo_tune.study.trial.attr_keys import StudyAttr

PASSWORD = "hunter2-storage-Qz7"
PASSWORD_PROBLEM = (
    "  study.storage: a password cannot be written in the study file (it is stored with the "
    "study): write it as ${NAME} and set the environment variable NAME, e.g. "
    "postgresql+psycopg://tuner:${TUNE_DB_PASSWORD}@host/db\n"
)


def _only(folder: Path, *names: str) -> None:
    """`folder` holds exactly `names`: nothing was created beside the study file."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


# --- point 1: a literal storage password -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://tuner:{PASSWORD}@db.example:5432/optuna",
        f"postgresql://db.example/optuna?sslmode=require&password={PASSWORD}",
        "postgresql+psycopg://tuner:" + PASSWORD + "${SUFFIX}@db.example/optuna",  # half literal
    ],
)
def test_a_literal_storage_password_is_refused_without_echo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SUFFIX", "x")
    path = write_study(tmp_path, {"study.storage": url})
    for command in ("validate", "run"):
        assert main([command, str(path)]) == 2
        out, err = capsys.readouterr()
        assert err == f"dynamo-tune: error: {path}: 1 problem\n" + PASSWORD_PROBLEM
        assert out == "" and PASSWORD not in err
    stack = fake_stack()
    with pytest.raises(SpecError):
        run_study_file(path, stack.services)
    assert not stack.cluster.started
    _only(tmp_path, "study.yaml")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://tuner@db.example/optuna",
            "postgresql+psycopg://tuner@db.example/optuna",
        ),
        (
            "postgresql+psycopg://tuner:${TUNE_DB_PASSWORD}@db.example/optuna",
            "postgresql+psycopg://tuner:***@db.example/optuna",
        ),
        (
            "postgresql://db.example/optuna?password=${TUNE_DB_PASSWORD}",
            "postgresql://db.example/optuna?password=***",
        ),
        ("${TUNE_DB_URL}", "${TUNE_DB_URL}"),
    ],
)
def test_a_url_without_a_password_or_with_a_reference_is_accepted(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    shown: str,
) -> None:
    monkeypatch.setenv("TUNE_DB_PASSWORD", PASSWORD)
    monkeypatch.setenv("TUNE_DB_URL", f"postgresql://tuner:{PASSWORD}@db.example/optuna")
    path = write_study(tmp_path, {"study.storage": url})
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"ok: study 'fake': 5 searched parameters, sampler tpe, 4 trials, storage {shown}\n"
    )
    assert err == "" and PASSWORD not in out


def _database_text(postgres: PostgresServer, database: str) -> str:
    """Every row of every table of `database`, as text (what the server stores)."""
    with psycopg.connect(
        host=LOOPBACK, port=postgres.port, user=ROLE, password=ROLE_PASSWORD, dbname=database,
        connect_timeout=10,
    ) as conn:  # fmt: skip
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert len(tables) > 5  # Optuna's schema
        return repr([conn.execute(f'SELECT * FROM "{name}"').fetchall() for (name,) in tables])


@pytest.fixture
def dropping_pooled_connections() -> Iterator[None]:
    """The commands' pooled server connections, dropped silently after the test (a CLI process
    exits; in one test process they would be collected during a later test)."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # pooled connections a CLI process drops
@pytest.mark.usefixtures("dropping_pooled_connections")
def test_a_storage_password_from_the_environment_is_stored_and_printed_nowhere(
    tmp_path: Path,
    postgres: PostgresServer,
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The secret scan: a study on a real PostgreSQL server whose password comes from
    `${TUNE_DB_PASSWORD}`, run, read back, reported and exported; the password is in no stored
    row (attrs, the study file's text), artifact, written file, log record or output."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TUNE_DB_PASSWORD", ROLE_PASSWORD)
    url = postgres.url(postgres_db, password="${TUNE_DB_PASSWORD}")
    path = write_study(tmp_path, {"study.n_trials": 2, "study.storage": url})
    run_study_file(path, fake_stack(deployment={"fail_apply": {1}}).services,
                   report=TextReporter(sys.stdout))  # fmt: skip
    for command in (["trials"], ["best"], ["report", "-o", str(tmp_path / "r.html")],
                    ["export", "--csv", str(tmp_path / "t.csv")]):  # fmt: skip
        assert main([command[0], str(path), *command[1:]]) == 0
    out, err = capfd.readouterr()
    assert f"tuner:***@127.0.0.1:{postgres.port}" in out  # the storage was named, masked
    with closing_study(path) as study:
        stored = study.user_attrs[StudyAttr.STUDY_YAML]
        states = [t.state.name for t in study.get_trials()]
    assert "${TUNE_DB_PASSWORD}" in stored and stored == path.read_text()
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]  # a FAIL trial's reason is stored too
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in files if p.parent.name == "fake.artifacts"]) >= 4  # the artifacts
    assert {"r.html", "t.csv"} <= {p.name for p in files}
    for file in files:
        assert ROLE_PASSWORD.encode() not in file.read_bytes(), file
    assert ROLE_PASSWORD not in _database_text(postgres, postgres_db)
    assert ROLE_PASSWORD not in out + err
    assert ROLE_PASSWORD not in "\n".join(r.getMessage() for r in caplog.records)


# --- point 7: folders the user names are never created ----------------------------------------


@pytest.mark.parametrize("storage", ["sqlite:///no/such/dir/q.db", "journal:no/such/dir/q.log"])
def test_a_storage_folder_that_does_not_exist_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], storage: str
) -> None:
    path = write_study(tmp_path, {"study.storage": storage})
    for command in ("validate", "run"):
        assert main([command, str(path)]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err == (
            f"dynamo-tune: error: study.storage: the folder {tmp_path}/no/such/dir does not "
            "exist; create it first or fix the path\n"
        )
    stack = fake_stack()
    with pytest.raises(SpecError):
        run_study_file(path, stack.services)
    assert not stack.cluster.started
    _only(tmp_path, "study.yaml")


def test_the_default_storage_beside_the_study_file_is_created_with_its_artifacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, {"study.storage": None, "study.n_trials": 1})
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.endswith(f"storage sqlite:///{tmp_path}/fake.db\n")
    run_study_file(path, fake_stack().services)
    assert (tmp_path / "fake.db").is_file()
    assert (tmp_path / "fake.db.artifacts").is_dir()  # the tool's own folder, made on purpose


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_study(tmp_path_factory.mktemp("paths"), {"study.n_trials": 1})
    run_study_file(path, fake_stack().services)
    return path


@pytest.mark.parametrize(
    ("flag", "name"), [("-o", "x.html"), ("--csv", "t.csv")], ids=["report", "export"]
)
def test_report_and_export_refuse_an_output_folder_that_does_not_exist(
    small_study: Path, capsys: pytest.CaptureFixture[str], flag: str, name: str
) -> None:
    command = "report" if flag == "-o" else "export"
    folder = small_study.parent / "nodir"
    assert main([command, str(small_study), flag, str(folder / name)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"dynamo-tune: error: {flag}: the folder {folder} does not exist; create it first or "
        "fix the path\n"
    )
    assert not folder.exists()
    folder.mkdir()
    try:  # once it exists, the same command writes the file
        assert main([command, str(small_study), flag, str(folder / name)]) == 0
        assert (folder / name).is_file()
    finally:
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()


# --- point 8: help and messages -----------------------------------------------------------------


def test_the_gp_sampler_names_the_cpu_build_of_torch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for package in ("torch", "scipy"):  # find_spec: a None in sys.modules is "not installed"
        monkeypatch.setitem(sys.modules, package, None)
    path = write_study(tmp_path, {"study.sampler.name": "gp"})
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == (
        "dynamo-tune: error: study.sampler.name: gp needs torch and scipy: install with "
        "`uv pip install scipy` and "
        "`UV_DEFAULT_INDEX=https://download.pytorch.org/whl/cpu uv pip install torch`\n"
    )
    _only(tmp_path, "study.yaml")


def test_stack_up_and_status_describe_themselves_and_router_mode_lists_its_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["stack", "up", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width
    assert "Start the local Dynamo stack (mocker workers, the frontend with the router" in text
    assert "--router-mode {kv,round-robin,random,power-of-two,least-loaded} The router" in text
    assert "--router-session-affinity-mode {hard,soft}" in text
    with pytest.raises(SystemExit) as done:
        main(["stack", "status", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Check the stack recorded in the state file that `stack up` writes" in text
