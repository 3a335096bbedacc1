"""pydantic's ValidationError as the user's problem: located lines, one `SpecError`. Pure,
but for `require_folder` (it looks at the file system).

Every place that validates user input (a study file, a CLI flag, a stack option) turns a
`ValidationError` into text here: one `location: message` line per error, where the location
is the dotted path in the input (union tags pydantic inserts left out) or, through `rename`,
the CLI flag a field came from. `problem_summary` is the one "N problem(s)" header.
`require_folder` is the one rule for a file the tool writes where the user said: its folder
must exist (a typo in a path is refused, never silently created).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dynamo_tune.errors import SpecError


def _located(loc: tuple[int | str, ...], data: Any) -> str:
    """The dotted path of a pydantic error location, without union tags pydantic inserts."""
    parts: list[str] = []
    node = data
    for i, part in enumerate(loc):
        tags = [v for v in node.values() if isinstance(v, str)] if isinstance(node, dict) else []
        if part in tags and part not in node and i + 1 < len(loc):
            continue  # discriminator tag pydantic inserts: the value of `type:` / `kind:`
        parts.append(str(part))
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return ".".join(parts)


def error_message(error: Mapping[str, Any]) -> str:
    """One pydantic error's message in the user's words."""
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"]).removeprefix("Value error, ")


def problem_lines(
    exc: ValidationError,
    data: Any = None,
    rename: Mapping[str, str] | None = None,
    top_level: str = "(top level)",
) -> list[str]:
    """One `location: message` line per error of `exc`.

    `data` is the validated input (to leave union tags out of locations); `rename` maps a
    top-level field to the name the user wrote (a CLI flag); an error without a location is
    `top_level: message` (an empty `top_level`: the message alone).
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if rename is not None and loc:
            where = ".".join([rename.get(str(loc[0]), str(loc[0])), *map(str, loc[1:])])
        else:
            where = _located(loc, data) or top_level
        message = error_message(error)
        lines.append(f"{where}: {message}" if where else message)
    return lines


def first_problem(exc: ValidationError) -> str:
    """The first error's message (a rule whose location the caller names itself)."""
    return error_message(exc.errors(include_url=False)[0])


def problem_summary(source: Path | str, problems: Sequence[str]) -> str:
    """`<source>: N problem(s)` and the problems, one indented line each."""
    head = f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return "\n".join([head, *(f"  {p}" for p in problems)])


def spec_error(
    exc: ValidationError,
    *,
    rename: Mapping[str, str] | None = None,
    prefix: str = "",
) -> SpecError:
    """A one-line `SpecError` of `exc`'s problems joined by "; " (CLI flags and options)."""
    return SpecError(prefix + "; ".join(problem_lines(exc, rename=rename, top_level="")))


def require_folder(path: Path, what: str) -> None:
    """SpecError (`what: ...`, one line naming the folder) unless the folder `path` is to be
    written into exists. Creates nothing."""
    folder = path.parent
    if folder.is_dir():
        return
    if folder.exists():
        raise SpecError(f"{what}: cannot write {path}: {folder} is not a folder")
    raise SpecError(f"{what}: the folder {folder} does not exist; create it first or fix the path")
