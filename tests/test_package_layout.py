"""The package's shape: public names of the study layer, no import cycle, layers respected.

The import graph is read from the source with `ast` (every `import` / `from ... import`,
including imports inside functions and `TYPE_CHECKING` blocks), so a cycle hidden in a
function body is found too.

A module is pure when neither it nor any dynamo_tune module it reaches imports one of
`IMPURE_MODULES` at run time (`impurities`); its docstring is not consulted.
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


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for the package at `root` (dynamo_tune unless told)."""
    return {_module_name(p, root): p for p in root.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:`."""
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
    return name == "TYPE_CHECKING"


def _import_nodes(path: Path, runtime: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of `path`, in functions too; with `runtime`, not those only a
    type checker reads (the body of `if TYPE_CHECKING:`)."""
    skipped: set[int] = set()
    tree = ast.parse(path.read_text())
    if runtime:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped
    ]


def _imports(path: Path, known: set[str]) -> set[str]:
    """The dynamo_tune modules `path` imports (a `from pkg import sub` names the submodule)."""
    found: set[str] = set()
    for node in _import_nodes(path):
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


# Modules whose import means talking to the world: processes, sockets, HTTP, databases.
# A pure module (and every dynamo_tune module it reaches) imports none of them, or anything
# under them (`optuna.storages.journal`); `import optuna` alone is allowed (the samplers and
# trial objects are computation). One list, used by every purity check below.
IMPURE_MODULES = (
    "subprocess",
    "socket",
    "httpx",
    "httpx_aiohttp",
    "aiohttp",
    "sqlalchemy",
    "optuna.storages",
    "asyncio.subprocess",
    "multiprocessing",
    "urllib.request",
    "http.client",
    "dynamo_tune.process",
)


def _named(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules an absolute import statement may load: `import a.b` -> a.b;
    `from a import b` -> a and a.b (b may be a submodule)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.module is None or node.level:
        return set()
    return {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}


def impure_imports(path: Path) -> set[str]:
    """The entries of `IMPURE_MODULES` that `path` imports (the module or one under it) when
    it runs."""
    named = set().union(*(_named(n) for n in _import_nodes(path, runtime=True)))
    return {bad for bad in IMPURE_MODULES for m in named if m == bad or m.startswith(bad + ".")}


def _homes(init: Path, known: set[str]) -> dict[str, str]:
    """Name -> the module of `known` a package's `__init__` imports it from (TYPE_CHECKING
    blocks included: a package resolving its names lazily in `__getattr__` lists them there)."""
    homes: dict[str, str] = {}
    for node in _import_nodes(init):
        if isinstance(node, ast.ImportFrom) and node.module in known and not node.level:
            homes.update({a.asname or a.name: node.module for a in node.names})
    return homes


def runtime_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of `modules` that running it loads: its import statements
    outside `if TYPE_CHECKING:`, in functions too. `from pkg import Name` loads `pkg` and,
    when `pkg/__init__.py` takes `Name` from a module of its own, that module (all a lazy
    `__getattr__` loads). A module's own parent packages are not counted: their `__init__`
    is the package's public face, not the module's code (as in `direct_graph`)."""
    known = set(modules)
    homes = {name: _homes(path, known) for name, path in modules.items() if path.stem == "__init__"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in _import_nodes(path, runtime=True):
            if isinstance(node, ast.ImportFrom) and node.module in homes:
                resolved = homes[node.module]
                found.update(resolved[a.name] for a in node.names if a.name in resolved)
            found.update(m for m in _named(node) if m in known)
        graph[name] = found - {name}
    return graph


def impurities(name: str, modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """`name` and every module it reaches in `runtime_graph`, each with the impure modules it
    imports (`impure_imports`); only those that import one. {} when `name` is pure."""
    modules = _modules() if modules is None else modules
    reached = closure(runtime_graph(modules), name) | {name}
    found = {m: impure_imports(modules[m]) for m in sorted(reached)}
    return {m: bad for m, bad in found.items() if bad}


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


def _write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    """Write `files` (relative path -> source) under `root`; its modules by name."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return _modules(root)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import subprocess\n", "subprocess"),
        ("import socket as s\n", "socket"),
        ("import httpx\n", "httpx"),
        ("from httpx_aiohttp import AiohttpTransport\n", "httpx_aiohttp"),
        ("import aiohttp.web\n", "aiohttp"),
        ("from sqlalchemy.exc import OperationalError\n", "sqlalchemy"),
        ("from optuna.storages import RDBStorage\n", "optuna.storages"),
        ("from optuna import storages\n", "optuna.storages"),
        ("from asyncio import subprocess\n", "asyncio.subprocess"),
        ("import asyncio.subprocess\n", "asyncio.subprocess"),
        ("from multiprocessing import Pool\n", "multiprocessing"),
        ("import urllib.request\n", "urllib.request"),
        ("from http import client\n", "http.client"),
        ("from dynamo_tune import process\n", "dynamo_tune.process"),
        ("from dynamo_tune.process import ManagedProcess\n", "dynamo_tune.process"),
        ("def later():\n    import socket\n", "socket"),
        ("if TYPE_CHECKING:\n    pass\nelse:\n    import httpx\n", "httpx"),
    ],
)
def test_each_impure_import_is_caught(tmp_path: Path, source: str, caught: str) -> None:
    src = tmp_path / "m.py"
    src.write_text(source)
    assert impure_imports(src) == {caught}


def test_pure_imports_are_not_mistaken_for_impure_ones(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import asyncio, json, optuna, socketserver_like, urllib.parse\n"
        "from http import HTTPStatus\n"
        "from optuna.trial import TrialState\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import httpx\n    from dynamo_tune.process import ManagedProcess\n"
    )
    assert impure_imports(src) == set()


def test_the_purity_check_follows_imports_into_other_modules(tmp_path: Path) -> None:
    modules = _write_package(
        tmp_path / "pkg",
        {
            "__init__.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from pkg._net import fetch\n"
                "    from pkg._math import add\n"
                "def __getattr__(name):\n"
                "    import importlib\n"
                "    return getattr(importlib.import_module('pkg._' + name), name)\n"
            ),
            "_net.py": "def fetch():\n    import urllib.request\n",
            "_math.py": "def add(a, b):\n    return a + b\n",
            "adds.py": "from pkg import add\n",
            "fetches.py": "def f():\n    from pkg import fetch\n",
            "leaf.py": "import asyncio.subprocess\n",
            "middle.py": "from pkg import leaf\n",
            "top.py": "import pkg.middle\nimport pkg.adds\n",
            "typed.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.leaf\n",
        },
    )
    assert impurities("pkg.adds", modules) == {}  # the lazy package loads `_math` only
    assert impurities("pkg.fetches", modules) == {"pkg._net": {"urllib.request"}}
    assert impurities("pkg.top", modules) == {"pkg.leaf": {"asyncio.subprocess"}}  # 2 steps
    assert impurities("pkg.typed", modules) == {}  # for the type checker only


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
    # every report module but `writing` is pure: it reads a study object, never a storage
    report_modules = sorted(m for m in graph if m.startswith("dynamo_tune.report."))
    assert "dynamo_tune.report.writing" in report_modules and len(report_modules) > 5
    impure = {
        module: found
        for module in report_modules
        if module != "dynamo_tune.report.writing" and (found := impurities(module))
    }
    assert not impure, f"report modules reaching impure imports: {impure}"
    assert impurities("dynamo_tune.report.writing")  # the one that opens the storage


SPEC_MODULES = ("dynamo_tune.deploy.spec", "dynamo_tune.workload.spec")
IMPLEMENTATIONS = {
    "dynamo_tune.process",
    "dynamo_tune.deploy.command",
    "dynamo_tune.deploy.external",
    "dynamo_tune.deploy.factory",
    "dynamo_tune.deploy.local",
    "dynamo_tune.deploy.local_processes",
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
    impure = impurities(spec_module)
    assert not impure, f"{spec_module} reaches modules that import I/O: {impure}"


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
