"""The placeholders of the `command` deployment's argv templates. Pure.

The syntax is `dynamo_tune.argv_template`'s (shared with the command workload). A template
argument may use `{frontend_url}`, `{model}`, `{run_dir}` and `{router.<field>}` for every
`RouterConfig` field (e.g. `{router.temperature}`, `{router.temperature:.3f}`); a number
without a format spec is written as the frontend's flags write it (`format_value`). An
argument that is exactly `{router_flags}` expands to the frontend flags of
`dynamo_tune.deploy.router_flags` (zero or more arguments).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dynamo_tune import argv_template
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import format_value, router_flags

ROUTER_FLAGS = "router_flags"
PLAIN_FIELDS = ("frontend_url", "model", "run_dir")
PLACEHOLDERS = (
    *PLAIN_FIELDS,
    *(f"router.{name}" for name in RouterConfig.model_fields),
)
UNSET_HINT = "set {name} in deployment.router or in the search space"


def check_template(template: Sequence[str], where: str) -> None:
    """Raise SpecError naming `where[i]` if argument i is malformed or names an unknown field."""
    argv_template.check(template, where, PLACEHOLDERS, splices=(ROUTER_FLAGS,))


def template_values(router: RouterConfig, plain: Mapping[str, str]) -> dict[str, object]:
    """Placeholder name -> value (None for an unset router field)."""
    values: dict[str, object] = {f"router.{k}": v for k, v in router.model_dump().items()}
    values.update(plain)
    return values


def render(
    template: Sequence[str], router: RouterConfig, plain: Mapping[str, str], where: str
) -> list[str]:
    """The argv for `template` with every placeholder substituted (one arg stays one arg)."""
    return argv_template.render(
        template,
        template_values(router, plain),
        where,
        splices={ROUTER_FLAGS: router_flags(router)},
        convert=format_value,
        unset_hint=UNSET_HINT,
    )
