"""Where a study lives: storage URL resolution (pure) and opening it. Does I/O: opens storages.

`study.storage` is an Optuna RDB URL (`sqlite:///x.db`, `postgresql://...`, `mysql+pymysql://...`)
or `journal:PATH` (Optuna's journal file). Relative sqlite and journal paths resolve against
the study file's folder. SQLite gets a lock timeout (a live dashboard or a second runner
would otherwise hit "database is locked"); RDB storages get Optuna's trial heartbeat so a
dead runner's RUNNING trials become FAIL. Artifacts go to a `FileSystemArtifactStore` beside
the storage file (or beside the study file for a server database).

A storage that cannot be opened, read or written is a `StorageError` (its own exit code) whose
one-line message names the URL or path, with any password in the URL masked.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from dynamo_tune.errors import SpecError, StorageError

SQLITE_TIMEOUT_S = 60
SCHEMA_RACE_ATTEMPTS = 5
StorageKind = Literal["sqlite", "rdb", "journal"]


@dataclass(frozen=True)
class StorageTarget:
    """A resolved storage: what to open and where its artifacts go."""

    kind: StorageKind
    url: str
    path: Path | None
    artifact_dir: Path

    @property
    def display(self) -> str:
        """The storage for messages: the path, or the URL with its password masked."""
        return f"journal:{self.path}" if self.kind == "journal" else mask_password(self.url)


def mask_password(url: str) -> str:
    """`url` with the password of its user info replaced by `***`. Pure."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (driver errors carry pages of context). Pure."""
    orig = getattr(exc, "orig", None)  # a SQLAlchemy error wraps the driver's
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def storage_errors(target: StorageTarget, doing: str = "use") -> Iterator[None]:
    """Translate database and file errors of `target` into a one-line `StorageError`."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot {doing} storage {target.display}: {first_line(exc)}") from exc
    except OSError as exc:
        if target.path is None or not str(exc.filename or "").startswith(str(target.path)):
            raise  # not the storage's file (e.g. a deployment's): not a storage error
        raise StorageError(
            f"cannot {doing} storage {target.display}: {exc.strerror or first_line(exc)}"
        ) from exc


def check_location(target: StorageTarget) -> None:
    """`StorageError` if a file storage's folder can neither be found nor created (writes
    nothing; best effort: the open at run time has the last word)."""
    if target.path is None:
        return
    folder = target.path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create storage {target.display}: {folder} is not writable")
    if target.path.exists() and not os.access(target.path, os.R_OK | os.W_OK):
        raise StorageError(f"cannot write storage {target.display}: permission denied")


def storage_kind(raw: str) -> StorageKind:
    """The kind of a storage string; ValueError naming the accepted forms otherwise."""
    if raw.startswith("journal:"):
        if not raw.removeprefix("journal:"):
            raise ValueError("journal: needs a file path, e.g. journal:study.log")
        return "journal"
    if raw.startswith("sqlite:"):
        if not raw.startswith("sqlite:///") or raw.endswith(":memory:") or raw == "sqlite:///":
            raise ValueError(f"a study needs a file: use sqlite:///PATH, got {raw!r}")
        return "sqlite"
    if "://" not in raw:
        raise ValueError(f"expected an Optuna storage URL or journal:PATH, got {raw!r}")
    return "rdb"


def resolve_storage(
    raw: str | None, name: str, base_dir: Path, artifact_dir: str | None = None
) -> StorageTarget:
    """Resolve `study.storage` (None: `sqlite:///<name>.db`) against `base_dir`."""
    raw = raw or f"sqlite:///{name}.db"
    try:
        kind = storage_kind(raw)
    except ValueError as exc:
        raise SpecError(f"study.storage: {exc}") from exc
    path: Path | None = None
    url = raw
    if kind == "journal":
        path = (base_dir / raw.removeprefix("journal:")).resolve()
    elif kind == "sqlite":
        path = (base_dir / raw.removeprefix("sqlite:///")).resolve()
        url = f"sqlite:///{path}"
    if artifact_dir is not None:
        artifacts = (base_dir / artifact_dir).resolve()
    elif path is not None:
        artifacts = path.with_name(f"{path.name}.artifacts")
    else:
        artifacts = (base_dir / f"{name}.artifacts").resolve()
    return StorageTarget(kind=kind, url=url, path=path, artifact_dir=artifacts)


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """A SQLite connection that waits for locks and lets readers run beside a writer (WAL)."""
    conn = sqlite3.connect(str(path), timeout=SQLITE_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def open_storage(
    target: StorageTarget,
    *,
    heartbeat_interval_s: int | None = None,
    stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> BaseStorage:
    """Open (creating if needed) the storage; `StorageError` if it cannot be opened."""
    try:
        if target.path is not None:
            target.path.parent.mkdir(parents=True, exist_ok=True)
        if target.kind == "journal":
            assert target.path is not None
            return JournalStorage(JournalFileBackend(str(target.path)))
        engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
        if target.kind == "sqlite":
            assert target.path is not None
            engine_kwargs = {"creator": functools.partial(_sqlite_connect, target.path)}
        callback_kw = (
            "heartbeat_stale_trial_callback"
            if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage).parameters
            else "failed_trial_callback"
        )
        for attempt in range(SCHEMA_RACE_ATTEMPTS):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExperimentalWarning)
                    return RDBStorage(
                        target.url,
                        engine_kwargs=engine_kwargs,
                        heartbeat_interval=heartbeat_interval_s,
                        grace_period=3 * heartbeat_interval_s if heartbeat_interval_s else None,
                        **{callback_kw: stale_trial_callback},  # type: ignore[arg-type]
                    )
            except (IntegrityError, OperationalError):
                # Two runners creating the schema at once: the loser retries and finds it.
                if attempt == SCHEMA_RACE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover
    except Exception as exc:  # sqlalchemy / driver / file errors: translate once, here
        raise StorageError(f"cannot open storage {target.display}: {first_line(exc)}") from exc
