"""The per-request truth the runner records. Pure (types only).

Times are unix seconds taken from one monotonic clock (`perf_counter` plus a fixed offset),
so differences are exact durations. A failed request is data: `cause` names why, `error`
holds the server's or the transport's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FailureCause = Literal["http_4xx", "http_5xx", "busy_529", "timeout", "disconnect", "stream_error"]
"""http_4xx / http_5xx: non-200 status (529 is `busy_529`); timeout: the per-request limit;
disconnect: connection refused, reset or the stream cut before `[DONE]`; stream_error: an
error event or unparseable data inside a 200 stream."""


def cause_for_status(status: int) -> FailureCause:
    """The failure cause of a non-200 HTTP status."""
    if status == 529:
        return "busy_529"
    if 400 <= status < 500:
        return "http_4xx"
    return "http_5xx"


@dataclass(slots=True)
class RequestRecord:
    """One sent request: when things happened, what the server said, why it failed."""

    index: int
    session: str
    turn: int
    due: float
    sent: float = 0.0
    first_token: float | None = None
    end: float | None = None
    token_times: list[float] = field(default_factory=list)
    status: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    cause: FailureCause | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.cause is None

    def fail(self, cause: FailureCause, error: str) -> None:
        """Mark failed (the first failure wins)."""
        if self.cause is None:
            self.cause = cause
            self.error = error[:500]
