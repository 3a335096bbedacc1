"""A workload's request plan: the prompts, output lengths and arrival rules. Pure.

Generators (agentic, trace, dynamo-trace, warmup) produce a list of `PlannedRequest` in arrival
order; the runner sends them. A request is released either at `offset_s` after the run's start
(a root with an absolute arrival time), or as soon as a slot is free (a root with
`offset_s=None`), or `delay_s` after every request in `after` has finished (a dependent turn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain

from dynamo_tune.vocab import text


@dataclass(frozen=True, eq=False)
class Message:
    """One chat message; `tokens` are vocabulary indices (one word = one token)."""

    role: str
    tokens: tuple[int, ...]

    @cached_property
    def content(self) -> str:
        """The message text (rendered once; messages are shared by later turns)."""
        return text(self.tokens)


@dataclass(frozen=True, eq=False)
class PlannedRequest:
    """One chat completion to send. `index` is its position in the plan (arrival order).

    With `raw_prompt`, a completion (`/v1/completions`) of `prompt_text` instead: the engine
    then sees exactly the messages' tokens, with no chat template around them.
    """

    index: int
    session: str
    turn: int
    branch: int
    messages: tuple[Message, ...]
    max_tokens: int
    offset_s: float | None = None
    after: tuple[int, ...] = ()
    delay_s: float = 0.0
    hint_iat_s: float | None = field(default=None, compare=False)
    session_requests: int = 1
    raw_prompt: bool = False

    @property
    def prompt_tokens(self) -> list[int]:
        """The prompt as the tiny model sees it: every message's tokens, concatenated."""
        return list(chain.from_iterable(m.tokens for m in self.messages))

    @property
    def prompt_length(self) -> int:
        return sum(len(m.tokens) for m in self.messages)

    @property
    def prompt_text(self) -> str:
        """The raw prompt of a completion: every message's text, space-joined."""
        return " ".join(m.content for m in self.messages)


def validate_plan(plan: list[PlannedRequest]) -> None:
    """Raise ValueError unless indices are 0..n-1 and every dependency points backwards."""
    for position, request in enumerate(plan):
        if request.index != position:
            raise ValueError(f"plan[{position}].index must be {position}, got {request.index}")
        for parent in request.after:
            if not 0 <= parent < position:
                raise ValueError(
                    f"plan[{position}] depends on {parent}, which is not an earlier request"
                )
