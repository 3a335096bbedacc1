"""The study file's schema: `StudySpec` and its sections. Pure.

Every model forbids unknown keys, so a typo is an error with its location, never a silently
ignored setting. Cross-section rules that need the search space's targets (ranges valid for
`RouterConfig`, baseline values inside the space, grid-able spaces) live in
`dynamo_tune.study.spec.checks`; loading and error formatting in `dynamo_tune.study.spec.loading`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dynamo_tune.deploy.spec import DeploymentSpec
from dynamo_tune.metrics import (
    DEFAULT_TIMEOUT_S,
    USE_ENV_OR_FILE,
    PrometheusAccess,
    ScoreConfig,
    url_has_credentials,
)
from dynamo_tune.study.spec.metric_names import MetricName
from dynamo_tune.workload.spec import WorkloadSpec

SamplerName = Literal["tpe", "random", "grid", "gp", "nsga2", "cmaes", "qmc"]
PresetName = Literal["dynamo-defaults", "agentic"]
"""Built-in starting points `study.enqueue` may name (`dynamo_tune.study.spec.presets`)."""
Scalar = str | bool | int | float | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplerSpec(_Strict):
    """Which Optuna sampler proposes candidates; `seed` makes its proposals reproducible."""

    name: SamplerName = "tpe"
    seed: int | None = 0


class ConfirmSpec(_Strict):
    """The confirmation stage: the top `top` configurations and the baseline, `repeats` fresh
    interleaved measurements each, compared by Welch's t
    (docs/architecture.md#noise-and-confirmation)."""

    top: int = Field(default=3, ge=1, le=20, description="Configurations to confirm")
    repeats: int = Field(
        default=3, ge=2, le=30, description="Fresh measurements of each (>= 2: an interval)"
    )


class ScreenEngineSpec(_Strict):
    """The engine model the screen replays, for a deployment that is not the local stack:
    mocker arguments that describe the real engine (docs/screening.md)."""

    workers: int = Field(ge=1, le=4096, description="Engine workers behind the router")
    block_size: int = Field(ge=1, description="KV block size in tokens")
    num_gpu_blocks: int = Field(ge=1, description="KV blocks per worker")
    speedup_ratio: float = Field(default=1.0, gt=0, description="Simulated engine speed (1 = real)")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="More engine fields of Dynamo's mocker launch config, e.g. max_num_seqs, "
        "max_num_batched_tokens, timing_model (Dynamo validates them)",
    )


class ScreenSpec(_Strict):
    """Screen in virtual time before the live search (docs/screening.md): `trials`
    configurations replayed `repeats` times each; the `top` best are measured live."""

    trials: int = Field(ge=1, le=100_000, description="Configurations to screen")
    top: int = Field(ge=1, le=50, description="Best screened configurations measured live")
    repeats: int = Field(default=3, ge=1, le=30, description="Replays per configuration (mean)")
    engine: ScreenEngineSpec | None = Field(
        default=None, description="Engine model (kind local: the stack's own mocker settings)"
    )


class StudySection(_Strict):
    """The `study:` section: identity, storage and budget of the study."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    storage: str | None = Field(
        default=None,
        description="Optuna storage URL or journal:PATH (None: sqlite:///<name>.db); relative "
        "paths are the study file's, their folder must exist; a password only as ${NAME}",
    )
    n_trials: int = Field(ge=1, description="Total COMPLETE trials the study should reach")
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall-time budget of a run's live search (not its screen or confirmation)",
    )
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    baseline: dict[str, Scalar] | None = Field(
        default=None, description="Dotted settings of the reference trial, enqueued once, first"
    )
    artifact_dir: str | None = Field(
        default=None,
        description="Artifact folder, created when needed (None: <storage file>.artifacts beside "
        "the storage file; a server database: <name>.artifacts beside the study file)",
    )
    enqueue: list[PresetName | dict[str, Scalar]] = Field(
        default_factory=list,
        description="Known starting points measured once right after the baseline: a preset "
        "name or dotted settings",
    )
    confirm: ConfirmSpec | None = Field(
        default_factory=lambda: ConfirmSpec(),
        description="Re-measure the top configurations and the baseline (false: no confirmation)",
    )
    screen: ScreenSpec | None = Field(
        default=None, description="Screen in virtual-time replay first (None: live only)"
    )
    heartbeat_interval_s: int = Field(default=10, ge=1, description="RDB trial heartbeat")
    storage_retry_s: float = Field(
        default=60,
        ge=0,
        description="How long a run retries a storage that cannot be reached before it stops "
        "(the trial's result is kept in a spill file the next run stores)",
    )
    max_failures_in_a_row: int = Field(
        default=3, ge=1, description="Stop the run after this many consecutive FAIL trials"
    )

    @field_validator("confirm", mode="before")
    @classmethod
    def _confirm_switch(cls, value: Any) -> Any:
        """`confirm: false` turns the stage off, `confirm: true` keeps the defaults."""
        if value is False:
            return None
        if value is True:
            return {}
        return value


class MetricsSpec(PrometheusAccess):
    """The `metrics:` section: where a trial's window metrics come from, and the credentials
    and TLS of a protected Prometheus (`PrometheusAccess`'s fields, inline:
    `{prometheus_url: https://..., bearer_token_env: PROM_TOKEN, tls: {ca_file: ca.pem}}`).

    `backend: auto` uses a Prometheus when there is one (`prometheus_url` here or the
    deployment's own), else scrapes the deployment's /metrics endpoints.
    """

    backend: Literal["auto", "prometheus", "scrape"] = "auto"
    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="None: the deployment's own Prometheus",
    )
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, description="Per-query timeout")

    @field_validator("prometheus_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value is not None and url_has_credentials(value):
            raise ValueError(f"remove the user:password@ part; {USE_ENV_OR_FILE}")
        return value

    @model_validator(mode="after")
    def _access_needs_prometheus(self) -> Self:
        if self.backend == "scrape" and self.has_settings:
            raise ValueError(
                "credentials and tls apply to a Prometheus; `backend: scrape` reads the "
                "deployment's /metrics endpoints directly"
            )
        return self

    def access(self) -> PrometheusAccess:
        """Only the credentials and TLS settings (what a Prometheus client needs)."""
        return self.access_only()


class ConstraintSpec(_Strict):
    """A feasibility rule: `min <= metric <= max` (at least one bound)."""

    metric: MetricName
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Self:
        if self.max is None and self.min is None:
            raise ValueError(f"constraint on {self.metric!r} needs `max` or `min`")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"`min <= max` must hold, but got min={self.min}, max={self.max}")
        return self


Direction = Annotated[
    dict[Literal["maximize", "minimize"], MetricName], Field(min_length=1, max_length=1)
]


class ObjectiveSpec(ScoreConfig):
    """The `objective:` section: the score's weights and targets (`ScoreConfig`, one home of
    their defaults and rules), repeats, constraints, directions."""

    repeats: int = Field(default=1, ge=1, le=15, description="Median of this many measurements")
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    directions: list[Direction] | None = Field(
        default=None, min_length=1, description="Pareto study: one {maximize|minimize: metric}"
    )

    def objectives(self) -> list[tuple[Literal["maximize", "minimize"], str]]:
        """(direction, metric) per objective value; a plain study maximizes `score`."""
        if not self.directions:
            return [("maximize", "score")]
        return [next(iter(d.items())) for d in self.directions]


Condition = dict[str, Scalar | list[Scalar]]
"""`when:` of a parameter: {searched parameter: value or list of values}; all must hold."""


class FloatParam(_Strict):
    """`trial.suggest_float(name, low, high, log=, step=)`."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    when: Condition | None = Field(default=None, description="Suggested only when it holds")


class IntParam(_Strict):
    """`trial.suggest_int(name, low, high, log=, step=)`."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)
    when: Condition | None = Field(default=None, description="Suggested only when it holds")


class CategoricalParam(_Strict):
    """`trial.suggest_categorical(name, choices)`."""

    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)
    when: Condition | None = Field(default=None, description="Suggested only when it holds")


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class StudySpec(_Strict):
    """A whole study file."""

    study: StudySection
    deployment: DeploymentSpec
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    workload: WorkloadSpec
    search_space: dict[str, ParamSpec] = Field(min_length=1)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
