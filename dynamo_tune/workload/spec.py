"""The `workload:` section of a study file. Pure.

`WorkloadSpec` is a union discriminated on `kind`: `agentic` (generated shared-prefix sessions),
`trace` (Mooncake-format JSONL replay), `dynamo-trace` (replay of Dynamo's own request traces)
and `command` (an external program such as AIPerf).
Every kind carries `hints`, the base `PrefixHints` a study overlays with its searched `hints.*`
values and validates again (`PrefixHints.model_validate({**spec.hints.model_dump(), **values})`,
so a bad value is a validation error); `Workload.run` receives the overlaid hints.
This module imports no implementation: `dynamo_tune.workload.factory.make_workload(spec)`
builds the workload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynamo_tune import argv_template
from dynamo_tune.errors import SpecError
from dynamo_tune.workload.distributions import Dist, Fixed
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.window import WindowSpec

Count = Annotated[int, Field(ge=1)]


class WarmupSpec(BaseModel):
    """A warmup phase before the measured window, excluded from it.

    Warmup requests share no prefix with the measured ones (their words come from a separate
    random stream), so they warm connections and the stack but not the measured prefixes.
    The phase sends `requests` requests, then keeps sending until `seconds` have passed.
    After it, the runner waits `quiet_gap_s` (None: the quiet gap between windows,
    `dynamo_tune.deploy.base.quiet_gap_seconds`) so a scrape separates warmup from the window.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(default=0, ge=0, description="Warmup requests to send")
    seconds: float = Field(default=0.0, ge=0, description="Minimum warmup duration")
    quiet_gap_s: float | None = Field(default=None, ge=0, description="Pause after warmup")
    prompt_tokens: int = Field(default=256, ge=1, description="Prompt length of a warmup request")
    output_tokens: int = Field(default=8, ge=1, description="max_tokens of a warmup request")


class _RunSettings(BaseModel):
    """Settings every HTTP-driven workload shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, description="Seed of every random choice (prompts, arrivals)")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Max requests in flight (None: 8 closed-loop, else unbounded)",
    )
    request_timeout_s: float = Field(default=60.0, gt=0, description="Per-request total timeout")
    max_failure_ratio: float = Field(
        default=0.05, ge=0, le=1, description="Failed/sent above this marks the run failed"
    )
    ignore_eos: bool = Field(
        default=True, description="Send `ignore_eos` so each reply has exactly max_tokens tokens"
    )
    warmup: WarmupSpec = Field(default_factory=WarmupSpec)
    window: WindowSpec = Field(
        default_factory=WindowSpec,
        description="The measured window: the full run or its steady part (workload/window.py)",
    )
    hints: PrefixHints = Field(default_factory=PrefixHints)


class AgenticWorkloadSpec(_RunSettings):
    """Sessions of multi-turn calls on a shared system prompt (prefix-consistent histories).

    Turn 0 of a session sends [system, user(session context + appended)]; turn t sends the
    session's earlier user/assistant messages plus a new user message of `appended_tokens`.
    The assistant content is generated here (`output_tokens` words), not taken from the model,
    so each turn's prefix is known in advance. With `fan_out` k > 1, each turn sends k calls
    sharing the history (each with its own new user message); the next turn waits for all k and
    continues the history of call 0. Arrivals: closed loop (`concurrency` in flight, default 8)
    or, with `rate`, sessions start as a Poisson process of `rate` sessions/s (with `turns: 1`,
    that is requests/s), optionally capped by `concurrency`.
    """

    kind: Literal["agentic"] = "agentic"
    sessions: Count = 16
    turns: Count = 4
    rate: float | None = Field(default=None, gt=0, description="Poisson session arrivals per s")
    system_prompt_tokens: int = Field(default=1000, ge=0, description="Shared system prompt")
    session_context_tokens: Dist = Field(
        default=Fixed(value=1500), description="Per-session context in the first user message"
    )
    appended_tokens: Dist = Field(
        default=Fixed(value=500), description="New user tokens per turn (at least 1)"
    )
    output_tokens: Dist = Field(default=Fixed(value=32), description="max_tokens (at least 1)")
    think_time_s: Dist = Field(
        default=Fixed(value=0.0), description="Pause after a turn's response before the next"
    )
    fan_out: Count = Field(default=1, description="Parallel calls per turn sharing its prefix")

    @property
    def in_flight_limit(self) -> int | None:
        """Max requests in flight: `concurrency`, or 8 closed-loop, or unbounded with `rate`."""
        if self.concurrency is not None:
            return self.concurrency
        return None if self.rate is not None else 8


class TraceWorkloadSpec(_RunSettings):
    """Replay of a Mooncake-format JSONL trace at its timestamps (divided by `speedup`).

    Each `hash_ids` block (`trace_block_size` tokens in the trace) becomes `block_size` tokens
    (None: the deployment's KV block size), the same words for the same id, so equal blocks
    give equal token blocks; input lengths scale by block_size / trace_block_size.
    """

    kind: Literal["trace"]
    path: Path
    speedup: float = Field(default=1.0, gt=0, description="Time compression of the timestamps")
    trace_block_size: Count = Field(default=512, description="Tokens per hash block in the trace")
    block_size: int | None = Field(default=None, ge=1, description="Tokens per block on replay")
    offset: int = Field(default=0, ge=0, description="Records to skip from the start")
    limit: int | None = Field(default=None, ge=1, description="Records to replay")
    output_tokens_scale: float = Field(default=1.0, gt=0, description="Multiplies output_length")
    max_output_tokens: int | None = Field(default=None, ge=1, description="Caps output tokens")
    session_prefix_blocks: Count = Field(
        default=2, description="Leading hash ids that name a request's session (hint id)"
    )

    @property
    def in_flight_limit(self) -> int | None:
        """Max requests in flight (the trace's timestamps drive arrivals; None: unbounded)."""
        return self.concurrency


class DynamoTraceWorkloadSpec(_RunSettings):
    """Live replay of Dynamo request traces (`dynamo.request.trace.v1`, `DYN_REQUEST_TRACE=1`).

    `path` is a file, a folder of `*.jsonl` / `*.jsonl.gz` segments or a glob (in a study file,
    relative to its folder). The records kept are those of `models`
    (None: every model) that arrived in the slice [`start_s`, `start_s` + `duration_s`) after
    the first record; with `sessions`, that many whole sessions sampled with `seed`. Each
    request is a raw-prompt completion of exactly its recorded `input_length` tokens, built
    from its block hashes (equal hashes, equal token blocks) and asking for its recorded
    `output_tokens`. A session's first request starts at its recorded offset, each later one
    the recorded gap after the previous one of its session completed; times divide by
    `speedup`.
    """

    kind: Literal["dynamo-trace"]
    path: Path
    speedup: float = Field(default=1.0, gt=0, description="Divides every recorded time")
    start_s: float = Field(default=0.0, ge=0, description="Slice start after the first record")
    duration_s: float | None = Field(default=None, gt=0, description="Slice length (None: all)")
    sessions: int | None = Field(default=None, ge=1, description="Whole sessions to sample")
    models: list[str] | None = Field(
        default=None, min_length=1, description="Keep only these models' records (None: all)"
    )

    @property
    def in_flight_limit(self) -> int | None:
        """Max requests in flight (the trace's times drive arrivals; None: unbounded)."""
        return self.concurrency


COMMAND_PLACEHOLDERS = ("frontend_url", "model")
"""The placeholders a command workload's argv may use."""


class CommandWorkloadSpec(BaseModel):
    """An external program (e.g. `aiperf profile ...`) run without a shell.

    Each argument is an argv template (`dynamo_tune.argv_template`, the deployment commands'
    syntax): `{frontend_url}` and `{model}` are the deployment's values, `{{` / `}}` literal
    braces; any other placeholder is a validation error naming `workload.argv[i]`. The window
    is the program's start and end.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables")
    cwd: Path | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    hints: PrefixHints = Field(default_factory=PrefixHints, description="Unused by commands")

    @model_validator(mode="after")
    def _argv_valid(self) -> Self:
        if not self.argv[0]:
            raise ValueError("argv[0] must name a program, but got ''")
        try:
            argv_template.check(self.argv, "workload.argv", COMMAND_PLACEHOLDERS)
        except SpecError as exc:  # pydantic reports ValueErrors as validation errors
            raise ValueError(str(exc)) from None
        return self


WorkloadSpec = Annotated[
    AgenticWorkloadSpec | TraceWorkloadSpec | DynamoTraceWorkloadSpec | CommandWorkloadSpec,
    Field(discriminator="kind"),
]
"""The study file's `workload:` section."""
