"""The study layer: a study file in, trials measured and stored, answers read back.

Sub-packages by step, each importing only the ones listed before it
(`tests/test_package_layout.py` pins the order):

- `spec`: the study file (`StudySpec`, `load_spec`, checks, the search space, presets);
- `trial`: one trial (`Objective`, `TrialServices`, what it stores, `TrialRecord`);
- `store`: storages, opening and resuming a study, samplers, dead-runner recovery;
- `confirmation`: what to re-measure, Welch's intervals, the verdict;
- `read`: answers (`best`, `trials`, export) and optuna-dashboard;
- `run`: the stages, the loop, its events, the real services, `run_study_file`.

The names below are imported on first use, so `import dynamo_tune.study.spec.schema` costs
only what that module needs (the run loop pulls in Optuna and the deployments).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dynamo_tune.study.run.entry import (
        ServicesFactory,
        confirm_study_file,
        run_study_file,
    )
    from dynamo_tune.study.run.loop import RunSummary, run_study
    from dynamo_tune.study.run.services import build_services
    from dynamo_tune.study.spec.loading import LoadedSpec, load_spec
    from dynamo_tune.study.spec.schema import StudySpec
    from dynamo_tune.study.spec.space import Candidate, SearchSpace
    from dynamo_tune.study.store.opening import (
        StudyHandle,
        open_existing,
        open_for_run,
        storage_target,
    )
    from dynamo_tune.study.trial.attr_keys import StudyAttr, TrialAttr
    from dynamo_tune.study.trial.objective import Objective, TrialServices

_HOME = {
    "Candidate": "spec.space",
    "LoadedSpec": "spec.loading",
    "Objective": "trial.objective",
    "RunSummary": "run.loop",
    "SearchSpace": "spec.space",
    "ServicesFactory": "run.entry",
    "StudyAttr": "trial.attr_keys",
    "StudyHandle": "store.opening",
    "StudySpec": "spec.schema",
    "TrialAttr": "trial.attr_keys",
    "TrialServices": "trial.objective",
    "build_services": "run.services",
    "confirm_study_file": "run.entry",
    "load_spec": "spec.loading",
    "open_existing": "store.opening",
    "open_for_run": "store.opening",
    "run_study": "run.loop",
    "run_study_file": "run.entry",
    "storage_target": "store.opening",
}
"""Public name -> the module (under `dynamo_tune.study`) it lives in."""

__all__ = [
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


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
