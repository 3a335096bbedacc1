"""The fault-injection soak, short: two runners on one study (real PostgreSQL, each with its
own local Dynamo stack) while a seeded injector SIGKILLs workers, frontends, Prometheus and a
runner and cuts or restarts the database; every invariant of benchmarks/soak.py must hold.

The long run (`uv run python benchmarks/soak.py --minutes 20 --seed 1`) is the benchmark.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from fixtures.postgres import PostgresServer

_SPEC = importlib.util.spec_from_file_location(
    "soak", Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
)
assert _SPEC is not None and _SPEC.loader is not None
soak_module = importlib.util.module_from_spec(_SPEC)
sys.modules["soak"] = soak_module  # dataclasses resolve their module by name
_SPEC.loader.exec_module(soak_module)
FAULT_KINDS, SoakConfig = soak_module.FAULT_KINDS, soak_module.SoakConfig

pytestmark = pytest.mark.integration


def test_a_short_seeded_soak_keeps_every_invariant(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    cfg = SoakConfig(
        minutes=2.0,
        grace_minutes=5.0,
        seed=7,
        mean_gap_s=12.0,
        n_trials=6,
        confirm_top=1,
        confirm_repeats=2,
    )
    lines: list[str] = []
    result = soak_module.soak(cfg, postgres, tmp_path, say=lines.append)
    report = "\n".join(lines) + "\n" + soak_module.table(result)
    assert result.ok, report
    injected = {i.kind for i in result.injections if i.done}
    assert len(injected) >= 3, report  # the seed draws several kinds of fault
    assert injected <= set(FAULT_KINDS)
