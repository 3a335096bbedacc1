"""The `dynamo-tune` command: argument parsing and error-to-exit-code mapping.

Each subcommand family lives in its own module with a `register(subparsers)` function that
adds its parsers and sets `func` (a callable taking the parsed `argparse.Namespace` and
returning an exit code). `DynamoTuneError`s become one line on stderr and their `exit_code`;
an interruption (Ctrl-C, or SIGTERM during a run) one line naming the signal and, for `run`
and `confirm`, the command that resumes it (exit 130).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dynamo_tune import __version__
from dynamo_tune.cli import metrics_cmd, stack_cmd, study_cmd, trace_cmd
from dynamo_tune.errors import DynamoTuneError
from dynamo_tune.interrupts import Interrupted, describe


class _StderrHandler(logging.Handler):
    """Writes each record as `dynamo-tune: warning: ...` to the current `sys.stderr`."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"dynamo-tune: {record.levelname.lower()}: {self.format(record)}", file=sys.stderr)


def configure_logging() -> None:
    """The layers below the CLI log their warnings (`dynamo_tune.*` loggers); the terminal
    shows them as one line each. Idempotent."""
    logger = logging.getLogger("dynamo_tune")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler(logging.WARNING)
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


def interrupted_line(exc: KeyboardInterrupt) -> str:
    """The last line of an interrupted command: `dynamo-tune: interrupted by SIGTERM; resume
    with: dynamo-tune run studies/x.yaml` (the resume part when the command knows one)."""
    line = f"dynamo-tune: interrupted by {describe(exc)}"
    resume = exc.resume if isinstance(exc, Interrupted) else None
    return line if resume is None else f"{line}; resume with: {resume}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamo-tune", description="Tune a Dynamo router with Optuna studies."
    )
    parser.add_argument("--version", action="version", version=f"dynamo-tune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (study_cmd, metrics_cmd, stack_cmd, trace_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        code: int = args.func(args)
    except DynamoTuneError as exc:
        print(f"dynamo-tune: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM during a run
        print(interrupted_line(exc), file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
