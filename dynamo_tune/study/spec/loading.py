"""Load a study file: YAML -> `StudySpec`, every error located. Does I/O: reads the file.

`load_spec` raises one `SpecError` listing every problem as `<location>: <message>`, where the
location is the dotted path in the file (`search_space.router.temperature.low`). The YAML
parser refuses duplicate keys (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dynamo_tune.errors import SpecError
from dynamo_tune.study.spec.checks import check_spec
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.validation import problem_lines, problem_summary


@dataclass(frozen=True)
class LoadedSpec:
    """A validated study file with where it came from."""

    spec: StudySpec
    path: Path
    text: str
    sha256: str

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the file resolve against."""
        return self.path.parent


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """The mapping at the top of a YAML document; SpecError with line and column if not."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: a study file is a mapping of sections, got {type(data).__name__}"
        )
    return data


def spec_hash(spec: StudySpec) -> str:
    """sha256 of the canonical JSON of the validated spec (comments and key order ignored)."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_spec(text: str, path: Path) -> LoadedSpec:
    """Validate study-file text; SpecError listing every problem."""
    data = parse_yaml(text, str(path))
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problem_summary(path, problem_lines(exc, data))) from exc
    problems = check_spec(spec)
    if problems:
        raise SpecError(problem_summary(path, problems))
    sha256 = spec_hash(spec)  # of the file as written: moving its folder changes nothing
    resolved = resolve_paths(spec, path.resolve().parent)
    return LoadedSpec(spec=resolved, path=path.resolve(), text=text, sha256=sha256)


_PATH_FIELDS = {"deployment": ("run_dir", "request_trace", "cwd"), "workload": ("path", "cwd")}
"""Fields of a study file that name a file or folder (a relative one is the study file's)."""


def resolve_paths(spec: StudySpec, base: Path) -> StudySpec:
    """`spec` with every relative path of `_PATH_FIELDS` made absolute against `base` (the study
    file's folder), as `study.storage` is: a study runs the same from any working directory."""
    updates: dict[str, object] = {}
    for section, fields in _PATH_FIELDS.items():
        model = getattr(spec, section)
        changed = {
            name: base / value
            for name in fields
            if isinstance(value := getattr(model, name, None), Path) and not value.is_absolute()
        }
        if changed:
            updates[section] = model.model_copy(update=changed)
    return spec.model_copy(update=updates) if updates else spec


def load_spec(path: Path) -> LoadedSpec:
    """Read and validate a study file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_spec(text, path)
