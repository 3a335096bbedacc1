"""Rules of a study file that span sections, each problem located. Pure.

`check_spec` returns every problem as `"<dotted location>: <message>"`; an empty list means
the study can run. A password written in `study.storage` is one (the file's text is stored with
the study: only `${NAME}` references are accepted). These run after the schema (pydantic)
accepted the file. `check_spec` does not depend on the machine (reading a study back works
anywhere); `dynamo-tune run` adds `run.entry.require_metrics_source` (is `prometheus` on this
machine's PATH?) before it creates or opens a study.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from dynamo_tune.deploy.router_flags import knob_used_in
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.errors import SpecError
from dynamo_tune.metrics import USE_ENV_OR_FILE, url_has_credentials
from dynamo_tune.study.spec.conditions import ROUTER_MODE, conditions_of, suggestion_order
from dynamo_tune.study.spec.presets import entries
from dynamo_tune.study.spec.schema import CategoricalParam, ParamSpec, StudySpec
from dynamo_tune.study.spec.screening import check_screen
from dynamo_tune.study.spec.space import (
    contains,
    distribution,
    grid_values,
    make_candidate,
    split_name,
    target_fields,
)
from dynamo_tune.validation import first_problem

GRID_LIMIT = 100_000
_SINGLE_OBJECTIVE_SAMPLERS = {"cmaes", "gp"}


def check_spec(spec: StudySpec) -> list[str]:
    """Every cross-section problem of `spec`, located."""
    issues = check_storage_password(spec.study.storage)
    for name, param in spec.search_space.items():
        issues += _check_param(spec, name, param)
    if issues:
        return issues
    issues += _check_conditions(spec)
    issues += _check_baseline(spec)
    issues += _check_enqueue(spec)
    issues += _check_sampler(spec)
    issues += check_screen(spec)
    issues += check_metrics_source(spec)
    return issues


_REFERENCES_ONLY = re.compile(r"(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})+")
QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)([^&#]*)")
"""A `password=` query parameter of a URL: its key (group 1) and value (group 2)."""


def check_storage_password(written: str | None) -> list[str]:
    """A password in `study.storage` (`user:PASSWORD@`, `?password=`) that is not made of
    `${NAME}` references only: the study file is stored with the study. Never echoes it."""
    if written is None or written.startswith(("sqlite:", "journal:")):
        return []
    try:
        password = urlsplit(written).password
    except ValueError:  # a malformed URL: resolving the storage names the problem
        password = None
    secrets = [password, *(value for _, value in QUERY_PASSWORD.findall(written))]
    if not any(s and not _REFERENCES_ONLY.fullmatch(s) for s in secrets):
        return []
    return [
        "study.storage: a password cannot be written in the study file (it is stored with the "
        "study): write it as ${NAME} and set the environment variable NAME, e.g. "
        "postgresql+psycopg://tuner:${TUNE_DB_PASSWORD}@host/db"
    ]


def check_metrics_source(spec: StudySpec, *, prometheus_on_path: bool = True) -> list[str]:
    """Whether the deployment will offer what the `metrics:` section reads, located.

    `backend: prometheus` needs `metrics.prometheus_url`, an external/command deployment's
    `prometheus_url`, or a local stack that starts Prometheus (`prometheus: true`, or `auto`
    with the binary on PATH: `prometheus_on_path`); `auto` and `scrape` read the deployment's
    /metrics URLs otherwise (whether it lists any, a command deployment may only know once
    started: `services.preflight` checks). `check_spec` assumes the binary is there.
    """
    metrics, deployment = spec.metrics, spec.deployment
    issues: list[str] = []
    if isinstance(deployment, LocalDeploymentSpec):
        wanted = deployment.prometheus
        has_prometheus = wanted is True or (wanted == "auto" and prometheus_on_path)
        if wanted is True and not prometheus_on_path:
            issues.append(
                "deployment.prometheus: true, but `prometheus` is not on PATH (Debian: "
                "apt-get install prometheus); `auto` falls back to the scrape backend"
            )
        why = "deployment.prometheus is false" if wanted is False else "`prometheus` is not on PATH"
    else:
        url = deployment.prometheus_url
        if url is not None and url_has_credentials(url):
            issues.append(
                "deployment.prometheus_url: remove the user:password@ part and give the "
                f"credentials in the metrics section; {USE_ENV_OR_FILE}"
            )
        has_prometheus = url is not None
        why = "deployment.prometheus_url is not set"
    if metrics.backend == "prometheus" and metrics.prometheus_url is None and not has_prometheus:
        issues.append(
            f"metrics.backend: prometheus, but the deployment runs no Prometheus ({why}): set "
            "metrics.prometheus_url, or use `backend: auto` to scrape /metrics instead"
        )
    return issues


def _check_conditions(spec: StudySpec) -> list[str]:
    """`when` names searched parameters and values they can take; no cycle; no knob that
    Dynamo ignores under the study's fixed router mode; no condition that never holds."""
    space = spec.search_space
    issues: list[str] = []
    for name, param in space.items():
        for dep, allowed in (param.when or {}).items():
            where = f"search_space.{name}.when.{dep}"
            if dep == name or dep not in space:
                known = ", ".join(n for n in space if n != name)
                issues.append(f"{where}: unknown parameter {dep!r} (searched: {known})")
                continue
            for value in allowed if isinstance(allowed, list) else [allowed]:
                if not contains(space[dep], value):
                    issues.append(f"{where}: {value!r} is not a value {dep} can take")
    if issues:
        return issues
    if ROUTER_MODE not in space:
        mode = spec.deployment.router.mode
        for name in space:
            section, field = split_name(name)
            if section == "router" and not knob_used_in(field, mode):
                issues.append(
                    f"search_space.{name}: Dynamo does not use it in router mode {mode!r} "
                    "(deployment.router.mode): remove it or search router.mode"
                )
    conditions = conditions_of(space)
    try:
        suggestion_order(space, conditions)
    except ValueError as exc:
        issues.append(f"search_space: {exc}")
    for name, conds in conditions.items():
        for dep, values in conds.items():
            if not values:
                issues.append(
                    f"search_space.{name}: never suggested: no value of {dep} it is used with"
                )
    return issues


def _check_enqueue(spec: StudySpec) -> list[str]:
    """Every enqueued configuration names real fields, stays inside the searched ranges and
    is one Dynamo accepts."""
    try:
        resolved = entries(spec)
    except SpecError as exc:
        return [f"study.enqueue: {exc}"]
    issues: list[str] = []
    for entry in resolved:
        head = f"{entry.where} ({entry.label})"
        issues += _check_fixed(spec, entry.settings, functools.partial(_same, head), head)
    return issues


def _same(where: str, name: str) -> str:
    return where


def _check_fixed(
    spec: StudySpec,
    settings: Mapping[str, Any],
    at: Callable[[str], str],
    whole: str,
) -> list[str]:
    """A fixed configuration (the baseline, an enqueued entry): every setting names a real
    field and stays inside its searched range, and the whole is one Dynamo accepts. `at(name)`
    locates a setting's problem, `whole` the configuration's; a location that does not name
    the setting gets `name = value` in the range message."""
    issues: list[str] = []
    for name, value in settings.items():
        where = at(name)
        try:
            section, field = split_name(name)
        except ValueError as exc:
            issues.append(f"{where}: {exc}")
            continue
        if field not in target_fields(section, spec.workload):
            issues.append(f"{where}: {section} has no field {field!r}")
        elif name in spec.search_space and not contains(spec.search_space[name], value):
            shown = f"{value!r}" if where.endswith(name) else f"{name} = {value!r}"
            issues.append(f"{where}: {shown} is outside the searched range of {name}")
    if not issues:
        try:
            make_candidate(settings, spec.deployment.router, spec.workload)
        except ValidationError as exc:
            issues.append(f"{whole}: {first_problem(exc)}")
    return issues


def _check_param(spec: StudySpec, name: str, param: ParamSpec) -> list[str]:
    where = f"search_space.{name}"
    try:
        section, field = split_name(name)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    fields = target_fields(section, spec.workload)
    if field not in fields:
        known = ", ".join(sorted(fields))
        return [f"{where}: {section} has no searchable field {field!r} (known: {known})"]
    if section == "router" and spec.deployment.kind == "external":
        return [f"{where}: an external deployment cannot apply router settings"]
    issues: list[str] = []
    probes: list[tuple[str, Any]]
    if isinstance(param, CategoricalParam):
        probes = [(f"choices.{i}", c) for i, c in enumerate(param.choices)]
        for i, choice in enumerate(param.choices):
            if choice is not None and not isinstance(choice, str | bool | int | float):
                issues.append(f"{where}.choices.{i}: must be a string, number, bool or null")
        if issues:
            return issues
    else:
        probes = [("low", param.low), ("high", param.high)]
        if param.low > param.high:
            return [
                f"{where}.high: `low <= high` must hold, but got low={param.low}, high={param.high}"
            ]
        if param.log and param.low <= 0:
            return [f"{where}.low: a log scale needs `low > 0`, but got low={param.low}"]
    for key, value in probes:
        try:
            make_candidate({name: value}, spec.deployment.router, spec.workload)
        except ValidationError as exc:
            issues.append(f"{where}.{key}: {first_problem(exc)}")
    if not issues:
        try:
            distribution(param)
        except ValueError as exc:
            issues.append(f"{where}: {exc}")
    return issues


def _check_baseline(spec: StudySpec) -> list[str]:
    baseline = spec.study.baseline
    if not baseline:
        return []
    return _check_fixed(spec, baseline, lambda name: f"study.baseline.{name}", "study.baseline")


def _check_sampler(spec: StudySpec) -> list[str]:
    name = spec.study.sampler.name
    issues: list[str] = []
    if name in _SINGLE_OBJECTIVE_SAMPLERS and len(spec.objective.objectives()) > 1:
        issues.append(f"study.sampler.name: {name} does not support several objective.directions")
    if name == "grid":
        size = 1
        for pname, param in spec.search_space.items():
            values = grid_values(param)
            if values is None:
                issues.append(
                    f"search_space.{pname}: the grid sampler needs a finite set of values: "
                    "give `step`"
                )
            else:
                size *= len(values)
        if not issues and size > GRID_LIMIT:
            issues.append(f"search_space: the grid has {size} points (limit {GRID_LIMIT})")
    if name == "cmaes" and all(isinstance(p, CategoricalParam) for p in spec.search_space.values()):
        issues.append("study.sampler.name: cmaes needs at least one float or int parameter")
    return issues
