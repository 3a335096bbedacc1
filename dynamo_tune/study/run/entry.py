"""`dynamo-tune run` and `dynamo-tune confirm`: load the file, open the study, run it. Does I/O.

Nothing is written for an invalid file (`SpecError`); SIGTERM behaves like Ctrl-C while a
run is in progress.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from pydantic import ValidationError

from dynamo_tune.errors import SpecError
from dynamo_tune.study.run.loop import RunSummary, run_study
from dynamo_tune.study.spec.checks import require_metrics_source
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import ConfirmSpec
from dynamo_tune.study.store.opening import StudyHandle, open_existing, open_for_run
from dynamo_tune.study.trial.objective import TrialServices

ServicesFactory = Callable[[StudyHandle], TrialServices]
"""Builds a study's trial services (`services.build_services`; fakes in tests)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C while a run is in progress (trial FAIL, deployment stopped)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_study_file(
    study_file: Path,
    services_for: ServicesFactory,
    *,
    n_trials: int | None = None,
    allow_changed_space: bool = False,
    out: TextIO | None = None,
) -> RunSummary:
    """`dynamo-tune run`: validate the file, create or resume its study, run to the target.

    Nothing is written for an invalid file (`SpecError`); `n_trials` overrides the file's.
    """
    out = out or sys.stdout
    loaded = load_spec(study_file)
    target_trials = n_trials if n_trials is not None else loaded.spec.study.n_trials
    if target_trials < 1:
        raise SpecError(f"--n-trials must be >= 1, got {target_trials}")
    require_metrics_source(loaded.spec, study_file)  # before a study or deployment exists
    handle = open_for_run(loaded, allow_changed_space=allow_changed_space)
    if handle.space_changed:
        print("warning: search space changed; continuing (--allow-changed-space)", file=out)
    with sigterm_as_interrupt():
        summary = run_study(
            handle,
            services_for(handle),
            n_trials=target_trials,
            out=out,
            confirmation=loaded.spec.study.confirm,
        )
    _print_next_steps(study_file, out)
    return summary


def _print_next_steps(study_file: Path, out: TextIO) -> None:
    """The closing lines of `run` and `confirm`: where to look next."""
    print(
        f"inspect: dynamo-tune trials {study_file} | dynamo-tune best {study_file} | "
        f"dynamo-tune dashboard {study_file}",
        file=out,
    )
    print(
        f"report:  dynamo-tune report {study_file}  (one HTML file to attach to a change: "
        "verdict, plots, every trial)",
        file=out,
    )


def confirm_study_file(
    study_file: Path,
    services_for: ServicesFactory,
    *,
    top: int | None = None,
    repeats: int | None = None,
    out: TextIO | None = None,
) -> RunSummary:
    """`dynamo-tune confirm`: run, extend or resume the confirmation stage of a study whose
    search is done (options default to the file's `study.confirm`, else 3 and 3)."""
    out = out or sys.stdout
    loaded = load_spec(study_file)
    base = loaded.spec.study.confirm or ConfirmSpec()
    try:
        confirmation = ConfirmSpec(
            top=base.top if top is None else top,
            repeats=base.repeats if repeats is None else repeats,
        )
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise SpecError(problems) from None
    open_existing(loaded)  # SpecError naming the storage when there is no such study
    handle = open_for_run(loaded)
    with sigterm_as_interrupt():
        summary = run_study(
            handle,
            services_for(handle),
            n_trials=loaded.spec.study.n_trials,
            out=out,
            confirmation=confirmation,
            search=False,
        )
    _print_next_steps(study_file, out)
    return summary
