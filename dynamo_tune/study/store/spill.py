"""Results a run could not store: kept in a local spill file, stored by the next run. Does
I/O: the spill file and the study storage.

When the storage stays unreachable past `study.storage_retry_s`, the run writes what its
trial got (params, values or FAIL, the attrs and constraints it measured) as one JSON line
to `<storage file>.spill.jsonl` (a server database: `<study name>.spill.jsonl` beside the
study file), atomically, and stops with a `StorageError` naming the file. The next `run` or
`confirm` stores each kept result right after opening the study, before anything else: a
trial still RUNNING gets its attrs and is told its values; a trial another runner has failed
meanwhile is added again as a new trial with the same params (a kept FAIL is dropped then).
The measurement is not repeated. Each stored line leaves the file at once.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState, create_trial

from dynamo_tune.study.store.storage import StorageTarget
from dynamo_tune.study.trial.record import raw_attrs


@dataclass
class Spilled:
    """One trial's result as kept in the spill file."""

    number: int
    state: str
    """COMPLETE or FAIL."""
    values: list[float] | None
    params: dict[str, Any]
    distributions: dict[str, str]
    attrs: dict[str, Any]
    constraints: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        trial: optuna.Trial,
        values: list[float] | None,
        attrs: dict[str, Any],
        constraints: dict[str, float],
    ) -> Spilled:
        """`trial`'s result: COMPLETE with `values`, else FAIL; `attrs` over the ones it has."""
        return cls(
            number=trial.number,
            state="FAIL" if values is None else "COMPLETE",
            values=values,
            params=dict(trial.params),
            distributions={k: distribution_to_json(d) for k, d in trial.distributions.items()},
            attrs={**raw_attrs(trial), **attrs},
            constraints=constraints,
        )


def spill_path(target: StorageTarget, base_dir: Path, name: str) -> Path:
    """Where a study's spill file lives (beside the storage file or the study file)."""
    if target.path is not None:
        return target.path.with_name(f"{target.path.name}.spill.jsonl")
    return base_dir / f"{name}.spill.jsonl"


def read_spill(path: Path) -> list[Spilled]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Spilled(**json.loads(line)) for line in lines if line.strip()]


def write_spill(path: Path, kept: list[Spilled]) -> None:
    """Replace the spill file by `kept` atomically (none: remove it)."""
    if not kept:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text("".join(json.dumps(asdict(s)) + "\n" for s in kept), encoding="utf-8")
    os.replace(tmp, path)


def spill(path: Path, result: Spilled) -> None:
    """Add `result` to the spill file (one per trial number: the newest wins)."""
    kept = [s for s in read_spill(path) if s.number != result.number]
    write_spill(path, [*kept, result])


def restore_spilled(study: optuna.Study, path: Path) -> list[int]:
    """Store every result of the spill file (see the module docstring); their numbers."""
    kept = read_spill(path)
    stored: list[int] = []
    while kept:
        if _restore(study, kept[0]):
            stored.append(kept[0].number)
        kept = kept[1:]
        write_spill(path, kept)
    return stored


def _restore(study: optuna.Study, result: Spilled) -> bool:
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, result.number)
    if storage.get_trial(trial_id).state != TrialState.RUNNING:
        if result.values is None:
            return False  # nothing measured, and its trial has ended meanwhile
        template = create_trial(
            state=TrialState.RUNNING,
            params=result.params,
            distributions={k: json_to_distribution(d) for k, d in result.distributions.items()},
        )
        trial_id = storage.create_new_trial(study_id, template_trial=template)
    trial = optuna.Trial(study, trial_id)
    for key, value in result.attrs.items():
        trial.set_user_attr(key, value)
    if hasattr(trial, "set_constraint"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, value in result.constraints.items():
                trial.set_constraint(key, value)
    if result.values is None:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    else:
        study.tell(trial, result.values, skip_if_finished=True)
    return True
