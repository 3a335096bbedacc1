"""The package's shape: public names of the study layer, no import cycle, layers respected.

The import graph is read from the source with `ast` (every `import` / `from ... import`,
including imports inside functions and `TYPE_CHECKING` blocks), so a cycle hidden in a
function body is found too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dynamo_tune
import dynamo_tune.study as study

ROOT = Path(dynamo_tune.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The dynamo_tune modules `path` imports (a `from pkg import sub` names the submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module not in known:
                continue
            subs = {f"{node.module}.{a.name}" for a in node.names}
            found.update(subs & known or {node.module})
            if subs - known:
                found.add(node.module)
    return found


def _packages_run(importer: str, imported: str, known: set[str]) -> set[str]:
    """Packages whose `__init__` importing `imported` runs, outside the importer's own."""
    parts = imported.split(".")
    parents = {".".join(parts[:i]) for i in range(2, len(parts))}
    return {p for p in parents & known if not importer.startswith(p + ".")}


def direct_graph() -> dict[str, set[str]]:
    """Module -> the dynamo_tune modules its own import statements name."""
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def import_graph() -> dict[str, set[str]]:
    """Module -> the dynamo_tune modules importing it runs (packages' `__init__` included)."""
    known = set(_modules())
    return {
        name: direct | {p for m in direct for p in _packages_run(name, m, known)} - {name}
        for name, direct in direct_graph().items()
    }


def closure(graph: dict[str, set[str]], name: str) -> set[str]:
    """Every module `name` reaches in `graph`."""
    seen: set[str] = set()
    todo = list(graph[name])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def first_docstring_line(name: str) -> str:
    return (ast.get_docstring(ast.parse(_modules()[name].read_text())) or "").splitlines()[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_hidden_one_and_accepts_a_dag() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_of_a_module_are_read_from_function_bodies_too(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "from dynamo_tune.deploy import base\n"
        "def f():\n    from dynamo_tune.study.spec.space import Candidate\n"
        "    import dynamo_tune.errors\n"
    )
    known = {"dynamo_tune.deploy", "dynamo_tune.deploy.base", "dynamo_tune.study.spec.space",
             "dynamo_tune.errors"}  # fmt: skip
    assert _imports(src, known) == {
        "dynamo_tune.deploy.base",
        "dynamo_tune.study.spec.space",
        "dynamo_tune.errors",
    }


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 80  # every module was read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_lower_packages_never_import_the_study_layer_or_the_cli() -> None:
    upper = ("dynamo_tune.study", "dynamo_tune.report", "dynamo_tune.cli")
    for name, imported in import_graph().items():
        if name.startswith(("dynamo_tune.metrics", "dynamo_tune.deploy", "dynamo_tune.workload")):
            bad = sorted(m for m in imported if m.startswith(upper))
            assert not bad, f"{name} imports {bad}"


def test_the_report_reads_studies_and_the_study_layer_knows_no_report() -> None:
    graph = import_graph()
    for name, imported in graph.items():
        if name.startswith("dynamo_tune.study"):
            assert not [m for m in imported if m.startswith("dynamo_tune.report")], name
        if name.startswith("dynamo_tune.report"):
            assert not [m for m in imported if m.startswith("dynamo_tune.cli")], name
    # every report module but `writing` is pure: it reads a study object, never a file
    for module in (m for m in graph if m.startswith("dynamo_tune.report.")):
        first = first_docstring_line(module)
        assert ("Does I/O" in first) == (module == "dynamo_tune.report.writing"), module
        assert "Pure" in first or module == "dynamo_tune.report.writing", module


SPEC_MODULES = ("dynamo_tune.deploy.spec", "dynamo_tune.workload.spec")
IMPLEMENTATIONS = {
    "dynamo_tune.process",
    "dynamo_tune.deploy.command",
    "dynamo_tune.deploy.external",
    "dynamo_tune.deploy.factory",
    "dynamo_tune.deploy.local",
    "dynamo_tune.deploy.prometheus",
    "dynamo_tune.deploy.readiness",
    "dynamo_tune.deploy.stack_state",
    "dynamo_tune.workload.client",
    "dynamo_tune.workload.command",
    "dynamo_tune.workload.factory",
    "dynamo_tune.workload.runner",
    "dynamo_tune.workload.workloads",
}


@pytest.mark.parametrize("spec_module", SPEC_MODULES)
def test_a_spec_module_is_a_leaf_of_pure_modules(spec_module: str) -> None:
    reached = closure(direct_graph(), spec_module)
    assert reached, "a spec module imports at least its own building blocks"
    assert not reached & IMPLEMENTATIONS
    impure = {m for m in reached if "Pure" not in first_docstring_line(m)}
    assert not impure, f"{spec_module} reaches modules that do I/O: {sorted(impure)}"


def test_study_public_names_are_pinned() -> None:
    assert study.__all__ == [
        "Candidate",
        "LoadedSpec",
        "Objective",
        "RunSummary",
        "SearchSpace",
        "ServicesFactory",
        "StudyAttr",
        "StudyHandle",
        "StudySpec",
        "TrialAttr",
        "TrialServices",
        "build_services",
        "confirm_study_file",
        "load_spec",
        "open_existing",
        "open_for_run",
        "run_study",
        "run_study_file",
        "storage_target",
    ]
    assert all(hasattr(study, name) for name in study.__all__)


def test_metrics_and_stack_commands_start_without_optuna() -> None:
    code = (
        "import sys\n"
        "from dynamo_tune.cli.main import build_parser\n"
        "build_parser()\n"
        "import dynamo_tune.cli.metrics_cmd, dynamo_tune.cli.stack_cmd\n"
        "print(sorted(m for m in ('optuna', 'sqlalchemy', 'optuna_dashboard') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
