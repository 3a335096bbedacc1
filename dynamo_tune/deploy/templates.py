"""Argv templates of the `command` deployment: per-argument substitution, no shell. Pure.

Each argument is a `str.format`-style template: `{router.temperature}`, `{frontend_url}`,
`{model}`, `{run_dir}`; `{{` / `}}` are literal braces; a format spec is allowed
(`{router.temperature:.3f}`). A value is inserted verbatim into its own argument — spaces,
quotes, `;`, `$(...)` stay characters of that one argument, because the argv is executed
directly, never through a shell. An argument that is exactly `{router_flags}` expands to
the frontend flags of `dynamo_tune.deploy.router_flags` (zero or more arguments).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import format_value, router_flags
from dynamo_tune.errors import SpecError

ROUTER_FLAGS_ARG = "{router_flags}"
PLAIN_FIELDS = ("frontend_url", "model", "run_dir")
PLACEHOLDERS = (
    *PLAIN_FIELDS,
    *(f"router.{name}" for name in RouterConfig.model_fields),
)

_FORMATTER = string.Formatter()


def placeholders(arg: str, where: str = "template") -> list[str]:
    """The field names used in one template argument. Raises SpecError on bad syntax."""
    try:
        parsed = list(_FORMATTER.parse(arg))
    except ValueError as exc:
        raise SpecError(f"{where}: bad template argument {arg!r}: {exc}") from exc
    names = []
    for _literal, field, _spec, conversion in parsed:
        if field is None:
            continue
        if conversion is not None:
            raise SpecError(f"{where}: {arg!r}: conversions (!{conversion}) are not allowed")
        names.append(field)
    return names


def check_template(template: Sequence[str], where: str) -> None:
    """Raise SpecError naming `where` if a template uses an unknown placeholder."""
    for arg in template:
        if arg == ROUTER_FLAGS_ARG:
            continue
        for name in placeholders(arg, where):
            if name not in PLACEHOLDERS:
                raise SpecError(
                    f"{where}: unknown placeholder {{{name}}} in {arg!r}; "
                    f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}, {ROUTER_FLAGS_ARG}"
                )


def template_values(router: RouterConfig, plain: Mapping[str, str]) -> dict[str, object]:
    """Placeholder name -> value (None for an unset router field)."""
    values: dict[str, object] = {f"router.{k}": v for k, v in router.model_dump().items()}
    values.update(plain)
    return values


def _render_arg(arg: str, values: Mapping[str, object], where: str) -> str:
    out: list[str] = []
    for literal, field, spec, _conversion in _FORMATTER.parse(arg):
        out.append(literal)
        if field is None:
            continue
        if field not in values:
            raise SpecError(f"{where}: unknown placeholder {{{field}}} in {arg!r}")
        value = values[field]
        if value is None:
            raise SpecError(
                f"{where}: {{{field}}} is unset (None) in {arg!r}; set {field} in "
                "deployment.router or in the search space"
            )
        out.append(format(value, spec) if spec else format_value(value))
    return "".join(out)


def render(
    template: Sequence[str], router: RouterConfig, plain: Mapping[str, str], where: str
) -> list[str]:
    """The argv for `template` with every placeholder substituted (one arg stays one arg)."""
    values = template_values(router, plain)
    argv: list[str] = []
    for arg in template:
        if arg == ROUTER_FLAGS_ARG:
            argv.extend(router_flags(router))
        else:
            argv.append(_render_arg(arg, values, where))
    return argv
