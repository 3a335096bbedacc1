"""The `deployment:` section of study.yaml: which Dynamo deployment a study tunes. Pure.

Three kinds, discriminated by `kind`:
- `local`: the embedded stack (real frontend + KV router + mocker workers, one machine);
- `external`: an already-running deployment given by URLs (router parameters are fixed);
- `command`: user argv templates that start / apply / reset / stop a deployment.
Every spec exposes `block_size`: the KV block size (tokens) the workload should assume.
This module imports no implementation: `dynamo_tune.deploy.factory.make_deployment(spec)`
builds the matching `Deployment`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.templates import check_template
from dynamo_tune.errors import SpecError

DEFAULT_MODEL_NAME = "tiny"


class MockerSpec(BaseModel):
    """How each mocker worker simulates its engine (flags of `python -m dynamo.mocker`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    speedup_ratio: float = Field(
        default=10.0, ge=0, allow_inf_nan=False, description="Simulated time speedup (0 = none)"
    )
    block_size: int = Field(default=16, ge=1, description="KV block size in tokens")
    num_gpu_blocks: int = Field(default=512, ge=1, description="KV blocks per worker")
    max_num_seqs: int | None = Field(default=None, ge=1, description="Batch size limit (256)")
    max_num_batched_tokens: int | None = Field(
        default=None, ge=1, description="Tokens per iteration (8192)"
    )
    enable_prefix_caching: bool = True
    extra_args: list[str] = Field(
        default_factory=list, description="More `dynamo.mocker` arguments, passed verbatim"
    )


class FrontendBuckets(BaseModel):
    """Frontend histogram layout (`DYN_METRICS_TTFT_*`, `DYN_METRICS_ITL_*`); ~7 % wide."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_min: float = Field(default=0.001, gt=0)
    ttft_max: float = Field(default=60.0, gt=0)
    ttft_count: int = Field(default=160, ge=2, le=512)
    itl_min: float = Field(default=0.0005, gt=0)
    itl_max: float = Field(default=10.0, gt=0)
    itl_count: int = Field(default=160, ge=2, le=512)

    @model_validator(mode="after")
    def _ordered(self) -> FrontendBuckets:
        for name in ("ttft", "itl"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if not low < high:
                raise ValueError(f"`{name}_min < {name}_max` must hold, but got ({low=}, {high=}).")
        return self


class LocalDeploymentSpec(BaseModel):
    """The embedded local stack: N mocker workers, one frontend, optionally Prometheus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local"] = "local"
    workers: int = Field(default=2, ge=1, le=64)
    mocker: MockerSpec = Field(default_factory=MockerSpec)
    isolation: Literal["restart", "none"] = Field(
        default="restart",
        description="restart: restart workers on every apply (cold KV caches each trial)",
    )
    router: RouterConfig = Field(
        default_factory=RouterConfig, description="Router settings in force at start"
    )
    prometheus: bool | Literal["auto"] = Field(
        default="auto", description="auto: start Prometheus when the binary is on PATH"
    )
    scrape_interval_s: float = Field(default=1.0, gt=0, le=60)
    run_dir: Path | None = Field(
        default=None, description="Logs, discovery dir, TSDB (default: a fresh temp dir)"
    )
    model_name: str = Field(default=DEFAULT_MODEL_NAME, min_length=1)
    buckets: FrontendBuckets = Field(default_factory=FrontendBuckets)
    ready_timeout_s: float = Field(default=60.0, gt=0)
    request_trace: Path | None = Field(
        default=None,
        description=(
            "Capture: the frontend appends Dynamo's request trace (one plain JSONL line per "
            "finished request) to this file, across restarts (in a study file, relative to "
            "its folder)"
        ),
    )

    @property
    def block_size(self) -> int:
        return self.router.block_size or self.mocker.block_size


class _UrlDeploymentSpec(BaseModel):
    """Fields of a deployment that dynamo-tune reaches by URL (it did not pick the ports)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frontend_url: str = Field(pattern=r"^https?://")
    model: str = Field(min_length=1)
    metrics_urls: list[str] = Field(default_factory=list, description="Frontend's first")
    prometheus_url: str | None = None
    scrape_interval_s: float | None = Field(default=None, gt=0)
    router: RouterConfig = Field(
        default_factory=RouterConfig, description="Router settings in force at start"
    )
    kv_block_size: int = Field(default=16, ge=1, description="The deployment's KV block size")

    @property
    def block_size(self) -> int:
        return self.router.block_size or self.kv_block_size

    def endpoints(self) -> Endpoints:
        return Endpoints(
            frontend_url=self.frontend_url.rstrip("/"),
            model=self.model,
            metrics_urls=list(self.metrics_urls),
            prometheus_url=self.prometheus_url,
            scrape_interval_s=self.scrape_interval_s,
        )


class ExternalDeploymentSpec(_UrlDeploymentSpec):
    """An already-running deployment. Its router is fixed: `router` says what it runs."""

    kind: Literal["external"]


class CommandDeploymentSpec(_UrlDeploymentSpec):
    """A deployment driven by user commands (argv templates, run without a shell).

    Each template argument may hold `{router.<field>}` (e.g. `{router.temperature}`),
    `{frontend_url}`, `{model}` or `{run_dir}`; an argument that is exactly `{router_flags}`
    expands to the frontend flags the local stack would pass; `{{` / `}}` are literal braces
    (`dynamo_tune.argv_template`). `start`, `apply`, `reset` and `stop` run to completion; a
    non-zero exit fails with the tail of the command's stderr.
    """

    kind: Literal["command"]
    start: list[str] | None = None
    apply: list[str] | None = None
    reset: list[str] | None = None
    stop: list[str] | None = None
    ready_url: str = Field(pattern=r"^https?://", description="GET answers 2xx when ready")
    run_dir: Path | None = None
    cwd: Path | None = None
    env: dict[str, str] = Field(default_factory=dict, description="Added to the environment")
    command_timeout_s: float = Field(default=600.0, gt=0)
    ready_timeout_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _templates_known(self) -> CommandDeploymentSpec:
        for name in ("start", "apply", "reset", "stop"):
            template = getattr(self, name)
            if template is not None:
                if not template:
                    raise ValueError(f"`{name}` must be a non-empty argv list or omitted")
                try:
                    check_template(template, where=f"deployment.{name}")
                except SpecError as exc:  # pydantic reports ValueErrors as validation errors
                    raise ValueError(str(exc)) from None
        return self


def _kind(value: Any) -> str:
    """The discriminator: `kind`, defaulting to "local" (so `deployment: {}` is the stack)."""
    if isinstance(value, dict):
        return str(value.get("kind", "local"))
    return str(getattr(value, "kind", "local"))


AnyDeploymentSpec = LocalDeploymentSpec | ExternalDeploymentSpec | CommandDeploymentSpec
DeploymentSpec = Annotated[
    Annotated[LocalDeploymentSpec, Tag("local")]
    | Annotated[ExternalDeploymentSpec, Tag("external")]
    | Annotated[CommandDeploymentSpec, Tag("command")],
    Discriminator(_kind),
]
