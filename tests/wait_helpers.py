"""Bounded polling for async tests: wait for the thing itself, not for a guessed delay.

The sync equivalent is `study_helpers.wait_for`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def async_wait_for(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout_s: float,
    poll_s: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll `predicate` (sync or async) until true; AssertionError after `timeout_s`.

    It is evaluated at least once, and once more after the deadline has passed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        answer = predicate()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout_s} s")
        await asyncio.sleep(poll_s)
