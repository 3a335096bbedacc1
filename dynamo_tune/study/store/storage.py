"""Where a study lives: storage URL resolution (pure) and opening it. Does I/O: opens storages.

`study.storage` is an Optuna RDB URL (`sqlite:///x.db`, `postgresql://...`, `mysql+pymysql://...`)
or `journal:PATH` (Optuna's journal file). Relative sqlite and journal paths resolve against
the study file's folder; the storage file's folder must exist (a typo in it is a `SpecError`,
never a new study started elsewhere). SQLite gets a lock timeout (a live dashboard or a
second runner would otherwise hit "database is locked"); RDB storages get Optuna's trial
heartbeat so a dead runner's RUNNING trials become FAIL, and check a pooled connection before
using it, so a database server restarted between two queries costs nothing (a missed
heartbeat is a logged warning), and retry a call through a longer outage (`retry`).
Artifacts go to a `FileSystemArtifactStore` in `study.artifact_dir`, by default
`<storage file>.artifacts` beside the storage file (a server database: `<study name>.artifacts`
beside the study file), created when needed.

`study.storage` may reference environment variables as `${NAME}` (`$$` is a literal `$`), so a
password need not be written in the study file: `postgresql+psycopg://tuner:${PW}@db/optuna`
(a literal password is refused when the file is checked: `spec.checks`). They are expanded
when the storage is resolved; messages show the URL as written, password masked, and the
study keeps the file's text (references, not values). A missing variable is a `SpecError`. A
storage that cannot be opened, read or written is a `StorageError` (its own exit code) whose
one-line message names the URL or path, with any password masked.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from optuna.exceptions import ExperimentalWarning, StorageInternalError
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy.exc import (
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from dynamo_tune.errors import SpecError, StorageError
from dynamo_tune.study.spec.checks import QUERY_PASSWORD
from dynamo_tune.study.store.retry import RetryingRDBStorage, is_server_down
from dynamo_tune.validation import require_folder

log = logging.getLogger(__name__)

SQLITE_TIMEOUT_S = 60
SCHEMA_RACE_ATTEMPTS = 5
StorageKind = Literal["sqlite", "rdb", "journal"]
MASK = "***"
_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")
DRIVER_HINT = (
    " (is its driver installed? PostgreSQL: pip install 'dynamo-tune[postgres]' and a "
    "postgresql+psycopg:// URL)"
)


@dataclass(frozen=True)
class StorageTarget:
    """A resolved storage: what to open and where its artifacts go.

    `url` is what is opened (environment references expanded: may hold a password, never
    print it); `written` is `study.storage` as the file has it; messages use `display`.
    """

    kind: StorageKind
    url: str = field(repr=False)
    path: Path | None
    artifact_dir: Path
    written: str = field(default="", repr=False)

    @property
    def display(self) -> str:
        """The storage for messages: the path, or the URL as written with its password masked."""
        if self.kind == "journal":
            return f"journal:{self.path}"
        return mask_password(self.url if self.kind == "sqlite" else self.written or self.url)

    def redact(self, text: str) -> str:
        """`text` (e.g. a driver's message) with the opened URL and its password masked."""
        text = text.replace(self.url, self.display)
        password = urlsplit(self.url).password
        for secret in {password, unquote(password or "")} - {None, ""}:
            text = text.replace(str(secret), MASK)
        return text

    def reason(self, exc: BaseException) -> str:
        """The one-line reason of a storage error, redacted."""
        hint = DRIVER_HINT if isinstance(exc, ImportError | NoSuchModuleError) else ""
        return self.redact(first_line(exc)) + hint


def expand_env(raw: str, env: Mapping[str, str]) -> str:
    """`raw` with each `${NAME}` replaced by `env[NAME]` and `$$` by `$`; any other `$` is
    kept. ValueError naming a missing variable or a malformed `${`. Pure."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if match.group(0) == "$$":
            return "$"
        if name is None:
            raise ValueError("`${` must start a reference ${NAME} (write $${ for a literal one)")
        if name not in env:
            raise ValueError(f"environment variable {name} is not set")
        return env[name]

    return _ENV_REFERENCE.sub(substitute, raw)


def mask_password(url: str) -> str:
    """`url` with the password of its user info (and a `password=` query value) replaced by
    `***`. Pure."""
    url = QUERY_PASSWORD.sub(rf"\g<1>{MASK}", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (driver errors carry pages of context); it may
    quote the URL: pass it through `StorageTarget.redact` before showing it. Pure."""
    if isinstance(exc, StorageInternalError) and exc.__cause__ is not None:
        exc = exc.__cause__  # Optuna wraps SQLAlchemy's error in its own, a generic text
    orig = getattr(exc, "orig", None)  # a SQLAlchemy error wraps the driver's
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def storage_errors(target: StorageTarget, doing: str = "use") -> Iterator[None]:
    """Translate database and file errors of `target` into a one-line `StorageError`."""
    try:
        yield
    except (SQLAlchemyError, StorageInternalError) as exc:
        raise StorageError(
            f"cannot {doing} storage {target.display}: {target.reason(exc)}"
        ) from exc
    except OSError as exc:
        if target.path is None or not str(exc.filename or "").startswith(str(target.path)):
            raise  # not the storage's file (e.g. a deployment's): not a storage error
        reason = exc.strerror or target.reason(exc)
        raise StorageError(f"cannot {doing} storage {target.display}: {reason}") from exc


def check_location(target: StorageTarget) -> None:
    """`SpecError` naming the folder if a file storage's folder does not exist (a typo in the
    path must not start a new study elsewhere), `StorageError` if it is not writable (writes
    nothing; best effort: the open at run time has the last word)."""
    if target.path is None:
        return
    require_folder(target.path, "study.storage")
    folder = target.path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create storage {target.display}: {folder} is not writable")
    if target.path.exists() and not os.access(target.path, os.R_OK | os.W_OK):
        raise StorageError(f"cannot write storage {target.display}: permission denied")


def storage_kind(raw: str, shown: str | None = None) -> StorageKind:
    """The kind of a storage string; ValueError naming the accepted forms (and `raw` as
    `shown`: the string as written, password masked) otherwise."""
    shown = mask_password(raw if shown is None else shown)
    if raw.startswith("journal:"):
        if not raw.removeprefix("journal:"):
            raise ValueError("journal: needs a file path, e.g. journal:study.log")
        return "journal"
    if raw.startswith("sqlite:"):
        if not raw.startswith("sqlite:///") or raw.endswith(":memory:") or raw == "sqlite:///":
            raise ValueError(f"a study needs a file: use sqlite:///PATH, got {shown!r}")
        return "sqlite"
    if "://" not in raw:
        raise ValueError(f"expected an Optuna storage URL or journal:PATH, got {shown!r}")
    return "rdb"


def resolve_storage(
    written: str | None,
    name: str,
    base_dir: Path,
    artifact_dir: str | None = None,
    env: Mapping[str, str] | None = None,
) -> StorageTarget:
    """Resolve `study.storage` (None: `sqlite:///<name>.db`) against `base_dir`, expanding
    its `${NAME}` references from `env` (default: the process environment)."""
    written = written or f"sqlite:///{name}.db"
    try:
        raw = expand_env(written, os.environ if env is None else env)
        kind = storage_kind(raw, shown=written)
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
    return StorageTarget(kind=kind, url=url, path=path, artifact_dir=artifacts, written=written)


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """A SQLite connection that waits for locks and lets readers run beside a writer (WAL)."""
    conn = sqlite3.connect(str(path), timeout=SQLITE_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


_OPEN_ERRORS = (
    SQLAlchemyError,  # connection refused, bad credentials, no such database, driver errors
    StorageInternalError,
    sqlite3.Error,
    OSError,  # a journal file or SQLite folder that cannot be created or read
    ImportError,  # a database driver that is not installed
    ValueError,  # a URL the engine cannot parse
    RuntimeError,  # Optuna: the schema is of an Optuna version this one cannot use
)
"""What opening a storage raises for a storage that cannot be opened (`StorageError`)."""


_SCHEMA_RACE = (IntegrityError, ProgrammingError, OperationalError)


def grace_period(heartbeat_interval_s: int | None, retry_s: float) -> int | None:
    """Seconds without a heartbeat before other runners fail a RUNNING trial as dead: three
    beats, and never less than a storage outage the runner rides out (`retry_s`) plus one
    beat, so a live runner's trial is not failed under it while the database is away (found
    by the fault-injection soak). None without a heartbeat. Pure."""
    if not heartbeat_interval_s:
        return None
    return max(3 * heartbeat_interval_s, math.ceil(retry_s) + heartbeat_interval_s)


def open_storage(
    target: StorageTarget,
    *,
    heartbeat_interval_s: int | None = None,
    retry_s: float = 0,
) -> BaseStorage:
    """Open (creating the database or file if needed, never its folder: `SpecError` naming a
    missing one) the storage; `StorageError` if it cannot be opened. An RDB storage's calls
    survive an outage of `retry_s` (`retry.RetryingRDBStorage`)."""
    if target.path is not None:
        require_folder(target.path, "study.storage")
    try:
        if target.kind == "journal":
            assert target.path is not None
            return JournalStorage(JournalFileBackend(str(target.path)))
        engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
        if target.kind == "sqlite":
            assert target.path is not None
            engine_kwargs = {"creator": functools.partial(_sqlite_connect, target.path)}
        down_until = time.monotonic() + retry_s
        attempt, warned = 0, False
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExperimentalWarning)
                    return RetryingRDBStorage(
                        target,
                        target.url,
                        retry_s=retry_s,
                        engine_kwargs=engine_kwargs,
                        heartbeat_interval=heartbeat_interval_s,
                        grace_period=grace_period(heartbeat_interval_s, retry_s),
                    )
            except (*_SCHEMA_RACE, StorageInternalError) as exc:
                if target.kind != "sqlite" and is_server_down(exc):
                    # a server restarting or cutting connections: wait, up to `retry_s`
                    if time.monotonic() >= down_until:
                        raise
                    if not warned:
                        warned = True
                        log.warning(
                            "storage %s unreachable (%s): retrying for up to %g s",
                            target.display, target.reason(exc), retry_s,
                        )  # fmt: skip
                    time.sleep(1.0)
                    continue
                # Two runners creating the schema at once: the loser retries and finds it
                # (SQLite says so with an OperationalError, a server never: it cannot connect).
                lost_race = target.kind == "sqlite" or not isinstance(exc, OperationalError)
                attempt += 1
                if isinstance(exc, StorageInternalError) or not lost_race:
                    raise
                if attempt == SCHEMA_RACE_ATTEMPTS:
                    raise
                time.sleep(0.2 * attempt)
    except _OPEN_ERRORS as exc:  # translated once, here
        raise StorageError(f"cannot open storage {target.display}: {target.reason(exc)}") from exc
