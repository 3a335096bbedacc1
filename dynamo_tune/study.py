"""Create or load a study: storage, sampler, study attrs, baseline. Does I/O: the study storage.

The process that creates a study (creation is atomic in every storage) stores the study
attrs (`spec_sha256`, `study_yaml`, `search_space`), enqueues the baseline once, first, and
sets `initialized` last; a second runner that loses the creation race waits for it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning
from optuna.trial import TrialState

from dynamo_tune.errors import SpecError
from dynamo_tune.objective import BASELINE_ATTR, OVERRIDES_ATTR
from dynamo_tune.resume import (
    SPACE_ATTR,
    check_space,
    fail_dead_trials,
    fail_stale_trials,
    heartbeat_failed_callback,
)
from dynamo_tune.samplers import make_sampler, run_seed
from dynamo_tune.space import SearchSpace, baseline_values
from dynamo_tune.spec_file import LoadedSpec
from dynamo_tune.storage import StorageTarget, open_storage, resolve_storage

INITIALIZED_ATTR = "initialized"
HASH_ATTR = "spec_sha256"
YAML_ATTR = "study_yaml"
INIT_WAIT_S = 30.0


@dataclass
class StudyHandle:
    """An open study with its spec and storage."""

    loaded: LoadedSpec
    target: StorageTarget
    storage: optuna.storages.BaseStorage
    study: optuna.Study
    created: bool = False
    space_changed: bool = False
    recovered: list[int] = field(default_factory=list)


def storage_target(loaded: LoadedSpec) -> StorageTarget:
    s = loaded.spec.study
    return resolve_storage(s.storage, s.name, loaded.base_dir, s.artifact_dir)


def open_existing(loaded: LoadedSpec) -> StudyHandle:
    """Load the study for inspection; SpecError if it does not exist yet."""
    target = storage_target(loaded)
    if target.path is not None and not target.path.exists():
        raise SpecError(f"no study storage at {target.display}: run `dynamo-tune run` first")
    storage = open_storage(target)
    name = loaded.spec.study.name
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError as exc:
        raise SpecError(f"no study named {name!r} in {target.display}") from exc
    return StudyHandle(loaded, target, storage, study)


def open_for_run(loaded: LoadedSpec, *, allow_changed_space: bool = False) -> StudyHandle:
    """Create the study or load it to resume; checks directions and the search space first."""
    spec = loaded.spec
    target = storage_target(loaded)
    storage = open_storage(
        target,
        heartbeat_interval_s=spec.study.heartbeat_interval_s if target.kind != "journal" else None,
        stale_trial_callback=heartbeat_failed_callback if target.kind != "journal" else None,
    )
    directions = [d for d, _ in spec.objective.objectives()]
    space = SearchSpace(spec.search_space)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=spec.study.name,
            sampler=make_sampler(spec),
            directions=directions,
        )
    except DuplicatedStudyError:
        return _resume(loaded, target, storage, directions, space, allow_changed_space)
    handle = StudyHandle(loaded, target, storage, study, created=True)
    _initialize(handle, space)
    return handle


def _resume(
    loaded: LoadedSpec,
    target: StorageTarget,
    storage: optuna.storages.BaseStorage,
    directions: Sequence[str],
    space: SearchSpace,
    allow_changed_space: bool,
) -> StudyHandle:
    spec = loaded.spec
    study = optuna.load_study(study_name=spec.study.name, storage=storage)
    _wait_initialized(study)
    stored = [d.name.lower() for d in study.directions]
    if stored != list(directions):
        raise SpecError(
            f"study {spec.study.name!r} has directions {stored}, "
            f"the file asks for {list(directions)}"
        )
    space_changed = check_space(study, space.fingerprint(), allow_changed_space)
    recovered = sorted(fail_dead_trials(study, storage) + fail_stale_trials(study))
    trials = study.get_trials(deepcopy=False)
    running = any(t.state == TrialState.RUNNING for t in trials)
    study.sampler = make_sampler(
        spec, run_seed(spec.study.sampler.seed, len(trials), running, os.getpid())
    )
    if study.user_attrs.get(HASH_ATTR) != loaded.sha256:
        study.set_user_attr(HASH_ATTR, loaded.sha256)
        study.set_user_attr(YAML_ATTR, loaded.text)
    return StudyHandle(
        loaded, target, storage, study, space_changed=space_changed, recovered=recovered
    )


def _initialize(handle: StudyHandle, space: SearchSpace) -> None:
    spec = handle.loaded.spec
    study = handle.study
    study.set_user_attr(HASH_ATTR, handle.loaded.sha256)
    study.set_user_attr(YAML_ATTR, handle.loaded.text)
    study.set_user_attr(SPACE_ATTR, space.fingerprint())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names([metric for _, metric in spec.objective.objectives()])
    if spec.study.baseline:
        params, overrides = baseline_values(
            space, spec.study.baseline, spec.deployment.router, spec.workload
        )
        study.enqueue_trial(params, user_attrs={BASELINE_ATTR: True, OVERRIDES_ATTR: overrides})
    study.set_user_attr(INITIALIZED_ATTR, True)


def _wait_initialized(study: optuna.Study) -> None:
    deadline = time.monotonic() + INIT_WAIT_S
    while not study.user_attrs.get(INITIALIZED_ATTR):
        if time.monotonic() > deadline:
            return  # created by an older run that died mid-initialization: carry on
        time.sleep(0.2)
