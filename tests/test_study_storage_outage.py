"""A database outage at any moment of a trial loses nothing and prints no traceback (issue
point 2): the storage retries for `study.storage_retry_s` with one warning; past that, the
trial's result is kept in a spill file, the run stops with a one-line `StorageError` (exit 3),
and the next run stores the result first, without measuring it again.

A real PostgreSQL server (tests/fixtures/postgres.py), fake services (tests/fakes.py) whose
metrics `collect` (the end of a trial's measurement) cuts or stops the database.
"""

from __future__ import annotations

import gc
import io
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import psycopg
import pytest
from fakes import FakeStack, fake_stack, write_study
from fixtures.postgres import ROLE, ROLE_PASSWORD, PostgresServer, _alive
from optuna.trial import TrialState
from sqlalchemy.exc import OperationalError
from study_helpers import trials_of

from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.errors import StorageError, WorkloadError
from dynamo_tune.net import LOOPBACK
from dynamo_tune.study import run_study_file
from dynamo_tune.study.run.events import Event, Warned
from dynamo_tune.study.store.retry import RetryingRDBStorage, call_with_retry, is_transient
from dynamo_tune.study.trial.attr_keys import TrialAttr

PASSWORD_VAR = "TUNE_DB_PASSWORD"


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, ROLE_PASSWORD)


@pytest.fixture
def server(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """The session's server, running again after the test whatever the test did to it. The
    run's pooled connections the outage cut are dropped here, silently (a CLI run exits)."""
    yield postgres
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    pid = postgres.postmaster_pid()
    if pid is None or not _alive(pid):
        postgres.start()


def _study(tmp_path: Path, server: PostgresServer, database: str, **study: Any) -> Path:
    url = server.url(database, password="${" + PASSWORD_VAR + "}")
    changes = {"study.n_trials": 3, "study.storage": url, "study.heartbeat_interval_s": 1}
    changes.update({f"study.{k}": v for k, v in study.items()})
    return write_study(tmp_path, changes)


def _terminate_connections(server: PostgresServer, database: str) -> int:
    """Cut every connection to `database` (as a server restart does); how many."""
    with psycopg.connect(
        host=LOOPBACK, port=server.port, user=ROLE, password=ROLE_PASSWORD, dbname=database,
        autocommit=True, connect_timeout=10,
    ) as conn:  # fmt: skip
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database()"
        ).fetchall()
    return len(rows)


def _on_collect(stack: FakeStack, trial_index: int, action: Callable[[], None]) -> None:
    """Run `action` at the end of the measurement of the `trial_index`-th trial measured."""
    collect = stack.metrics.collect
    calls = [0]

    async def collecting(start: float, end: float) -> Any:
        result = await collect(start, end)
        calls[0] += 1
        if calls[0] == trial_index + 1:
            action()
        return result

    stack.metrics.collect = collecting  # type: ignore[method-assign]


def _measured_once(trials: list[Any], runs: int) -> None:
    """Every COMPLETE trial was measured exactly once: no repeat, no loss, no RUNNING."""
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states
    assert states.count(TrialState.COMPLETE) == runs, states
    assert states.count(TrialState.FAIL) == 0, states


# --- the retry helper (no database) ---------------------------------------------------------


def test_a_transient_failure_is_retried_within_the_budget_with_one_warning() -> None:
    now = [0.0]
    slept: list[float] = []
    warned: list[BaseException] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def down_for(seconds: float) -> Callable[[], str]:
        def call() -> str:
            if now[0] < seconds:
                raise OperationalError("SELECT 1", {}, Exception("connection refused"))
            return "ok"

        return call

    retry = {"on_first_failure": warned.append, "sleep": sleep, "clock": lambda: now[0]}
    assert call_with_retry(down_for(3.0), budget_s=60, **retry) == "ok"
    assert len(warned) == 1 and 3.0 <= now[0] < 60
    assert slept[:5] == [0.2, 0.4, 0.8, 1.6, 3.2][: len(slept[:5])]
    now[0] = 0.0
    slept.clear()
    with pytest.raises(OperationalError):
        call_with_retry(down_for(1e9), budget_s=20, **retry)
    assert now[0] == pytest.approx(20) and max(slept) == 5.0 and len(warned) == 2
    with pytest.raises(ValueError):  # not a database outage: raised at once
        call_with_retry(lambda: int("x"), budget_s=20, **retry)
    assert len(warned) == 2
    assert not is_transient(ValueError()) and is_transient(OperationalError("", {}, Exception()))


# --- a real server ---------------------------------------------------------------------------


@pytest.mark.usefixtures("password_env")
def test_connections_cut_at_a_trials_end_lose_nothing(
    tmp_path: Path, server: PostgresServer, postgres_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _study(tmp_path, server, postgres_db)
    stack = fake_stack()
    cut: list[int] = []
    _on_collect(stack, 1, lambda: cut.append(_terminate_connections(server, postgres_db)))
    out = io.StringIO()
    summary = run_study_file(path, stack.services, report=TextReporter(out))
    assert cut and cut[0] >= 1  # the run's pooled connections were there to cut
    assert summary.complete == 3
    trials = trials_of(path)
    _measured_once(trials, stack.workload.runs)
    assert trials[1].user_attrs[TrialAttr.APPLY_SECONDS] is not None
    text = out.getvalue() + capsys.readouterr().err
    assert "Traceback" not in text and ROLE_PASSWORD not in text, text


@pytest.mark.usefixtures("password_env")
def test_a_short_outage_at_a_trials_end_costs_one_warning(
    tmp_path: Path, server: PostgresServer, postgres_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _study(tmp_path, server, postgres_db, storage_retry_s=60)
    stack = fake_stack()
    restarted: list[threading.Timer] = []

    def outage() -> None:
        server.stop()
        timer = threading.Timer(2.0, server.start)
        timer.start()
        restarted.append(timer)

    _on_collect(stack, 1, outage)
    events: list[Event] = []
    try:
        summary = run_study_file(path, stack.services, report=events.append)
    finally:
        for timer in restarted:
            timer.join()
    assert summary.complete == 3
    _measured_once(trials_of(path), stack.workload.runs)
    warned = [e.message for e in events if isinstance(e, Warned)]
    assert len(warned) == 1 and "unreachable" in warned[0], warned
    assert "tuner:***@" in warned[0] and ROLE_PASSWORD not in warned[0]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.usefixtures("password_env")
def test_an_outage_past_the_budget_spills_the_result_and_the_next_run_stores_it(
    tmp_path: Path, server: PostgresServer, postgres_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _study(tmp_path, server, postgres_db, storage_retry_s=2)
    stack = fake_stack()
    _on_collect(stack, 1, server.stop)
    with pytest.raises(StorageError) as caught:
        run_study_file(path, stack.services)
    message = str(caught.value)
    assert caught.value.exit_code == 3 and "\n" not in message
    spill = tmp_path / "fake.spill.jsonl"
    assert spill.exists(), message
    assert f"trial 1's result is kept in {spill}" in message
    assert "tuner:***@" in message and ROLE_PASSWORD not in message
    assert ROLE_PASSWORD not in spill.read_text()
    assert stack.cluster.stopped  # the deployment was stopped on the way out
    assert stack.workload.runs == 2
    server.start()
    kept = trials_of(path)[1]
    assert kept.state == TrialState.RUNNING  # the database never heard its end
    events: list[Event] = []
    summary = run_study_file(path, stack.services, report=events.append)
    assert not spill.exists()
    assert summary.complete == 3 and summary.recovered == []
    trials = trials_of(path)
    assert trials[1].state == TrialState.COMPLETE and trials[1].values is not None
    assert trials[1].params == kept.params
    assert trials[1].user_attrs[TrialAttr.RUNNER] == kept.user_attrs[TrialAttr.RUNNER]
    _measured_once(trials, stack.workload.runs)  # 3 runs for 3 COMPLETE: none measured twice
    assert stack.workload.runs == 3 and len(trials) == 3
    assert any(isinstance(e, Warned) and "trial(s) 1" in e.message for e in events)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.usefixtures("password_env")
def test_a_trial_that_failed_while_the_storage_was_away_is_not_left_running(
    tmp_path: Path, server: PostgresServer, postgres_db: str
) -> None:
    path = _study(tmp_path, server, postgres_db, storage_retry_s=1)
    stack = fake_stack()
    run = stack.workload.run
    calls = [0]

    async def running(endpoints: Any, hints: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:
            server.stop()
            raise WorkloadError("connection to the frontend lost mid-run")
        return await run(endpoints, hints)

    stack.workload.run = running  # type: ignore[method-assign]
    with pytest.raises(StorageError, match=r"trial 1's failure is kept in .*fake\.spill\.jsonl"):
        run_study_file(path, stack.services)
    server.start()
    assert trials_of(path)[1].state == TrialState.RUNNING
    run_study_file(path, stack.services)
    trials = trials_of(path)
    assert trials[1].state == TrialState.FAIL
    assert trials[1].user_attrs[TrialAttr.FAIL_REASON].startswith("storage unreachable: ")
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3
    assert not (tmp_path / "fake.spill.jsonl").exists()


@pytest.mark.usefixtures("password_env")
def test_a_run_started_while_the_server_restarts_waits_for_it(
    tmp_path: Path,
    server: PostgresServer,
    postgres_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the fault-injection soak: a runner started while the server was cut or
    restarting exited 3 ("cannot open storage") instead of waiting like any other call."""
    path = _study(tmp_path, server, postgres_db, storage_retry_s=60)
    server.stop()
    timer = threading.Timer(2.0, server.start)
    timer.start()
    try:
        summary = run_study_file(path, fake_stack().services)
    finally:
        timer.join()
    assert summary.complete == 3
    waits = [r.getMessage() for r in caplog.records if "retrying for up to 60 s" in r.getMessage()]
    assert len(waits) == 1 and "tuner:***@" in waits[0] and ROLE_PASSWORD not in waits[0], waits


@pytest.mark.usefixtures("password_env")
def test_a_wrong_password_is_not_waited_for(
    tmp_path: Path, server: PostgresServer, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_VAR, "not-the-password")
    path = _study(tmp_path, server, postgres_db, storage_retry_s=60)
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot open storage"):
        run_study_file(path, fake_stack().services)
    assert time.monotonic() - started < 30  # not the 60 s an unreachable server gets


def test_a_session_whose_transaction_died_with_its_connection_is_retried(
    server: PostgresServer, postgres_db: str, tmp_path: Path
) -> None:
    """Found by the fault-injection soak: after cut connections a runner exited 3 with
    "Can't reconnect until invalid transaction is rolled back" (`PendingRollbackError`, which
    the retry did not count as an outage)."""
    from sqlalchemy import text

    from dynamo_tune.study.store.storage import open_storage, resolve_storage

    target = resolve_storage(server.url(postgres_db), "fake", tmp_path)
    storage = open_storage(target, retry_s=10)
    assert isinstance(storage, RetryingRDBStorage)
    try:
        optuna.create_study(storage=storage, study_name="s")
        session = storage.scoped_session()
        session.execute(text("SELECT 1"))  # a transaction open on this thread's session
        assert _terminate_connections(server, postgres_db) >= 1
        with pytest.raises(OperationalError):
            session.execute(text("SELECT 1"))
        assert [s.study_name for s in storage.get_all_studies()] == ["s"]
    finally:
        storage.engine.dispose()


def test_the_grace_period_outlasts_the_outage_a_runner_rides_out() -> None:
    """Found by the fault-injection soak: with a grace of three beats (6 s), a 5 s database
    restart made a live runner's trial look dead to the other runner, which failed it."""
    from dynamo_tune.study.store.storage import grace_period

    assert grace_period(10, 60) == 70  # the defaults: 60 s outage + one 10 s beat
    assert grace_period(2, 60) == 62
    assert grace_period(10, 0) == 30  # no outage budget: three beats
    assert grace_period(10, 5.5) == 30
    assert grace_period(None, 60) is None


def test_a_trial_another_runner_failed_meanwhile_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other runner failed our trial as stale (our heartbeat could not reach the storage)
    while we measured it: our run does not crash on storing into a finished trial."""
    path = write_study(tmp_path, {"study.n_trials": 3})
    stack = fake_stack()

    def failed_by_another_runner() -> None:
        study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path}/fake.db")
        (running,) = study.get_trials(states=(TrialState.RUNNING,))
        study._storage.set_trial_state_values(running._trial_id, TrialState.FAIL)

    _on_collect(stack, 1, failed_by_another_runner)
    summary = run_study_file(path, stack.services)
    assert summary.complete == 3
    states = [t.state.name for t in trials_of(path)]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    warned = [m for r in caplog.records if "failed by another runner" in (m := r.getMessage())]
    assert warned == [
        "trial #1 was failed by another runner while it was measured (its heartbeat did not "
        "reach the storage): its measurement is dropped; the configuration is queued again"
    ]
    assert "Traceback" not in capsys.readouterr().err
