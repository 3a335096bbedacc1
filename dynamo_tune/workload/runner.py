"""Sends a request plan against an OpenAI-compatible frontend. Does I/O: HTTP, clock, sleeps.

`run_plan` is the whole measured run: an optional warmup phase (fresh prompts, excluded),
a quiet gap, then the plan — roots at their arrival offsets (or at once, closed loop),
dependent turns `delay_s` after all their parents finished — with at most `in_flight_limit`
requests in flight. Everything loop-bound (client, tasks, semaphore) is created inside the
call, so each trial may use a fresh `asyncio.run`. The HTTP client is `client.make_client`'s.
The report covers the window `settings.window` asks for (`window.py`): the whole measured run
or its steady part (a plan whose roots have no arrival time is a closed loop).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import WorkloadError
from dynamo_tune.workload.agentic import warmup_request
from dynamo_tune.workload.client import REQUEST_ERRORS, make_client, send_chat
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.payload import chat_request, request_path
from dynamo_tune.workload.plan import PlannedRequest, validate_plan
from dynamo_tune.workload.record import RequestRecord
from dynamo_tune.workload.result import WorkloadReport
from dynamo_tune.workload.spec import WarmupSpec
from dynamo_tune.workload.summary import workload_report
from dynamo_tune.workload.window import WindowSpec, choose_window


@dataclass(frozen=True)
class RunSettings:
    """How to send: the parts of a workload spec the runner needs."""

    seed: int
    in_flight_limit: int | None
    request_timeout_s: float
    max_failure_ratio: float
    ignore_eos: bool
    warmup: WarmupSpec
    window: WindowSpec = WindowSpec()


def make_clock() -> Callable[[], float]:
    """Unix seconds read from the monotonic `perf_counter` (fixed offset taken once)."""
    offset = time.time() - time.perf_counter()
    perf = time.perf_counter
    return lambda: perf() + offset


class _Sender:
    """Sends planned requests with one client, hints and in-flight limit (one run)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoints: Endpoints,
        hints: PrefixHints,
        settings: RunSettings,
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.base_url = endpoints.frontend_url.rstrip("/")
        self.model = endpoints.model
        self.hints = hints
        self.settings = settings
        self.clock = clock
        self.run_id = uuid.uuid4().hex[:8]
        limit = settings.in_flight_limit
        self.slots = asyncio.Semaphore(limit) if limit is not None else None

    async def send(self, request: PlannedRequest, due: float) -> RequestRecord:
        """Wait until `due`, take a slot, send; `record.due` is when it could have gone."""
        delay = due - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        body, headers = chat_request(
            request, self.model, self.hints, self.run_id, self.settings.ignore_eos
        )
        if self.slots is None:
            return await self._send(request, due, body, headers)
        async with self.slots:
            return await self._send(request, max(due, self.clock()), body, headers)

    async def _send(
        self, request: PlannedRequest, due: float, body: bytes, headers: dict[str, str]
    ) -> RequestRecord:
        record = RequestRecord(
            index=request.index, session=request.session, turn=request.turn, due=due
        )
        await send_chat(
            self.client,
            self.base_url + request_path(request),
            body,
            headers,
            record,
            self.settings.request_timeout_s,
            self.clock,
        )
        return record

    async def warmup(self) -> int:
        """Run the warmup phase; return how many warmup requests were sent."""
        spec = self.settings.warmup
        if spec.requests == 0 and spec.seconds == 0:
            return 0
        start = self.clock()
        counter = 0

        async def worker() -> None:
            nonlocal counter
            while counter < spec.requests or self.clock() - start < spec.seconds:
                i = counter
                counter += 1
                await self.send(warmup_request(spec, self.settings.seed, i), self.clock())

        workers = self.settings.in_flight_limit or 8
        await asyncio.gather(*(worker() for _ in range(workers)))
        return counter

    async def run(self, plan: Sequence[PlannedRequest]) -> list[RequestRecord]:
        """Send every request of `plan` respecting offsets, dependencies and think times."""
        records: list[RequestRecord | None] = [None] * len(plan)
        waiting = [len(r.after) for r in plan]
        children: list[list[int]] = [[] for _ in plan]
        for r in plan:
            for parent in r.after:
                children[parent].append(r.index)
        start = self.clock()

        async with asyncio.TaskGroup() as group:

            def release(index: int, due: float) -> None:
                group.create_task(one(index, due))

            async def one(index: int, due: float) -> None:
                records[index] = await self.send(plan[index], due)
                now = self.clock()
                for child in children[index]:
                    waiting[child] -= 1
                    if waiting[child] == 0:
                        release(child, now + plan[child].delay_s)

            for r in plan:
                if not r.after:
                    release(r.index, start + (r.offset_s or 0.0))
        return [r for r in records if r is not None]


async def run_plan(
    plan: Sequence[PlannedRequest],
    endpoints: Endpoints,
    hints: PrefixHints,
    settings: RunSettings,
    *,
    kve_ceiling: float | None,
) -> WorkloadReport:
    """Warmup, quiet gap, then the measured plan; the report of the measured part."""
    validate_plan(list(plan))
    clock = make_clock()
    async with make_client(settings.in_flight_limit, settings.request_timeout_s) as client:
        await check_frontend(client, endpoints)
        sender = _Sender(client, endpoints, hints, settings, clock)
        warmed = await sender.warmup()
        if warmed:
            await asyncio.sleep(quiet_gap(settings.warmup, endpoints))
        started = clock()
        records = await sender.run(plan)
    fallback = (started, clock())
    closed_loop = all(r.offset_s is None for r in plan if not r.after)
    window = choose_window(records, settings.window, closed_loop=closed_loop, fallback=fallback)
    return workload_report(
        records,
        kve_ceiling=kve_ceiling,
        max_failure_ratio=settings.max_failure_ratio,
        fallback_window=fallback,
        window=window,
        warmup_requests=warmed,
    )


async def check_frontend(client: httpx.AsyncClient, endpoints: Endpoints) -> None:
    """GET `/v1/models` once (opens a connection, loads lazy imports before the window);
    `WorkloadError` when the frontend cannot be reached at all."""
    url = endpoints.frontend_url.rstrip("/") + "/v1/models"
    try:
        await client.get(url)
    except REQUEST_ERRORS as exc:
        raise WorkloadError(f"frontend {url} unreachable: {type(exc).__name__}: {exc}") from exc


def quiet_gap(warmup: WarmupSpec, endpoints: Endpoints) -> float:
    """The pause after warmup: as configured, else the deployment's quiet gap between windows."""
    if warmup.quiet_gap_s is not None:
        return warmup.quiet_gap_s
    return endpoints.quiet_gap_seconds()
