"""A thin async client of the Prometheus HTTP API. Does I/O: HTTP GETs to Prometheus.

One shared `httpx.AsyncClient` (owned by the caller, built by `new_client` with the
`PrometheusAccess` credentials and TLS), at most `concurrency` requests in flight. Every
failure becomes `QueryFailed` (`unreachable=True` when no usable HTTP answer came back:
refused, DNS, timeout, TLS, or credentials rejected with HTTP 401/403 — then `rejection`
holds the one-line reason), translated here from httpx's exceptions.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
from collections.abc import Generator
from typing import Any

import httpx

from dynamo_tune.metrics._access import PrometheusAccess
from dynamo_tune.metrics._prom_parse import (
    Matrix,
    QueryFailed,
    TargetState,
    api_data,
    parse_matrix,
    parse_names,
    parse_targets,
    parse_vector,
)
from dynamo_tune.metrics._series import SeriesVector


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default context, built once: loading the CA bundle costs ~0.1-0.4 s a client."""
    return httpx.create_ssl_context()


class _BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>` on every request."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def _auth(access: PrometheusAccess) -> httpx.Auth | None:
    """httpx's auth of `access` (at most one credential), secrets read now; SpecError naming
    a missing variable or file."""
    token = access.bearer_token()
    if token is not None:
        return _BearerAuth(token)
    if access.basic_auth is not None:
        return httpx.BasicAuth(access.basic_auth.username, access.basic_auth.password())
    return None


def new_client(timeout_s: float, access: PrometheusAccess | None = None) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with `timeout_s` for every phase, `access`'s credentials (read
    now: SpecError naming a missing variable or file) and TLS (default: the shared context)."""
    if access is None:
        return httpx.AsyncClient(timeout=timeout_s, verify=_ssl_context())
    verify = access.verify()
    return httpx.AsyncClient(
        timeout=timeout_s,
        verify=_ssl_context() if verify is None else verify,
        auth=_auth(access),
    )


def rejection_reason(base_url: str, status: int) -> str:
    """The one-line reason of a 401/403 answer. Pure."""
    return f"prometheus at {base_url} rejected the credentials (HTTP {status})"


class PrometheusAPI:
    """Instant, range and targets requests against `base_url` through `client`."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, concurrency: int = 8) -> None:
        if concurrency < 1:
            raise ValueError(f"`concurrency >= 1` must hold, but got {concurrency=}")
        self.client = client
        self.base_url = base_url.rstrip("/")
        self._slots = asyncio.Semaphore(concurrency)
        self.answered = 0
        """How many requests got an HTTP answer (any status): 0 means unreachable."""
        self.rejection: str | None = None
        """The reason once Prometheus refused the credentials (HTTP 401/403), else None."""

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return api_data(await self._get_raw(path, params))

    async def _get_raw(self, path: str, params: dict[str, str]) -> Any:
        """The JSON body of a successful (2xx) answer; `QueryFailed` otherwise."""
        url = f"{self.base_url}{path}"
        async with self._slots:
            try:
                response = await self.client.get(url, params=params)
            except httpx.TimeoutException as exc:
                raise QueryFailed(
                    f"no answer from {url} within the timeout ({type(exc).__name__})",
                    unreachable=True,
                ) from exc
            except httpx.TransportError as exc:
                raise QueryFailed(
                    f"cannot reach {url}: {exc or type(exc).__name__}", unreachable=True
                ) from exc
        self.answered += 1
        if response.status_code in (401, 403):  # the body may be plain text: check first
            self.rejection = rejection_reason(self.base_url, response.status_code)
            raise QueryFailed(self.rejection, unreachable=True)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise QueryFailed(
                f"HTTP {response.status_code} from {url} with malformed JSON: "
                f"{response.text[:120]!r}"
            ) from exc
        if response.is_error:
            detail = body.get("error") if isinstance(body, dict) else None
            detail = str(detail) if detail else repr(body)
            raise QueryFailed(f"HTTP {response.status_code} from {url}: {detail}")
        return body

    async def query(self, promql: str, at: float | None = None) -> SeriesVector:
        """Instant query (at unix time `at`, or now): {labels: value}."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return parse_vector(await self._get("/api/v1/query", params))

    async def query_matrix(self, promql: str, at: float | None = None) -> Matrix:
        """Instant query of a range selector (raw samples): [(labels, [(time, value)])]."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return parse_matrix(await self._get("/api/v1/query", params))

    async def query_range(self, promql: str, start: float, end: float, step_s: float) -> Matrix:
        """Range query over `[start, end]` every `step_s` seconds."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step_s:.3f}",
        }
        return parse_matrix(await self._get("/api/v1/query_range", params))

    async def metric_names(self, names: list[str], start: float, end: float) -> set[str]:
        """Which of `names` have samples in `[start, end]` (`/api/v1/label/__name__/values`)."""
        pattern = "|".join(re.escape(name) for name in names)
        params = {
            "match[]": f'{{__name__=~"{pattern}"}}',
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
        }
        return parse_names(await self._get_raw("/api/v1/label/__name__/values", params))

    async def targets(self) -> list[TargetState]:
        """The active scrape targets with their last scrape times."""
        return parse_targets(await self._get("/api/v1/targets", {"state": "active"}))
