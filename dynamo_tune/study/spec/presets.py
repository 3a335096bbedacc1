"""Known starting points: `study.enqueue` entries and the built-in presets. Pure, except that
`dynamo-defaults` reads the installed Dynamo's argument definitions.

An entry is a preset name or dotted settings. Each resolves to the settings of one
configuration, which `space.fixed_values` completes like the baseline (searched knobs it does
not name keep the study's fixed value or Dynamo's default). Presets:

- `dynamo-defaults`: the installed Dynamo's default for every searched router knob (read from
  `python -m dynamo.frontend`'s own argument definitions, never copied), in kv mode when the
  study searches the mode (the defaults of the KV router's knobs act only there);
- `agentic`: overlap credit 2.0, prefill load scale 4.0, decode active request weight 64 in kv
  mode — the preset proposed in ai-dynamo/dynamo#13447 (reported there as -43 % p95 TTFT on
  8xH200 for agentic traffic).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dynamo_tune.deploy.dynamo_defaults import dynamo_router_defaults
from dynamo_tune.errors import SpecError
from dynamo_tune.study.spec.conditions import ROUTER_MODE
from dynamo_tune.study.spec.schema import ParamSpec, PresetName, Scalar, StudySpec

AGENTIC: dict[str, Scalar] = {
    ROUTER_MODE: "kv",
    "router.overlap_score_credit": 2.0,
    "router.prefill_load_scale": 4.0,
    "router.decode_active_request_weight": 64.0,
}
"""ai-dynamo/dynamo#13447's agentic preset."""


@dataclass(frozen=True)
class Entry:
    """One resolved `study.enqueue` entry: where it stands, its name, its settings."""

    where: str
    label: str
    settings: dict[str, Scalar]

    @property
    def key(self) -> str:
        """Identity across runs (a resumed run enqueues only entries it has not seen)."""
        return json.dumps(self.settings, sort_keys=True)


def router_defaults_if_installed() -> dict[str, Any]:
    """Dynamo's router defaults, or {} where ai-dynamo is not installed (then an unset
    searched knob of a fixed configuration is sampled instead)."""
    try:
        return dynamo_router_defaults()
    except SpecError:
        return {}


def dynamo_defaults(space: Mapping[str, ParamSpec]) -> dict[str, Scalar]:
    """Dynamo's default of every searched router knob (kv mode when the mode is searched)."""
    defaults = dynamo_router_defaults()
    settings: dict[str, Scalar] = {}
    for name in space:
        section, _, field = name.partition(".")
        if section == "router" and name != ROUTER_MODE and field in defaults:
            settings[name] = defaults[field]
    if ROUTER_MODE in space:
        settings[ROUTER_MODE] = "kv"
    return settings


def preset(name: PresetName, space: Mapping[str, ParamSpec]) -> dict[str, Scalar]:
    """The settings of a built-in preset for a study searching `space`."""
    if name == "dynamo-defaults":
        return dynamo_defaults(space)
    return dict(AGENTIC)


def entries(spec: StudySpec) -> list[Entry]:
    """Every `study.enqueue` entry resolved, in file order (SpecError if a preset cannot be
    read, e.g. `dynamo-defaults` without ai-dynamo)."""
    out: list[Entry] = []
    for i, entry in enumerate(spec.study.enqueue):
        where = f"study.enqueue.{i}"
        if isinstance(entry, str):
            out.append(Entry(where, entry, preset(entry, spec.search_space)))
        else:
            out.append(Entry(where, f"enqueue[{i}]", dict(entry)))
    return out
