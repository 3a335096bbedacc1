"""Studies on a real PostgreSQL: concurrent runners, a killed runner, a server restart, and
the password kept out of the study file, the stored study and every message.

The study files reference the password as `${TUNE_DB_PASSWORD}`; the child runners get it in
their environment. Fake services (tests/fakes.py), real processes and a real server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import fake_stack, write_study
from fixtures.postgres import ROLE_PASSWORD, PostgresServer
from optuna.trial import FrozenTrial, TrialState
from study_helpers import assert_extras_pruned_unmeasured, closing_study, trials_of, wait_for

from dynamo_tune.cli.main import main
from dynamo_tune.errors import SpecError, StorageError
from dynamo_tune.study import run_study_file
from dynamo_tune.study.store.storage import expand_env, resolve_storage
from dynamo_tune.study.trial.attr_keys import StudyAttr, TrialAttr

FAKES = Path(__file__).with_name("fakes.py")
PASSWORD_VAR = "TUNE_DB_PASSWORD"


def _study_url(postgres: PostgresServer, database: str) -> str:
    return postgres.url(database, password="${" + PASSWORD_VAR + "}")


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, ROLE_PASSWORD)


def _runner(path: Path, trial_seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(FAKES), str(path), "--trial-seconds", str(trial_seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, PASSWORD_VAR: ROLE_PASSWORD},
    )


@pytest.fixture
def runners() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child runners the test starts; SIGKILLed (by group) if still alive at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _finish(proc: subprocess.Popen[bytes], timeout_s: float = 180) -> str:
    out, _ = proc.communicate(timeout=timeout_s)
    text = out.decode()
    assert proc.returncode == 0, text
    return text


def _running_of(path: Path, pid: int) -> list[FrozenTrial]:
    """RUNNING trials of the runner `pid` (its parameters may still be being suggested)."""
    try:
        trials = trials_of(path, states=(TrialState.RUNNING,))
    except KeyError:  # the study does not exist yet
        return []
    return [t for t in trials if (t.user_attrs.get(TrialAttr.RUNNER) or {}).get("pid") == pid]


def _assert_no_duplicate_or_lost(trials: list[FrozenTrial]) -> None:
    assert [t.number for t in trials] == list(range(len(trials)))
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials if t.state.is_finished()) >= 1
    kv = [tuple(sorted(t.params.items())) for t in trials if t.params.get("router.mode") == "kv"]
    assert len(set(kv)) == len(kv)


# --- the environment reference (pure) ------------------------------------------------------


def test_env_references_expand_and_dollar_dollar_is_a_dollar() -> None:
    env = {"PW": "p@ss", "HOST": "db"}
    assert expand_env("pg://u:${PW}@${HOST}/x", env) == "pg://u:p@ss@db/x"
    assert expand_env("a$$b$c${PW}", env) == "a$b$cp@ss"
    with pytest.raises(ValueError, match="environment variable NOPE is not set"):
        expand_env("pg://u:${NOPE}@db/x", env)
    with pytest.raises(ValueError, match=r"\$\{NAME\}"):
        expand_env("pg://u:${1x}@db/x", env)


def test_the_target_opens_the_expanded_url_and_shows_the_written_one(tmp_path: Path) -> None:
    written = "postgresql+psycopg://tuner:${PW}@db:5432/optuna"
    t = resolve_storage(written, "s", tmp_path, env={"PW": "hunter22"})
    assert t.url == "postgresql+psycopg://tuner:hunter22@db:5432/optuna"
    assert t.display == "postgresql+psycopg://tuner:***@db:5432/optuna"
    assert "hunter22" not in repr(t)
    message = f"FATAL: no entry for {t.url} (password hunter22, quoted hunter22)"
    assert t.redact(message) == f"FATAL: no entry for {t.display} (password ***, quoted ***)"
    query = resolve_storage("postgresql://db/x?password=${PW}&sslmode=require", "s", tmp_path,
                            env={"PW": "hunter22"})  # fmt: skip
    assert query.display == "postgresql://db/x?password=***&sslmode=require"


def test_a_missing_variable_is_exit_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PASSWORD_VAR, raising=False)
    url = "postgresql+psycopg://tuner:${TUNE_DB_PASSWORD}@127.0.0.1:9/optuna"
    path = write_study(tmp_path, {"study.storage": url})
    for command in ("validate", "run", "trials"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert err == (
            "dynamo-tune: error: study.storage: environment variable TUNE_DB_PASSWORD is not set\n"
        )
    stack = fake_stack()
    with pytest.raises(SpecError):
        run_study_file(path, stack.services)
    assert not stack.cluster.started


# --- a real server ---------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.usefixtures("password_env")
def test_two_runners_on_postgres_reach_exactly_n_trials(
    tmp_path: Path,
    postgres: PostgresServer,
    postgres_db: str,
    runners: list[subprocess.Popen[bytes]],
) -> None:
    path = write_study(
        tmp_path, {"study.n_trials": 8, "study.storage": _study_url(postgres, postgres_db)}
    )
    runners.extend(_runner(path, trial_seconds=0.3) for _ in range(2))
    outputs = [_finish(proc) for proc in runners]
    every = trials_of(path)
    assert [t.number for t in every] == list(range(len(every)))
    trials = [t for t in every if t.state == TrialState.COMPLETE]
    assert len(trials) == 8, outputs
    assert_extras_pruned_unmeasured(every)
    _assert_no_duplicate_or_lost(every)
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials) == 1
    pids = {t.user_attrs[TrialAttr.RUNNER]["pid"] for t in trials}
    assert pids == {p.pid for p in runners}, "both runners should have run trials"
    for out in outputs:
        assert "tuner:***@127.0.0.1" in out and ROLE_PASSWORD not in out
    # (d) the study keeps the file's text: the reference, not the password
    with closing_study(path) as study:
        stored = study.user_attrs[StudyAttr.STUDY_YAML]
    assert "${TUNE_DB_PASSWORD}" in stored and ROLE_PASSWORD not in stored
    assert stored == path.read_text()


@pytest.mark.integration
@pytest.mark.usefixtures("password_env")
def test_a_runner_killed_mid_trial_is_failed_by_the_others_heartbeat_and_retried(
    tmp_path: Path,
    postgres: PostgresServer,
    postgres_db: str,
    runners: list[subprocess.Popen[bytes]],
) -> None:
    path = write_study(
        tmp_path,
        {
            "study.n_trials": 5,
            "study.storage": _study_url(postgres, postgres_db),
            "study.heartbeat_interval_s": 1,
            "study.storage_retry_s": 2,  # stale after max(3 beats, 2 s + 1 beat) = 3 s
        },
    )
    victim = _runner(path, trial_seconds=60.0)
    runners.append(victim)
    wait_for(lambda: bool(_running_of(path, victim.pid)), timeout_s=60)
    survivor = _runner(path, trial_seconds=2.0)
    runners.append(survivor)
    wait_for(lambda: bool(_running_of(path, survivor.pid)), timeout_s=60)
    (killed,) = _running_of(path, victim.pid)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    killed = trials_of(path)[killed.number]  # as the victim left it (all its params)
    assert killed.state == TrialState.RUNNING and killed.params
    out = _finish(survivor)
    trials = trials_of(path)
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 5, out
    assert trials[killed.number].state == TrialState.FAIL
    assert states.count(TrialState.FAIL) == 1 and states.count(TrialState.RUNNING) == 0
    retries = [t for t in trials if t.user_attrs.get(TrialAttr.RETRY_OF) == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state == TrialState.COMPLETE
    assert retries[0].user_attrs[TrialAttr.RUNNER]["pid"] == survivor.pid
    _assert_no_duplicate_or_lost(trials)


@pytest.mark.integration
@pytest.mark.usefixtures("password_env")
@pytest.mark.parametrize(
    ("heartbeat_s", "trial_s", "down_s"),
    [
        # A quick restart no heartbeat sees: the trial's end finds every pooled connection
        # dead (`pool_pre_ping` replaces them; without it the run stops with exit 3).
        (10, 3.0, 0.0),
        # Down across two heartbeats: each missed beat is a warning, not a dead thread.
        (1, 6.0, 2.5),
    ],
    ids=["restart", "outage-across-heartbeats"],
)
def test_a_server_restart_between_trials_does_not_stop_the_run(
    tmp_path: Path,
    postgres: PostgresServer,
    postgres_db: str,
    runners: list[subprocess.Popen[bytes]],
    heartbeat_s: int,
    trial_s: float,
    down_s: float,
) -> None:
    path = write_study(
        tmp_path,
        {
            "study.n_trials": 3,
            "study.storage": _study_url(postgres, postgres_db),
            "study.heartbeat_interval_s": heartbeat_s,
        },
    )
    runner = _runner(path, trial_seconds=trial_s)
    runners.append(runner)
    wait_for(lambda: bool(_running_of(path, runner.pid)), timeout_s=60)
    (first,) = _running_of(path, runner.pid)
    time.sleep(0.5)  # the runner sits in its (fake) workload: no query of its main thread
    before = postgres.postmaster_pid()
    postgres.stop()  # fast shutdown: every connection of the runner is cut
    time.sleep(down_s)
    postgres.start()
    assert postgres.postmaster_pid() != before
    out = _finish(runner)
    trials = trials_of(path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3, out
    assert trials[first.number].user_attrs[TrialAttr.RUNNER]["pid"] == runner.pid
    assert "Traceback" not in out and ROLE_PASSWORD not in out, out
    missed = [line for line in out.splitlines() if "heartbeat missed" in line]
    assert all("tuner:***@" in line for line in missed), out
    assert bool(missed) == (down_s > heartbeat_s), out
    _assert_no_duplicate_or_lost(trials)


# --- a storage that cannot be opened (issue 10, point 4) -------------------------------------


def _cannot_open(path: Path, capsys: pytest.CaptureFixture[str], expected_start: str) -> str:
    """`dynamo-tune run` exits 3 with one line; the run never starts the deployment."""
    assert main(["run", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"dynamo-tune: error: cannot open storage {expected_start}"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    stack = fake_stack()
    with pytest.raises(StorageError):
        run_study_file(path, stack.services)
    assert not stack.cluster.started and stack.cluster.events == []
    return err


@pytest.mark.integration
@pytest.mark.usefixtures("password_env")
def test_a_wrong_password_is_exit_3_masked_and_creates_nothing(
    tmp_path: Path,
    postgres: PostgresServer,
    postgres_db: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WRONG_PW", "wrong-pw-3b9d")  # a literal password is refused (exit 2)
    url = postgres.url(postgres_db, password="${WRONG_PW}")
    path = write_study(tmp_path, {"study.storage": url})
    err = _cannot_open(path, capsys, f"postgresql+psycopg://tuner:***@127.0.0.1:{postgres.port}/")
    assert "password authentication failed" in err
    assert "wrong-pw-3b9d" not in err and ROLE_PASSWORD not in err
    assert postgres.table_count(postgres_db) == 0  # no schema, no half-created study


@pytest.mark.usefixtures("password_env")
def test_an_unknown_host_is_exit_3_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg://tuner:${TUNE_DB_PASSWORD}@nohost.invalid:5432/optuna"
    path = write_study(tmp_path, {"study.storage": url})
    err = _cannot_open(path, capsys, "postgresql+psycopg://tuner:***@nohost.invalid:5432/optuna: ")
    reason = err.split(": ", 3)[3]  # after "dynamo-tune: error: cannot open storage URL: "
    assert "nohost.invalid" in reason and ROLE_PASSWORD not in err


def test_a_missing_driver_is_exit_3_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PW", "s3cret-pw")
    url = "postgresql+nosuchdriver://tuner:${DB_PW}@127.0.0.1:9/optuna"
    path = write_study(tmp_path, {"study.storage": url})
    err = _cannot_open(path, capsys, "postgresql+nosuchdriver://tuner:***@127.0.0.1:9/optuna: ")
    assert "dynamo-tune[postgres]" in err and "s3cret-pw" not in err
    assert not (tmp_path / "fake.artifacts").exists()
