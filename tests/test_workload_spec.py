"""The workload section of a study file and the factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from dynamo_tune.errors import SpecError
from dynamo_tune.workload import (
    AgenticWorkload,
    AgenticWorkloadSpec,
    CommandWorkload,
    TraceWorkload,
    Workload,
    WorkloadSpec,
    make_workload,
)
from dynamo_tune.workload.distributions import Fixed, Uniform

ADAPTER: TypeAdapter[object] = TypeAdapter(WorkloadSpec)
TRACE = Path("/work/shared/traces/mooncake-conversation-trace.jsonl")


def test_issue_example_is_valid_with_defaults() -> None:
    spec = ADAPTER.validate_python(
        {
            "kind": "agentic",
            "sessions": 16,
            "turns": 4,
            "concurrency": 8,
            "seed": 0,
            "hints": {"dialect": "dynamo"},
        }
    )
    assert isinstance(spec, AgenticWorkloadSpec)
    assert spec.output_tokens == Fixed(value=32)
    assert spec.hints.model_copy(update={"session_id": False}).session_id is False


def test_numbers_and_mappings_are_distributions() -> None:
    spec = AgenticWorkloadSpec.model_validate(
        {"appended_tokens": 100, "output_tokens": {"dist": "uniform", "low": 8, "high": 64}}
    )
    assert spec.appended_tokens == Fixed(value=100)
    assert spec.output_tokens == Uniform(dist="uniform", low=8, high=64)


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"kind": "agentic", "sesions": 3}, "sesions"),
        ({"kind": "agentic", "sessions": 0}, "sessions"),
        ({"kind": "agentic", "rate": -1}, "rate"),
        ({"kind": "agentic", "output_tokens": {"dist": "uniform", "low": 9, "high": 1}}, "low"),
        ({"kind": "agentic", "hints": {"dialect": "http2"}}, "dialect"),
        ({"kind": "trace"}, "path"),
        ({"kind": "command", "argv": []}, "argv"),
        ({"kind": "command", "argv": ["aiperf", "--url={frontend_ur}"]}, "workload.argv[1]"),
        ({"kind": "nope"}, "kind"),
    ],
)
def test_bad_input_names_the_field(doc: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ADAPTER.validate_python(doc)
    assert where in str(exc.value)


def test_make_workload_builds_each_kind() -> None:
    agentic = make_workload(AgenticWorkloadSpec(sessions=2, turns=2), block_size=16)
    assert isinstance(agentic, AgenticWorkload)
    assert isinstance(agentic, Workload)
    assert agentic.kve_ceiling is not None and 0 < agentic.kve_ceiling < 1
    trace = make_workload(
        ADAPTER.validate_python({"kind": "trace", "path": str(TRACE), "limit": 50}),
        block_size=16,
    )
    assert isinstance(trace, TraceWorkload)
    assert len(trace.plan) == 50
    command = make_workload(
        ADAPTER.validate_python({"kind": "command", "argv": ["true"]}), block_size=16
    )
    assert isinstance(command, CommandWorkload)
    with pytest.raises(ValueError, match="block_size"):
        make_workload(AgenticWorkloadSpec(), block_size=0)


def test_missing_trace_is_a_spec_error(tmp_path: Path) -> None:
    spec = ADAPTER.validate_python({"kind": "trace", "path": str(tmp_path / "none.jsonl")})
    with pytest.raises(SpecError, match="cannot read trace"):
        make_workload(spec, block_size=16)  # type: ignore[arg-type]
