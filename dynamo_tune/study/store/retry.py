"""Storage calls that survive a database outage: bounded retries, one warning. Does I/O.

`call_with_retry` retries a call that failed because the database could not be reached
(a lost or refused connection, a server restarting: `is_transient`) with backoff (0.2 s
doubling to 5 s) until `budget_s` has passed, then raises the last error. `RetryingRDBStorage`
is the RDB storage a run opens: every trial and study call goes through it (ask, params,
user attrs, constraints, artifacts' attrs, tell, the stale-trial check), so a database
outage of up to `study.storage_retry_s` costs one warning line (`on_outage`), not the run.
A `tell` whose first try was stored although its answer was lost is not an error.
Its heartbeat never retries: a missed beat is one warning and the next beat reconnects.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    OperationalError,
    PendingRollbackError,
    ProgrammingError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0


class Target(Protocol):
    """What a message may show of a storage (`storage.StorageTarget`)."""

    @property
    def display(self) -> str: ...

    def reason(self, exc: BaseException) -> str: ...


def _unwrapped(exc: BaseException) -> BaseException:
    """The database error behind Optuna's `StorageInternalError` (else `exc` itself)."""
    if isinstance(exc, StorageInternalError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached (worth retrying), not that the
    request was wrong (a constraint, a schema, a bug). A session whose transaction died with
    its connection (`PendingRollbackError`, "Can't reconnect until invalid transaction is
    rolled back") counts: Optuna rolls the session back, so the retry goes through."""
    exc = _unwrapped(exc)
    if isinstance(exc, IntegrityError | ProgrammingError):
        return False
    return isinstance(
        exc, OperationalError | DBAPIError | StorageInternalError | PendingRollbackError
    )


_DOWN_WORDS = (
    "connection refused",
    "server closed the connection unexpectedly",
    "terminating connection",
    "the database system is",  # starting up, shutting down, in recovery
)


def is_server_down(exc: BaseException) -> bool:
    """Whether `exc` says the server is down, restarting or cut the connection (SQLSTATE class
    57, a refused or closed connection): what opening a storage waits for. Not a wrong
    password, an unknown host or database: those fail at once."""
    if not is_transient(exc):
        return False
    exc = _unwrapped(exc)
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith("57"):
        return True
    text = str(exc).lower()
    return any(word in text for word in _DOWN_WORDS)


def call_with_retry(
    fn: Callable[[], T],
    *,
    budget_s: float,
    on_first_failure: Callable[[BaseException], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`fn()`, retried while it fails transiently and `budget_s` lasts; `on_first_failure`
    is called once, with the first error. The last error when the budget runs out."""
    deadline: float | None = None
    delay = FIRST_DELAY_S
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            now = clock()
            if deadline is None:
                deadline = now + budget_s
                on_first_failure(exc)
            if now >= deadline:
                raise
            sleep(min(delay, deadline - now))
            delay = min(delay * 2, MAX_DELAY_S)


RETRIED = (
    *(
        name
        for name in vars(BaseStorage)
        if name.startswith(("get_", "set_")) and name != "set_trial_state_values"
    ),
    "create_new_trial",
    "_get_stale_trial_ids",
    # what Optuna's `_CachedStorage` (the wrapper a study puts around an RDB storage) calls
    # on it directly instead of the public methods above
    "_create_new_trial",
    "_set_trial_param",
    "_get_trials",
    "_get_best_trial_id",
)
"""The storage methods a database outage retries: every read and write of a study or trial
(`set_trial_state_values` too, below), under their public names and the private ones the
study's cache calls."""


class RetryingRDBStorage(RDBStorage):
    """`RDBStorage` whose calls survive an outage of `retry_s` (see the module docstring)."""

    def __init__(self, target: Target, url: str, *, retry_s: float = 0, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.target = target
        self.retry_s = retry_s
        self.on_outage: Callable[[str], None] = log.warning
        """Where the one line of an outage goes (the run loop reports it as an event)."""
        self._in_outage = False
        self._retried = False

    def _retry(self, fn: Callable[[], T]) -> T:
        self._retried = False
        result = call_with_retry(fn, budget_s=self.retry_s, on_first_failure=self._failed)
        self._in_outage = False
        return result

    def _failed(self, exc: BaseException) -> None:
        self._retried = True
        if not self._in_outage and self.retry_s > 0:
            self._in_outage = True
            self.on_outage(
                f"storage {self.target.display} unreachable ({self.target.reason(exc)}): "
                f"retrying for up to {self.retry_s:g} s"
            )

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        store = RDBStorage.set_trial_state_values
        try:
            return self._retry(lambda: store(self, trial_id, state, values))
        except UpdateFinishedTrialError:
            if self._retried and RDBStorage.get_trial(self, trial_id).state == state:
                return True  # stored by a try whose answer the outage lost
            raise

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "storage %s: heartbeat missed (the next one retries): %s",
                self.target.display,
                self.target.reason(exc),
            )


def _retrying(name: str) -> Callable[..., Any]:
    base = getattr(RDBStorage, name)

    @functools.wraps(base)
    def method(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self._retry(lambda: base(self, *args, **kwargs))

    return method


for _name in RETRIED:
    setattr(RetryingRDBStorage, _name, _retrying(_name))
