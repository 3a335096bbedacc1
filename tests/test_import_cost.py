"""Importing the study file's schema loads only pure modules: no deployment, no process
management, no workload client, no HTTP, no Optuna (the lower packages' `__init__`s import
their I/O names on first use)."""

from __future__ import annotations

import json
import subprocess
import sys

NOT_LOADED = [
    "dynamo_tune.deploy.local",
    "dynamo_tune.deploy.factory",
    "dynamo_tune.deploy.prometheus",
    "dynamo_tune.process",
    "dynamo_tune.workload.client",
    "dynamo_tune.workload.runner",
    "dynamo_tune.workload.factory",
    "dynamo_tune.metrics._prom_api",
    "dynamo_tune.metrics._prometheus",
    "dynamo_tune.metrics._scrape",
    "httpx",
    "prometheus_client",
    "optuna",
    "sqlalchemy",
]

PROBE = """
import ast, json, sys
import dynamo_tune.study.spec.schema
first_lines = {}
for name, module in sorted(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    if name.startswith("dynamo_tune.") and not path.endswith("__init__.py"):
        with open(path, encoding="utf-8") as f:
            first_lines[name] = (ast.get_docstring(ast.parse(f.read())) or "").splitlines()[0]
print(json.dumps({"loaded": sorted(sys.modules), "first_lines": first_lines}))
"""


def _import_schema() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_the_schema_loads_no_implementation() -> None:
    found = _import_schema()
    loaded = found["loaded"]
    assert isinstance(loaded, list)
    assert "dynamo_tune.study.spec.schema" in loaded
    assert [name for name in NOT_LOADED if name in loaded] == []
    first_lines = found["first_lines"]
    assert isinstance(first_lines, dict)
    impure = {n: line for n, line in first_lines.items() if "Pure" not in line}
    assert impure == {}, "importing the schema runs modules that do I/O"
