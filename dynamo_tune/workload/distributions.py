"""Sampling distributions for token counts and think times. Pure.

A distribution is written in a study file either as a bare number (a fixed value) or as a
mapping with a `dist` key: `{dist: uniform, low: 100, high: 900}`,
`{dist: normal, mean: 500, std: 100}`, `{dist: exponential, mean: 0.5}`. Samples are drawn
from a caller-provided `random.Random`, so a generator seeded once is reproducible.
"""

from __future__ import annotations

import math
import random
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def sample(self, rng: random.Random) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_count(self, rng: random.Random, minimum: int = 0) -> int:
        """A sample rounded to an integer count, at least `minimum`."""
        return max(minimum, round(self.sample(rng)))


class Fixed(_Dist):
    """Always `value`."""

    dist: Literal["fixed"] = "fixed"
    value: float = Field(ge=0)

    def sample(self, rng: random.Random) -> float:
        return self.value


class Uniform(_Dist):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low > self.high:
            raise ValueError(f"`low <= high` must hold, but got low={self.low}, high={self.high}")
        return self

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


class Normal(_Dist):
    """Normal(mean, std), clipped to [low, high]."""

    dist: Literal["normal"]
    mean: float = Field(ge=0)
    std: float = Field(ge=0)
    low: float = Field(default=0.0, ge=0)
    high: float = Field(default=math.inf, ge=0)

    def sample(self, rng: random.Random) -> float:
        return min(self.high, max(self.low, rng.gauss(self.mean, self.std)))


class Exponential(_Dist):
    """Exponential with the given `mean` (0 gives always 0)."""

    dist: Literal["exponential"]
    mean: float = Field(ge=0)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0


def _number_to_fixed(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int | float):
        return {"dist": "fixed", "value": value}
    return value


Dist = Annotated[
    Fixed | Uniform | Normal | Exponential,
    Field(discriminator="dist"),
    BeforeValidator(_number_to_fixed),
]
"""A distribution field: a bare number or a `{dist: ...}` mapping."""


def mean_of(dist: Fixed | Uniform | Normal | Exponential) -> float:
    """The (unclipped) mean of `dist`."""
    match dist:
        case Fixed():
            return dist.value
        case Uniform():
            return (dist.low + dist.high) / 2
        case Normal():
            return min(dist.high, max(dist.low, dist.mean))
        case Exponential():
            return dist.mean
    raise TypeError(f"unknown distribution {dist!r}")  # pragma: no cover
