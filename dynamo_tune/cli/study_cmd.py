"""`dynamo-tune run | validate | trials | best | dashboard | export`. Does I/O: the study commands.

Every command takes the study file; storage and study name come from it. `run` validates
first and writes nothing for an invalid file. Services (deployment, workload, metrics) are
built by `dynamo_tune.wiring.build_services`; tests pass their own factory to `run_command`.
"""

from __future__ import annotations

import argparse
import csv
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from dynamo_tune.errors import SpecError
from dynamo_tune.spec_file import LoadedSpec, load_spec

if TYPE_CHECKING:
    from dynamo_tune.objective import TrialServices
    from dynamo_tune.study import StudyHandle

# Optuna, SQLAlchemy and optuna-dashboard take seconds to import: each command imports what it
# uses, so `dynamo-tune metrics`, `stack` and `validate` start without them.
ServicesFactory = Callable[["StudyHandle"], "TrialServices"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the study subcommands to `sub`."""

    def add(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> Any:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("study_file", type=Path, metavar="STUDY.yaml")
        parser.set_defaults(func=func)
        return parser

    run = add("run", "Start or resume a study until it has n_trials COMPLETE trials.", _run)
    run.add_argument("--n-trials", type=int, default=None, help="Raise the COMPLETE-trial target")
    run.add_argument(
        "--allow-changed-space",
        action="store_true",
        help="Resume although search_space differs from the stored study's",
    )
    add("validate", "Check a study file; every problem with its location.", _validate)
    add("trials", "Table of the study's trials.", _trials)
    best = add("best", "The best trial's configuration and its gain over the baseline.", _best)
    best.add_argument("--format", choices=("flags", "yaml", "json"), default="yaml")
    dash = add("dashboard", "Serve optuna-dashboard for the study on 127.0.0.1.", _dashboard)
    dash.add_argument("--port", type=int, default=0, help="Port (default: a free one)")
    export = add("export", "Write every trial to a CSV file.", _export)
    export.add_argument("--csv", type=Path, required=True, metavar="PATH")


def _validate(args: argparse.Namespace) -> int:
    from dynamo_tune.samplers import make_sampler
    from dynamo_tune.study import storage_target

    loaded = load_spec(args.study_file)
    spec = loaded.spec
    target = storage_target(loaded)
    make_sampler(spec)  # SpecError if the sampler's packages are missing
    print(
        f"ok: study {spec.study.name!r}: {len(spec.search_space)} searched parameters, "
        f"sampler {spec.study.sampler.name}, {spec.study.n_trials} trials, "
        f"storage {target.display}"
    )
    return 0


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C while a run is in progress (trial FAIL, deployment stopped)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(
    study_file: Path,
    services_for: ServicesFactory,
    *,
    n_trials: int | None = None,
    allow_changed_space: bool = False,
    out: Any = None,
) -> int:
    """`dynamo-tune run` with injectable services (the CLI passes the real ones)."""
    import optuna

    from dynamo_tune.study import open_for_run
    from dynamo_tune.study_run import run_study

    out = out or sys.stdout
    loaded = load_spec(study_file)
    target_trials = n_trials if n_trials is not None else loaded.spec.study.n_trials
    if target_trials < 1:
        raise SpecError(f"--n-trials must be >= 1, got {target_trials}")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    handle = open_for_run(loaded, allow_changed_space=allow_changed_space)
    if handle.space_changed:
        print("warning: search space changed; continuing (--allow-changed-space)", file=out)
    with _sigterm_as_interrupt():
        run_study(handle, services_for(handle), n_trials=target_trials, out=out)
    print(
        f"inspect: dynamo-tune trials {study_file} | dynamo-tune best {study_file} | "
        f"dynamo-tune dashboard {study_file}",
        file=out,
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from dynamo_tune.wiring import build_services

    return run_command(
        args.study_file,
        build_services,
        n_trials=args.n_trials,
        allow_changed_space=args.allow_changed_space,
    )


def _open(args: argparse.Namespace) -> tuple[LoadedSpec, StudyHandle]:
    import optuna

    from dynamo_tune.study import open_existing

    loaded = load_spec(args.study_file)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return loaded, open_existing(loaded)


def _trials(args: argparse.Namespace) -> int:
    from dynamo_tune.study_report import trials_table

    _, handle = _open(args)
    print(trials_table(handle.study))
    return 0


def _best(args: argparse.Namespace) -> int:
    from dynamo_tune.study_report import best_output, improvement_text

    _, handle = _open(args)
    text = best_output(handle.study, args.format)
    if not text:
        print("no COMPLETE trial yet", file=sys.stderr)
        return 1
    print(text)
    note = improvement_text(handle.study)
    if note and args.format == "flags":
        print(note, file=sys.stderr)
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from dynamo_tune.dashboard import dashboard_url, make_dashboard_server, serve

    loaded, handle = _open(args)
    server = make_dashboard_server(handle.storage, handle.target, args.port)
    study_id = handle.storage.get_study_id_from_name(loaded.spec.study.name)
    url = dashboard_url(server, study_id)

    def announce(text: str) -> None:
        print(f"optuna-dashboard for {loaded.spec.study.name!r}: {text}", flush=True)
        print(f"artifacts: {handle.target.artifact_dir}; Ctrl-C to stop", flush=True)

    serve(server, announce, url)
    return 0


def _export(args: argparse.Namespace) -> int:
    from dynamo_tune.study_report import csv_table

    _, handle = _open(args)
    header, rows = csv_table(handle.study)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    print(f"{len(rows)} trials -> {args.csv}")
    return 0
