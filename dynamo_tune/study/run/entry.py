"""`dynamo-tune run` and `dynamo-tune confirm`: load the file, open the study, run it. Does I/O.

Nothing is written for an invalid file (`SpecError`). SIGTERM behaves like Ctrl-C while a
run is in progress (the trial FAILs naming the signal, the deployment is stopped): both end
the run with a `KeyboardInterrupt` (`interrupts.Interrupted` for SIGTERM).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dynamo_tune.deploy.prometheus import prometheus_binary
from dynamo_tune.errors import SpecError
from dynamo_tune.interrupts import signals_as_interrupts
from dynamo_tune.study.run.events import Reporter, ignore
from dynamo_tune.study.run.loop import RunSummary, run_study
from dynamo_tune.study.spec.checks import check_metrics_source
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import ConfirmSpec, StudySpec
from dynamo_tune.study.store.opening import StudyHandle, open_existing, open_for_run
from dynamo_tune.study.trial.objective import TrialServices
from dynamo_tune.validation import problem_summary

ServicesFactory = Callable[[StudyHandle], TrialServices]
"""Builds a study's trial services (`services.build_services`; fakes in tests)."""


def require_metrics_source(spec: StudySpec, path: Path) -> None:
    """SpecError (`path`: problems) unless this machine can serve the study's metrics
    section (`check_metrics_source` with `prometheus` looked up on PATH). Run before a study
    is created."""
    issues = check_metrics_source(spec, prometheus_on_path=prometheus_binary() is not None)
    if issues:
        raise SpecError(problem_summary(path, issues))


def run_study_file(
    study_file: Path,
    services_for: ServicesFactory,
    *,
    n_trials: int | None = None,
    allow_changed_space: bool = False,
    report: Reporter = ignore,
) -> RunSummary:
    """`dynamo-tune run`: validate the file, create or resume its study, run to the target.

    `n_trials` (>= 1) overrides the file's; nothing is written for an invalid file.
    """
    loaded = load_spec(study_file)
    target_trials = n_trials if n_trials is not None else loaded.spec.study.n_trials
    if target_trials < 1:
        raise ValueError(f"`n_trials >= 1` must hold, but got {target_trials}")
    require_metrics_source(loaded.spec, study_file)  # before a study or deployment exists
    handle = open_for_run(loaded, allow_changed_space=allow_changed_space)
    with signals_as_interrupts():
        return run_study(
            handle,
            services_for(handle),
            n_trials=target_trials,
            report=report,
            confirmation=loaded.spec.study.confirm,
        )


def confirm_study_file(
    study_file: Path,
    services_for: ServicesFactory,
    *,
    top: int | None = None,
    repeats: int | None = None,
    report: Reporter = ignore,
) -> RunSummary:
    """`dynamo-tune confirm`: run, extend or resume the confirmation stage of a study whose
    search is done (`top`/`repeats` default to the file's `study.confirm`, else 3 and 3;
    pydantic's ValidationError for values `ConfirmSpec` refuses)."""
    loaded = load_spec(study_file)
    base = loaded.spec.study.confirm or ConfirmSpec()
    confirmation = ConfirmSpec(
        top=base.top if top is None else top,
        repeats=base.repeats if repeats is None else repeats,
    )
    open_existing(loaded)  # SpecError naming the storage when there is no such study
    handle = open_for_run(loaded)
    with signals_as_interrupts():
        return run_study(
            handle,
            services_for(handle),
            n_trials=loaded.spec.study.n_trials,
            report=report,
            confirmation=confirmation,
            search=False,
        )
