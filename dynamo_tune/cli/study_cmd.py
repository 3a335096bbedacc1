"""`dynamo-tune run | confirm | validate | trials | best | report | dashboard | export`: parsing
and printing.

Every command takes the study file; storage and study name come from it. The work is done
by `dynamo_tune.study`, imported when a command runs: Optuna and SQLAlchemy take about a
second to import, and `dynamo-tune metrics` and `stack` do not need them.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynamo_tune.errors import SearchSpaceChanged, SpecError

if TYPE_CHECKING:
    from dynamo_tune.study import LoadedSpec, StudyHandle


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the study subcommands to `sub`."""

    def add(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> Any:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("study_file", type=Path, metavar="STUDY.yaml")
        parser.set_defaults(func=_quiet_optuna(func))
        return parser

    run = add("run", "Start or resume a study until it has n_trials COMPLETE trials.", _run)
    run.add_argument("--n-trials", type=int, default=None, help="Raise the COMPLETE-trial target")
    run.add_argument(
        "--allow-changed-space",
        action="store_true",
        help="Resume although search_space differs from the stored study's",
    )
    conf = add(
        "confirm",
        "Re-measure the top configurations and the baseline; the verdict with intervals.",
        _confirm,
    )
    conf.add_argument(
        "--top",
        type=int,
        default=None,
        metavar="K",
        help="How many of the best search configurations to re-measure, 1-20 "
        "(default: study.confirm.top in the study file, else 3)",
    )
    conf.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="R",
        help="Fresh measurements of each configuration and of the baseline, 2-30 "
        "(default: study.confirm.repeats, else 3)",
    )
    add("validate", "Check a study file; every problem with its location.", _validate)
    add("trials", "Table of the study's trials.", _trials)
    best = add("best", "The best trial's configuration and its gain over the baseline.", _best)
    best.add_argument(
        "--format",
        choices=("flags", "yaml", "json"),
        default="yaml",
        help="flags: the router flags to paste into the frontend's command line; yaml: the "
        "router: and hints: sections; json: everything, with the verdict (default: %(default)s)",
    )
    best.add_argument(
        "--unconfirmed",
        action="store_true",
        help="Answer with the raw best search trial (one measurement, biased upward by being "
        "selected) instead of the confirmed winner",
    )
    best.add_argument(
        "--all",
        action="store_true",
        dest="all_flags",
        help="--format flags: also the flags the measuring stack set on its own (the local "
        "stack's --kv-cache-block-size), left out by default",
    )
    report = add(
        "report", "Write the study's report: one self-contained HTML file (opens offline).", _report
    )
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="PATH",
        help="HTML file to write (default: <study name>.report.html beside the study file)",
    )
    dash = add("dashboard", "Serve optuna-dashboard for the study on 127.0.0.1.", _dashboard)
    dash.add_argument("--port", type=int, default=0, help="Port (default: a free one)")
    export = add("export", "Write every trial to a CSV file.", _export)
    export.add_argument(
        "--csv",
        type=Path,
        required=True,
        metavar="PATH",
        help="CSV file to write: one row per trial (search and confirmation) with its number, "
        "state, value, parameters and every stored measurement and note",
    )


def _quiet_optuna(
    func: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """`func` with Optuna's own INFO/WARNING logging off (the commands print what matters)."""

    def run(args: argparse.Namespace) -> int:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        return func(args)

    return run


def _validate(args: argparse.Namespace) -> int:
    from dynamo_tune.study import load_spec, storage_target
    from dynamo_tune.study.store.samplers import make_sampler
    from dynamo_tune.study.store.storage import check_location

    loaded = load_spec(args.study_file)
    spec = loaded.spec
    target = storage_target(loaded)
    make_sampler(spec)  # SpecError if the sampler's packages are missing
    if spec.study.screen is not None:
        from dynamo_tune.study.run.screening import checked_engine

        checked_engine(spec)  # SpecError if Dynamo refuses the engine model
    check_location(target)  # SpecError naming a missing folder, StorageError if not writable
    print(
        f"ok: study {spec.study.name!r}: {len(spec.search_space)} searched parameters, "
        f"sampler {spec.study.sampler.name}, {spec.study.n_trials} trials, "
        f"storage {target.display}"
    )
    if spec.study.timeout_s is not None:
        print(
            f"timeout_s: {spec.study.timeout_s:g} s bounds the live search only; the screen and "
            "the confirmation run to their end"
        )
    if spec.study.screen is not None:
        from dynamo_tune.study.spec.screening import screen_scope

        scope = screen_scope(spec)
        screen = spec.study.screen
        print(
            f"screen: {screen.trials} configurations x {screen.repeats} virtual-time replays, "
            f"top {screen.top} measured live"
        )
        print(f"  screened: {', '.join(scope.screened)}")
        print(f"  live-only: {', '.join(scope.live_only) or 'none'}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from dynamo_tune.cli.run_output import TextReporter, next_steps, resume_command
    from dynamo_tune.interrupts import Interrupted, signal_name
    from dynamo_tune.study import build_services, run_study_file

    if args.n_trials is not None and args.n_trials < 1:
        raise SpecError(f"--n-trials must be >= 1, got {args.n_trials}")
    try:
        run_study_file(
            args.study_file,
            build_services,
            n_trials=args.n_trials,
            allow_changed_space=args.allow_changed_space,
            report=TextReporter(sys.stdout),
        )
    except SearchSpaceChanged as exc:
        raise SpecError(exc.message("pass --allow-changed-space")) from None
    except KeyboardInterrupt as exc:  # the same command resumes the run
        options = [] if args.n_trials is None else ["--n-trials", str(args.n_trials)]
        options += ["--allow-changed-space"] if args.allow_changed_space else []
        resume = resume_command("run", args.study_file, options)
        raise Interrupted(signal_name(exc), resume) from None
    print("\n".join(next_steps(args.study_file)))
    return 0


def _confirm(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from dynamo_tune.cli.run_output import TextReporter, next_steps, resume_command
    from dynamo_tune.interrupts import Interrupted, signal_name
    from dynamo_tune.study import build_services, confirm_study_file
    from dynamo_tune.validation import spec_error

    try:
        confirm_study_file(
            args.study_file,
            build_services,
            top=args.top,
            repeats=args.repeats,
            report=TextReporter(sys.stdout),
        )
    except ValidationError as exc:  # --top / --repeats outside what `study.confirm` allows
        raise spec_error(exc, rename={"top": "--top", "repeats": "--repeats"}) from None
    except KeyboardInterrupt as exc:  # the same command resumes the confirmation
        options = [] if args.top is None else ["--top", str(args.top)]
        options += [] if args.repeats is None else ["--repeats", str(args.repeats)]
        resume = resume_command("confirm", args.study_file, options)
        raise Interrupted(signal_name(exc), resume) from None
    print("\n".join(next_steps(args.study_file)))
    return 0


def _open(args: argparse.Namespace) -> tuple[LoadedSpec, StudyHandle]:
    from dynamo_tune.study import load_spec, open_existing

    loaded = load_spec(args.study_file)
    return loaded, open_existing(loaded)


def _trials(args: argparse.Namespace) -> int:
    from dynamo_tune.study.read.screen_view import screen_lines, screen_view
    from dynamo_tune.study.read.tables import trials_table
    from dynamo_tune.study.store.screen_study import load_screen_study

    loaded, handle = _open(args)
    screen = load_screen_study(handle)
    if screen is not None:  # the screen stage ran first: its size and best, then the live trials
        print("\n".join([*screen_lines(screen_view(handle.study, screen, loaded.spec)), ""]))
    print(trials_table(handle.study, loaded.spec))
    return 0


def _best(args: argparse.Namespace) -> int:
    from dynamo_tune.cli.best_output import answer_note, best_text, left_out_comments, value_line
    from dynamo_tune.study.read.answers import answer

    loaded, handle = _open(args)
    ans = answer(handle.study, unconfirmed=args.unconfirmed, spec=loaded.spec)
    text = best_text(ans, args.format, args.all_flags)
    note = answer_note(ans)
    if not text:
        print(note or "no COMPLETE trial yet", file=sys.stderr)
        return 1
    print(text)
    if args.format == "flags":  # stdout stays pasteable: the answer's words go to stderr
        extra = [value_line(ans)] + ([] if args.all_flags else left_out_comments(ans))
        print("\n".join(x for x in [note, *extra] if x), file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from dynamo_tune.report import write_report_file

    written = write_report_file(args.study_file, args.output)
    print(f"{written.headline}")
    print(
        f"report of {written.trials} trials -> {written.path} "
        f"({written.size_bytes / 1e6:.1f} MB, {written.seconds:.1f} s); opens offline in a browser"
    )
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from dynamo_tune.study.read.dashboard import dashboard_url, make_dashboard_server, serve

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
    from dynamo_tune.study.read.tables import csv_table
    from dynamo_tune.validation import require_folder

    _, handle = _open(args)
    require_folder(args.csv, "--csv")  # a typo in the folder is refused, never created
    header, rows = csv_table(handle.study)
    try:
        with args.csv.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as exc:
        raise SpecError(f"--csv: cannot write {args.csv}: {exc.strerror or exc}") from exc
    print(f"{len(rows)} trials -> {args.csv}")
    return 0
