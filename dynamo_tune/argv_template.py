"""Argv templates with `{placeholder}` arguments, for every command a study file holds. Pure.

One syntax for the deployment's and the workload's commands: each argument is a
`str.format`-style template (`{model}`, `{router.temperature}`); `{{` and `}}` are literal
braces; a format spec is allowed (`{router.temperature:.3f}`); conversions (`!r`) are not.
A value is inserted verbatim into its own argument — spaces, quotes, `;`, `$(...)` stay
characters of that one argument, because the argv is executed directly, never through a
shell. A caller may also name splices: an argument that is exactly `{name}` of a splice
expands to zero or more arguments (the deployment's `{router_flags}`).

`check` validates a template against the known names when a spec is loaded; `render`
substitutes values when the command runs. Both raise `SpecError` naming the argument's
location (`where[index]`), and for an unknown name the known ones.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Mapping, Sequence

from dynamo_tune.errors import SpecError

_FORMATTER = string.Formatter()


def _location(where: str, index: int) -> str:
    return f"{where}[{index}]"


def _splice_name(arg: str, splices: Collection[str]) -> str | None:
    """The splice `arg` names (`arg` is exactly `{name}`), or None."""
    if arg.startswith("{") and arg.endswith("}") and arg[1:-1] in splices:
        return arg[1:-1]
    return None


def fields(arg: str, where: str) -> list[str]:
    """The placeholder names used in one template argument. SpecError on bad syntax."""
    try:
        parsed = list(_FORMATTER.parse(arg))
    except ValueError as exc:
        raise SpecError(
            f"{where}: bad template argument {arg!r}: {exc} (write {{{{ and }}}} for a literal "
            "brace)"
        ) from exc
    names = []
    for _literal, field, _spec, conversion in parsed:
        if field is None:
            continue
        if conversion is not None:
            raise SpecError(f"{where}: {arg!r}: conversions (!{conversion}) are not allowed")
        names.append(field)
    return names


def known_list(known: Sequence[str], splices: Sequence[str] = ()) -> str:
    """`{a}, {b}, ...`: the placeholders a template may use, for error messages. Pure."""
    return ", ".join("{" + name + "}" for name in (*known, *splices))


def check(
    template: Sequence[str],
    where: str,
    known: Sequence[str],
    splices: Sequence[str] = (),
) -> None:
    """Raise SpecError naming `where[i]` if argument i is malformed or uses an unknown name.

    `known` are the names a value is substituted for; `splices` the names that may stand
    alone as a whole argument and expand to several.
    """
    for index, arg in enumerate(template):
        if _splice_name(arg, splices) is not None:
            continue
        location = _location(where, index)
        for name in fields(arg, location):
            if name not in known:
                raise _unknown(location, name, arg, known, splices)


def render(
    template: Sequence[str],
    values: Mapping[str, object],
    where: str,
    *,
    splices: Mapping[str, Sequence[str]] | None = None,
    convert: Callable[[object], str] = str,
    unset_hint: str = "",
) -> list[str]:
    """The argv for `template`: each placeholder replaced by its value (one arg stays one arg).

    A value is written with its format spec if the placeholder has one, else with `convert`.
    An argument that is exactly `{name}` of a splice becomes the splice's arguments. A value
    of None is unset: SpecError naming it (followed by `unset_hint`).
    """
    splices = splices or {}
    argv: list[str] = []
    for index, arg in enumerate(template):
        splice = _splice_name(arg, splices)
        if splice is not None:
            argv.extend(splices[splice])
        else:
            location = _location(where, index)
            argv.append(_render_arg(arg, values, location, list(splices), convert, unset_hint))
    return argv


def _unknown(
    where: str, name: str, arg: str, known: Sequence[str], splices: Sequence[str]
) -> SpecError:
    return SpecError(
        f"{where}: unknown placeholder {{{name}}} in {arg!r}; known: "
        f"{known_list(known, splices)} (write {{{{ and }}}} for a literal brace)"
    )


def _render_arg(
    arg: str,
    values: Mapping[str, object],
    where: str,
    splices: Sequence[str],
    convert: Callable[[object], str],
    unset_hint: str,
) -> str:
    fields(arg, where)  # syntax and conversions: the same errors as `check`
    out: list[str] = []
    for literal, field, spec, _conversion in _FORMATTER.parse(arg):
        out.append(literal)
        if field is None:
            continue
        if field not in values:
            raise _unknown(where, field, arg, list(values), splices)
        value = values[field]
        if value is None:
            hint = f"; {unset_hint.format(name=field)}" if unset_hint else ""
            raise SpecError(f"{where}: {{{field}}} is unset (None) in {arg!r}{hint}")
        try:
            out.append(format(value, spec) if spec else convert(value))
        except (TypeError, ValueError) as exc:
            raise SpecError(
                f"{where}: cannot write {value!r} as {{{field}:{spec}}}: {exc}"
            ) from exc
    return "".join(out)
