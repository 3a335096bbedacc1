"""A private Prometheus server on loopback. Does I/O: writes its config, spawns `prometheus`.

Contract: `PrometheusServer(run_dir, targets)` writes `prometheus.yml` (scrape interval
`scrape_interval_s`, default 1 s) whose targets come from a file_sd file, so
`set_targets()` changes them without a restart; TSDB under `run_dir/tsdb`; listens on a
free 127.0.0.1 port. `start()` raises `PrometheusNotFound` when the binary is missing.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import httpx
import yaml

from dynamo_tune.deploy.readiness import Observation, poll_until
from dynamo_tune.errors import DeploymentError
from dynamo_tune.net import LOOPBACK, free_port, loopback_url
from dynamo_tune.process import ManagedProcess, raise_if_exited


class PrometheusNotFound(DeploymentError):
    """The `prometheus` binary is not on PATH (Debian: `apt-get install prometheus`)."""


def prometheus_binary() -> str | None:
    """Path of the `prometheus` binary on PATH, or None."""
    return shutil.which("prometheus")


def render_config(targets_file: Path, scrape_interval_s: float) -> str:
    """prometheus.yml text: one job `dynamo` whose targets come from `targets_file`. Pure."""
    interval = f"{int(scrape_interval_s * 1000)}ms"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "dynamo",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def render_targets(targets: dict[str, str]) -> str:
    """file_sd JSON for {`host:port`: component label}. Pure."""
    groups = [
        {"targets": [address], "labels": {"component": component}}
        for address, component in targets.items()
    ]
    return json.dumps(groups, indent=1)


class PrometheusServer:
    """One Prometheus process scraping `targets` ({`host:port`: component label})."""

    def __init__(
        self,
        run_dir: Path,
        targets: dict[str, str] | None = None,
        scrape_interval_s: float = 1.0,
        port: int | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.scrape_interval_s = scrape_interval_s
        self.port = port or free_port()
        self.url = loopback_url(self.port)
        self._targets_file = run_dir / "prometheus-targets.json"
        self._targets: dict[str, str] = dict(targets or {})
        self.process: ManagedProcess | None = None

    def set_targets(self, targets: dict[str, str]) -> None:
        """Replace the scraped targets (atomically; Prometheus re-reads the file within ~1 s)."""
        self._targets = dict(targets)
        tmp = self._targets_file.with_suffix(".tmp")
        tmp.write_text(render_targets(self._targets))
        tmp.replace(self._targets_file)

    def start(self) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise PrometheusNotFound(
                "prometheus is not on PATH (install it: apt-get install -y prometheus)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.set_targets(self._targets)
        config = self.run_dir / "prometheus.yml"
        config.write_text(render_config(self._targets_file, self.scrape_interval_s))
        self.process = ManagedProcess(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                f"--storage.tsdb.path={self.run_dir / 'tsdb'}",
                "--storage.tsdb.retention.time=1d",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            self.run_dir / "prometheus.log",
        )
        self.process.start()

    async def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Wait until `/-/ready` answers 200; `DeploymentError` with the log tail if not."""
        procs = [self.process] if self.process is not None else []
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def check() -> Observation[None]:
                raise_if_exited(procs)
                try:
                    status = (await client.get(f"{self.url}/-/ready")).status_code
                except httpx.TransportError as exc:
                    return Observation(False, f"{type(exc).__name__}: {exc}", None)
                return Observation(status == 200, f"HTTP {status}", None)

            await poll_until(
                check,
                what=f"prometheus at {self.url} not ready",
                timeout_s=timeout_s,
                interval_s=0.1,
                context=lambda: "\n".join(p.log_tail() for p in procs),
            )

    async def wait_targets_up(self, addresses: Sequence[str], timeout_s: float = 20.0) -> None:
        """Wait until every `host:port` in `addresses` has been scraped with health `up`."""
        await self.wait_scraped_after(addresses, 0.0, timeout_s)

    async def wait_scraped_after(
        self, addresses: Sequence[str], after_unix: float, timeout_s: float = 20.0
    ) -> None:
        """Wait until every `host:port` in `addresses` was scraped `up` after `after_unix`.

        Used after a restart, so that no measured window starts before Prometheus has seen
        the restarted process's fresh counters. Prometheus exiting meanwhile raises at once
        (`raise_if_exited`: a `DeploymentFault` when it was killed).
        """
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def check() -> Observation[None]:
                if self.process is not None:
                    raise_if_exited([self.process])
                try:
                    body = (await client.get(f"{self.url}/api/v1/targets")).json()
                    done = {
                        t["labels"]["instance"]
                        for t in body["data"]["activeTargets"]
                        if t.get("health") == "up"
                        and parse_rfc3339(t.get("lastScrape", "")) > after_unix
                    }
                except (httpx.TransportError, ValueError, KeyError) as exc:
                    return Observation(False, f"{type(exc).__name__}: {exc}", None)
                pending = sorted(set(addresses) - done)
                return Observation(not pending, f"not scraped up yet: {pending}", None)

            await poll_until(
                check,
                what="prometheus targets not scraped up",
                timeout_s=timeout_s,
                interval_s=0.1,
            )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


_FRACTION = re.compile(r"\.(\d+)")


def parse_rfc3339(stamp: str) -> float:
    """Unix seconds of a Prometheus RFC 3339 time (nanosecond fractions allowed); 0 if empty.

    Pure. Raises ValueError on a malformed time.
    """
    if not stamp or stamp.startswith("0001-01-01"):
        return 0.0
    text = stamp.replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    return datetime.fromisoformat(text).timestamp()
