"""Ctrl-C and SIGTERM during a run: which signal ended it, and the sections a signal may not
cut in two. Does I/O: installs signal handlers (main thread only).

While `signals_as_interrupts()` is active, SIGTERM raises `Interrupted("SIGTERM")`; Ctrl-C
keeps Python's own handling (a `KeyboardInterrupt`, which `signal_name` reads as SIGINT), so
`asyncio.run` still cancels its task on the first Ctrl-C. Both are a `KeyboardInterrupt`.

Inside `deferred()` (a synchronous section: a trial's result written and told) the first
SIGINT or SIGTERM is held and raised when the section ends, so the section completes; a second
signal raises at once (the operator insists). Outside the main thread `deferred()` holds
nothing (Python delivers signals to the main thread only).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A run ended by a signal: `signal_name` ("SIGINT", "SIGTERM"); `resume` is the command
    that resumes it, when the CLI knows one (None otherwise)."""

    def __init__(self, signal_name: str, resume: str | None = None) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.resume = resume


def signal_name(exc: BaseException) -> str:
    """The signal behind an interruption: an `Interrupted`'s, else SIGINT (Python raises a
    plain `KeyboardInterrupt` for Ctrl-C)."""
    return exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"


def describe(exc: BaseException) -> str:
    """`SIGTERM`, or `SIGINT (Ctrl-C)`: the signal as a message names it."""
    name = signal_name(exc)
    return f"{name} (Ctrl-C)" if name == "SIGINT" else name


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM raises `Interrupted("SIGTERM")` inside the block (the previous handler is put
    back after it). Main thread only (`signal.signal` refuses others)."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold the first SIGINT/SIGTERM until the block ends, then raise it as `Interrupted`
    (a second one raises at once). Holds nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[str] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if pending:
            raise Interrupted(name)
        pending.append(name)

    previous = {sig: signal.signal(sig, hold) for sig in _HANDLED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    if pending:
        raise Interrupted(pending[0])
