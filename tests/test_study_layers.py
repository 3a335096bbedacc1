"""The study layer's groups and their order, read from the source with `ast`.

spec < trial < store < confirmation < read < run: a module imports only its own group and the
groups before it (imports inside functions count too), so the groups have no cycle. Below the
CLI nothing prints, writes to stderr, names a CLI flag or changes Optuna's global log level,
and only the trial-record module reads stored user attrs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import dynamo_tune

ROOT = Path(dynamo_tune.__file__).parent
STUDY = ROOT / "study"
GROUPS = ("spec", "trial", "store", "confirmation", "read", "run")


def _group(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["dynamo_tune", "study"] or len(parts) < 3:
        return None
    return parts[2] if parts[2] in GROUPS else None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _study_modules() -> list[Path]:
    return sorted(STUDY.rglob("*.py"))


def test_every_study_module_sits_in_a_group() -> None:
    loose = [p.name for p in STUDY.glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    assert sorted(p.name for p in STUDY.iterdir() if p.is_dir() and p.name != "__pycache__") == (
        sorted(GROUPS)
    )


@pytest.mark.parametrize("path", _study_modules(), ids=lambda p: str(p.relative_to(STUDY)))
def test_a_group_imports_only_itself_and_the_groups_before_it(path: Path) -> None:
    own = _group("dynamo_tune.study." + ".".join(path.relative_to(STUDY).with_suffix("").parts))
    if own is None:
        return  # study/__init__.py: resolves the public names lazily
    allowed = set(GROUPS[: GROUPS.index(own) + 1])
    groups = {g for m in _imports(path) if (g := _group(m)) is not None}
    assert groups <= allowed, f"{path.relative_to(ROOT)} imports {sorted(groups - allowed)}"
    upper = [m for m in _imports(path) if m.startswith(("dynamo_tune.cli", "dynamo_tune.report"))]
    assert upper == []


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from dynamo_tune.study.run.loop import run_study\n")
    assert {_group(m) for m in _imports(src)} >= {"run"}


_FORBIDDEN = [
    (re.compile(r"\bprint\("), "print"),
    (re.compile(r"sys\.std(err|out)"), "sys.stderr / sys.stdout"),
    (re.compile(r"set_verbosity"), "a global log-level change"),
]
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _message_strings(path: Path) -> list[str]:
    """Every string literal of `path` but its docstrings (bare string statements): what a
    message can be made of."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("path", _study_modules(), ids=lambda p: str(p.relative_to(STUDY)))
def test_the_study_layer_reports_and_never_prints(path: Path) -> None:
    text = path.read_text()
    for pattern, what in _FORBIDDEN:
        assert not pattern.search(text), f"{path.relative_to(ROOT)} has {what}"
    flags = [s for s in _message_strings(path) if _FLAG.search(s)]
    assert flags == [], f"{path.relative_to(ROOT)} names a CLI flag in {flags}"


def test_the_flag_check_finds_a_flag_in_a_message(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text('"""Doc: `best --format flags`."""\nX = "or pass --allow-changed-space"\n')
    assert [s for s in _message_strings(src) if _FLAG.search(s)] == [
        "or pass --allow-changed-space"
    ]


def test_only_the_record_module_reads_user_attrs() -> None:
    readers = sorted(
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if "user_attrs" in p.read_text()
    )
    assert readers == ["study/trial/record.py"]


def test_no_module_exceeds_about_300_lines() -> None:
    """Split by concept before a file passes ~300 lines (a few lines of slack)."""
    long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 315
    }
    assert long == {}
