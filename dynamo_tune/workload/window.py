"""Which part of a workload run the trial measures: the window setting and its rule. Pure.

A closed-loop run starts with `concurrency` cold prompts at once and ends with a drain in
which fewer and fewer requests are in flight; both differ from the load in between. With
`window: {mode: steady}` the measured window leaves them out:

- it opens once `warmup_share` of the measured requests have finished (a request finishes
  after its first token, so none of those is counted) and every request of the start-up
  burst (those sent before the first one finished) has had its first token;
- it closes where the drain starts: in a closed loop (every session starts as soon as a slot
  is free) at the last request sent while the run held its peak number of requests in flight
  (the `concurrency` limit, or every session when there are fewer), since sessions that have
  sent their last turn leave slots empty before the very last request goes; in an open loop
  (arrival times, `rate`, traces) at the last request sent.

Both edges then cut through a full in-flight set, so the requests in decode at each edge are
alike; this matters for KV efficiency, whose two counters the frontend records at different
moments of a request (`summary.py`). A run whose steady window would hold no first token is
measured over its full window instead, with a `note`.

`mode: full` measures everything: first measured request sent -> last measured request
finished (failed ones too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynamo_tune.workload.record import RequestRecord

WindowMode = Literal["full", "steady"]

DEFAULT_WARMUP_SHARE = 0.1
"""Share of the measured requests that finish before a steady window opens, by default."""


class WindowSpec(BaseModel):
    """The measured window of an HTTP-driven workload (`full` or `steady`, see the module).

    `warmup_share` belongs to `steady` (None: `DEFAULT_WARMUP_SHARE`); giving it with
    `mode: full` is an error, since it would be silently ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: WindowMode = Field(
        default="full",
        description="full: first request sent -> last finished; steady: without ramp and drain",
    )
    warmup_share: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="steady: share of the measured requests that finish before it opens (0.1)",
    )

    @model_validator(mode="after")
    def _share_needs_steady(self) -> Self:
        if self.mode == "full" and self.warmup_share is not None:
            raise ValueError(
                "warmup_share only applies to mode 'steady', but got mode 'full' "
                f"and warmup_share={self.warmup_share}"
            )
        return self

    @property
    def share(self) -> float:
        """The warmup share in force."""
        return DEFAULT_WARMUP_SHARE if self.warmup_share is None else self.warmup_share


@dataclass(frozen=True)
class Window:
    """The measured window `[start, end]` (unix seconds) and how it was chosen."""

    start: float
    end: float
    mode: WindowMode
    note: str | None = None

    def holds(self, moment: float) -> bool:
        """Whether `moment` lies inside the window (both edges included)."""
        return self.start <= moment <= self.end


def _finished(record: RequestRecord) -> float:
    return record.end if record.end is not None else record.sent


def _first_or_finished(record: RequestRecord) -> float:
    return record.first_token if record.first_token is not None else _finished(record)


def full_window(records: Sequence[RequestRecord], fallback: tuple[float, float]) -> Window:
    """First request sent -> last request finished (or sent, if it never finished);
    `fallback` when nothing was sent."""
    if not records:
        return Window(fallback[0], fallback[1], "full")
    return Window(min(r.sent for r in records), max(_finished(r) for r in records), "full")


def peak_load_end(records: Sequence[RequestRecord]) -> float:
    """The last send at which the number of requests in flight (the new one included) was
    at its peak for the run. A request is in flight from `sent` until it finished; at equal
    times a finish comes before a send (the runner frees a slot, then fills it)."""
    moves = sorted(
        [(r.sent, 1) for r in records] + [(_finished(r), -1) for r in records],
        key=lambda move: (move[0], move[1]),
    )
    in_flight, peak, last = 0, 0, records[0].sent
    for moment, change in moves:
        in_flight += change
        if change == 1 and in_flight >= peak:
            peak, last = in_flight, moment
    return last


def steady_window(
    records: Sequence[RequestRecord], spec: WindowSpec, *, closed_loop: bool
) -> Window | None:
    """The steady window of `records` (see the module); None when it holds no first token."""
    if not records:
        return None
    finished = sorted(_finished(r) for r in records)
    count = math.ceil(spec.share * len(records))
    opening = finished[count - 1] if count > 0 else min(r.sent for r in records)
    burst = [r for r in records if r.sent < finished[0]]
    opening = max([opening, *(_first_or_finished(r) for r in burst)])
    closing = peak_load_end(records) if closed_loop else max(r.sent for r in records)
    window = Window(opening, closing, "steady")
    if not any(r.first_token is not None and window.holds(r.first_token) for r in records):
        return None
    return window


def choose_window(
    records: Sequence[RequestRecord],
    spec: WindowSpec,
    *,
    closed_loop: bool,
    fallback: tuple[float, float],
) -> Window:
    """The window `spec` asks for; the full window (with a note) when a steady one is empty."""
    full = full_window(records, fallback)
    if spec.mode == "full":
        return full
    steady = steady_window(records, spec, closed_loop=closed_loop)
    if steady is None:
        note = "the steady window held no first token: measured over the full run"
        return Window(full.start, full.end, "full", note)
    return steady
