"""The agentic generator: sessions of prefix-consistent multi-turn calls. Pure.

Deterministic from the spec's seed: every random stream is a `random.Random` seeded with a
string naming its purpose (`"<seed>:system"`, `"<seed>:session:<s>"`, `"<seed>:arrivals"`),
so the same seed gives the same prompts, lengths and arrival offsets. See
`AgenticWorkloadSpec` for the shape of a session; the plan lists turn 0 of every session,
then turn 1 of every session, and so on (a turn always after the one it extends).
"""

from __future__ import annotations

import random

from dynamo_tune.vocab import VOCAB_SIZE
from dynamo_tune.workload.distributions import mean_of
from dynamo_tune.workload.plan import Message, PlannedRequest
from dynamo_tune.workload.spec import AgenticWorkloadSpec, WarmupSpec


def random_words(rng: random.Random, n: int) -> tuple[int, ...]:
    """`n` vocabulary indices drawn uniformly."""
    return tuple(rng.randrange(VOCAB_SIZE) for _ in range(n))


def session_arrivals(spec: AgenticWorkloadSpec) -> list[float | None]:
    """Start offset (s) of each session: Poisson at `rate`, or None (closed loop)."""
    if spec.rate is None:
        return [None] * spec.sessions
    rng = random.Random(f"{spec.seed}:arrivals")
    offsets: list[float | None] = []
    t = 0.0
    for _ in range(spec.sessions):
        offsets.append(t)
        t += rng.expovariate(spec.rate)
    return offsets


def agentic_plan(spec: AgenticWorkloadSpec) -> list[PlannedRequest]:
    """Every request of the workload, in plan (arrival) order."""
    system_rng = random.Random(f"{spec.seed}:system")
    system = Message("system", random_words(system_rng, spec.system_prompt_tokens))
    base = (system,) if system.tokens else ()
    think_mean = mean_of(spec.think_time_s)
    per_session = spec.turns * spec.fan_out

    # Draw each session's turns up front from its own stream, then lay them out turn-major.
    turns: list[list[list[tuple[Message, Message, float]]]] = []
    for s in range(spec.sessions):
        rng = random.Random(f"{spec.seed}:session:{s}")
        context = random_words(rng, spec.session_context_tokens.sample_count(rng))
        session_turns = []
        for t in range(spec.turns):
            think = spec.think_time_s.sample(rng) if t > 0 else 0.0
            branches = []
            for _ in range(spec.fan_out):
                new = random_words(rng, spec.appended_tokens.sample_count(rng, 1))
                user = Message("user", (context + new) if t == 0 else new)
                reply = Message(
                    "assistant", random_words(rng, spec.output_tokens.sample_count(rng, 1))
                )
                branches.append((user, reply, think))
            session_turns.append(branches)
        turns.append(session_turns)

    arrivals = session_arrivals(spec)
    history: list[tuple[Message, ...]] = [base] * spec.sessions
    previous: list[tuple[int, ...]] = [()] * spec.sessions
    plan: list[PlannedRequest] = []
    for t in range(spec.turns):
        for s in range(spec.sessions):
            indices = []
            for b, (user, reply, think) in enumerate(turns[s][t]):
                indices.append(len(plan))
                plan.append(
                    PlannedRequest(
                        index=len(plan),
                        session=f"s{s}",
                        turn=t,
                        branch=b,
                        messages=(*history[s], user),
                        max_tokens=len(reply.tokens),
                        offset_s=arrivals[s] if t == 0 else None,
                        after=previous[s],
                        delay_s=think,
                        hint_iat_s=think_mean,
                        session_requests=per_session,
                    )
                )
            user0, reply0, _ = turns[s][t][0]
            history[s] = (*history[s], user0, reply0)
            previous[s] = tuple(indices)
    return plan


def warmup_request(spec: WarmupSpec, seed: int, i: int) -> PlannedRequest:
    """Warmup request `i`: fresh random words (no prefix shared with the measured plan)."""
    rng = random.Random(f"{seed}:warmup:{i}")
    return PlannedRequest(
        index=i,
        session=f"warmup{i}",
        turn=0,
        branch=0,
        messages=(Message("user", random_words(rng, spec.prompt_tokens)),),
        max_tokens=spec.output_tokens,
    )
