"""Create or load a study: storage, sampler, study attrs, baseline. Does I/O: the study storage.

The process that creates a study (creation is atomic in every storage) stores the study
attrs (`spec_sha256`, `study_yaml`, `search_space`), enqueues the baseline once, first, and
sets `initialized` last; a second runner that loses the creation race waits for it. A run
that resumes stores the results a run that lost its storage kept (`spill`) first. A
storage that fails while opening is a `StorageError` naming it.
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
from dynamo_tune.study.spec.loading import LoadedSpec
from dynamo_tune.study.spec.presets import entries, router_defaults_if_installed
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.spec.space import SearchSpace, fixed_values
from dynamo_tune.study.store.recovery import (
    check_space,
    fail_dead_trials,
    fail_stale_trials,
)
from dynamo_tune.study.store.samplers import make_sampler, run_seed
from dynamo_tune.study.store.spill import restore_spilled, spill_path
from dynamo_tune.study.store.storage import (
    StorageTarget,
    open_storage,
    resolve_storage,
    storage_errors,
)
from dynamo_tune.study.trial.attr_keys import StudyAttr, TrialAttr
from dynamo_tune.study.trial.record import StudyRecord, enqueue

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
    restored: list[int] = field(default_factory=list)
    """Trials whose result a run that lost its storage kept in the spill file, now stored."""


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
        with storage_errors(target, "read"):
            study = optuna.load_study(study_name=name, storage=storage)
    except KeyError as exc:
        raise SpecError(f"no study named {name!r} in {target.display}") from exc
    return StudyHandle(loaded, target, storage, study)


def open_for_run(loaded: LoadedSpec, *, allow_changed_space: bool = False) -> StudyHandle:
    """Create the study or load it to resume; checks directions and the search space first."""
    target = storage_target(loaded)
    with storage_errors(target, "write"):
        return _open_for_run(loaded, target, allow_changed_space)


def _open_for_run(
    loaded: LoadedSpec, target: StorageTarget, allow_changed_space: bool
) -> StudyHandle:
    spec = loaded.spec
    sampler = make_sampler(spec)  # a missing package is a SpecError before anything is written
    storage = open_storage(
        target,
        heartbeat_interval_s=spec.study.heartbeat_interval_s if target.kind != "journal" else None,
        retry_s=spec.study.storage_retry_s,
    )
    directions = [d for d, _ in spec.objective.objectives()]
    space = SearchSpace(spec.search_space)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=spec.study.name,
            sampler=sampler,
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
    restored = restore_spilled(study, spill_path(target, loaded.base_dir, spec.study.name))
    recovered = sorted(fail_dead_trials(study, storage) + fail_stale_trials(study))
    trials = study.get_trials(deepcopy=False)
    running = any(t.state == TrialState.RUNNING for t in trials)
    study.sampler = make_sampler(
        spec, run_seed(spec.study.sampler.seed, len(trials), running, os.getpid())
    )
    if StudyRecord.from_study(study).spec_sha256 != loaded.sha256:
        _store_spec(study, loaded)
    enqueue_new_entries(study, spec, space)
    return StudyHandle(
        loaded, target, storage, study, space_changed=space_changed, recovered=recovered,
        restored=restored,
    )  # fmt: skip


def _initialize(handle: StudyHandle, space: SearchSpace) -> None:
    spec = handle.loaded.spec
    study = handle.study
    _store_spec(study, handle.loaded)
    study.set_user_attr(StudyAttr.SEARCH_SPACE, space.fingerprint())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names([metric for _, metric in spec.objective.objectives()])
    if spec.study.baseline:
        params, overrides = fixed_values(
            space,
            spec.study.baseline,
            spec.deployment.router,
            spec.workload,
            router_defaults_if_installed(),
        )
        enqueue(study, params, {TrialAttr.BASELINE: True, TrialAttr.OVERRIDES: overrides})
    enqueue_new_entries(study, spec, space)
    study.set_user_attr(StudyAttr.INITIALIZED, True)


def enqueue_new_entries(study: optuna.Study, spec: StudySpec, space: SearchSpace) -> list[str]:
    """Enqueue the `study.enqueue` entries this study has not enqueued yet, in file order
    (each is measured once, right after what is already queued); their labels."""
    done = list(StudyRecord.from_study(study).enqueued)
    added: list[str] = []
    defaults: dict[str, object] | None = None
    for entry in entries(spec):
        if entry.key in done:
            continue
        if defaults is None:
            defaults = router_defaults_if_installed()
        params, overrides = fixed_values(
            space, entry.settings, spec.deployment.router, spec.workload, defaults
        )
        enqueue(study, params, {TrialAttr.PRESET: entry.label, TrialAttr.OVERRIDES: overrides})
        done.append(entry.key)
        added.append(entry.label)
    if added:
        study.set_user_attr(StudyAttr.ENQUEUED, done)
    return added


def _store_spec(study: optuna.Study, loaded: LoadedSpec) -> None:
    study.set_user_attr(StudyAttr.SPEC_SHA256, loaded.sha256)
    study.set_user_attr(StudyAttr.STUDY_YAML, loaded.text)


def _wait_initialized(study: optuna.Study) -> None:
    deadline = time.monotonic() + INIT_WAIT_S
    while not StudyRecord.from_study(study).initialized:
        if time.monotonic() > deadline:
            return  # created by an older run that died mid-initialization: carry on
        time.sleep(0.2)
