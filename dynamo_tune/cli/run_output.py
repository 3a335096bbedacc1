"""The terminal lines of `run` and `confirm`: one per event of the run loop. Does I/O: writes
to the stream it is given.

    [ 3/12] #4 COMPLETE 0.5312 | best 0.5501 (#2) | kve 0.52 ttft95 0.41s itl95 0.031s
        | 34.1s (12% overhead) | ETA 5m02s
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from dynamo_tune.study.confirmation.verdict_text import block, screen_line
from dynamo_tune.study.run.events import (
    ConfirmationPlanned,
    ConfirmationUndecided,
    Event,
    FaultRetried,
    ScreenAgreementReached,
    ScreenDone,
    ScreenProgress,
    ScreenStarted,
    SearchDone,
    SearchTargetReached,
    StudyOpened,
    TrialFinished,
    VerdictReached,
    Waiting,
    Warned,
)
from dynamo_tune.study.run.progress import duration, overhead_share
from dynamo_tune.study.trial.attr_keys import HEADLINE_METRICS
from dynamo_tune.study.trial.record import TrialRecord

_FAULT_OUTCOME = {
    "requeued": "re-enqueued once",
    "confirmation": "not re-enqueued here (the confirmation plan re-queues what it lacks)",
}


def values_text(values: Sequence[float] | None) -> str:
    if not values:
        return "-"
    return ",".join(f"{v:.4f}" for v in values)


def metrics_text(record: TrialRecord) -> str:
    """Short key-metric summary of a trial: `kve 0.52 ttft95 0.41s itl95 0.031s`."""
    parts = []
    for label, key in HEADLINE_METRICS:
        value = record.value(key)
        if isinstance(value, int | float):
            parts.append(f"{label} {value:.3g}{'s' if key.endswith('_seconds') else ''}")
    return " ".join(parts)


def progress_line(event: TrialFinished) -> str:
    """The line printed after a trial ended."""
    r = event.record
    width = len(str(event.target))
    what = f"confirm #{r.number} of #{r.confirms}" if r.confirms is not None else f"#{r.number}"
    head = f"[{event.done:>{width}}/{event.target}] {what} {r.state.name}"
    if r.state.name == "COMPLETE":
        head += f" {values_text(r.values)}"
        if r.violations:
            head += " (infeasible: " + "; ".join(r.violations) + ")"
    elif r.fail_reason:  # its first line: a fault's reason goes on with the process log tail
        first, *rest = r.fail_reason.splitlines()
        head += f": {first}" + (f" (+{len(rest)} log lines in its fail_reason)" if rest else "")
    parts = [head]
    if event.best is not None:
        parts.append(f"best {values_text(event.best.values)} (#{event.best.number})")
    summary = metrics_text(r)
    if summary:
        parts.append(summary)
    if event.noise_sd is not None:
        parts.append(f"noise sd {event.noise_sd:.4f} (baseline, n={event.noise_n})")
    share = overhead_share(r.measured_seconds, event.trial_seconds)
    parts.append(
        duration(event.trial_seconds) + (f" ({share:.0%} overhead)" if share is not None else "")
    )
    parts.append(f"ETA {duration(event.eta_seconds)}")
    return " | ".join(parts)


def event_lines(event: Event) -> list[str]:
    """The terminal lines of one event of a run."""
    if isinstance(event, StudyOpened):
        lines = []
        if event.space_changed:
            lines.append("warning: search space changed; continuing (--allow-changed-space)")
        lines += [
            f"trial #{n} was left RUNNING by a killed run: FAIL, re-enqueued"
            for n in event.recovered
        ]
        new = " (new)" if event.created else ""
        return [
            *lines,
            f"study {event.name!r}: {event.complete}/{event.target} COMPLETE in "
            f"{event.storage}{new}",
        ]
    if isinstance(event, ScreenStarted | ScreenProgress | ScreenDone | ScreenAgreementReached):
        return screen_lines(event)
    if isinstance(event, SearchTargetReached):
        return [_target_reached(event)]
    if isinstance(event, TrialFinished):
        return [progress_line(event)]
    if isinstance(event, FaultRetried):
        what = _FAULT_OUTCOME.get(
            event.outcome, f"not retried again (it was the retry of #{event.retry_of})"
        )
        return [f"trial #{event.number}: {event.kind} fault; configuration {what}"]
    if isinstance(event, Waiting):
        return [event.message]
    if isinstance(event, Warned):
        return [f"warning: {event.message}"]
    if isinstance(event, SearchDone):
        return _search_done(event)
    if isinstance(event, ConfirmationPlanned):
        if event.baseline is None:
            return [
                "confirmation: nothing to confirm (needs a COMPLETE baseline trial and at least "
                "one feasible configuration)"
            ]
        return [_confirmation_planned(event)]
    if isinstance(event, ConfirmationUndecided):
        return [f"confirmation: {event.reason}"]
    if isinstance(event, VerdictReached):
        return block(event.verdict)
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover - every Event is handled


def params_text(params: dict[str, object]) -> str:
    """`mode=kv credit=2.1 ...`: a configuration's params, short names, 3 digits."""
    parts = []
    for name, value in params.items():
        short = name.split(".", 1)[-1]
        parts.append(f"{short}={value:.3g}" if isinstance(value, float) else f"{short}={value}")
    return " ".join(parts)


def screen_lines(
    event: ScreenStarted | ScreenProgress | ScreenDone | ScreenAgreementReached,
) -> list[str]:
    """The lines of the screening stage's events."""
    if isinstance(event, ScreenStarted):
        new = " (new)" if event.created else ""
        return [
            f"screen: study {event.name!r} {event.done}/{event.target} COMPLETE{new}; "
            f"{event.repeats} virtual-time replays per configuration",
            f"  screened: {', '.join(event.screened)}",
            "  live-only (held at the baseline's value while screening): "
            + (", ".join(event.live_only) or "none"),
        ]
    if isinstance(event, ScreenProgress):
        best = "-" if event.best is None else f"{event.best[1]:.4f} (#{event.best[0]})"
        return [
            f"screen [{event.done}/{event.target}] best {best} | {event.rate:.1f} configurations/s"
        ]
    if isinstance(event, ScreenDone):
        rate = event.ran / event.seconds if event.seconds > 0 else 0.0
        lines = [
            f"screen done: {event.done}/{event.target} COMPLETE, {event.ran} this run in "
            f"{duration(event.seconds)} ({rate:.1f}/s)"
        ]
        lines += [f"  #{n} {score:.4f} {params_text(p)}" for n, score, p in event.best]
        if event.enqueued is None:
            lines.append("  queued live by an earlier run")
        else:
            queued = ", ".join(f"#{n}" for n in event.enqueued) or "none (all measured already)"
            lines.append(f"  queued live, after the baseline and presets: screen {queued}")
            if event.variants and event.enqueued:
                lines.append(
                    f"  and screen #{event.enqueued[0]} with each live-only value: "
                    + ", ".join(event.variants)
                )
        return lines
    return [screen_line(event.agreement)]


def _target_reached(event: SearchTargetReached) -> str:
    """`search: the target is reached: 7 of 7 trials COMPLETE`, or what other processes run."""
    if event.running == 0:
        return f"search: the target is reached: {event.complete} of {event.target} trials COMPLETE"
    return (
        f"search: {event.complete} of {event.target} trials COMPLETE and {event.running} "
        "running in other processes: no search trial left to start here"
    )


def _confirmation_planned(event: ConfirmationPlanned) -> str:
    """A new plan: what it queued; a resumed one: how much is measured and what is left."""
    configs = ", ".join(f"#{n}" for n in event.configs)
    head = f"confirmation: baseline #{event.baseline} and {configs}, {event.repeats} fresh "
    if event.left is None or (event.measured == 0 and event.queued == event.left):
        return head + f"measurements each, interleaved ({event.queued} queued now)"
    total = (len(event.configs) + 1) * event.repeats
    left = event.left
    doing = f"measuring the {left} left" if left else "nothing left to measure"
    return head + f"measurements each: {event.measured} of {total} measured; {doing}"


def _search_done(event: SearchDone) -> list[str]:
    lines = [f"search done: {event.complete}/{event.target} COMPLETE"]
    if event.overheads:
        mean = sum(event.overheads) / len(event.overheads)
        lines.append(
            f"per-trial overhead (wall time outside the measured window): mean {mean:.1%}, "
            f"max {max(event.overheads):.1%} over {len(event.overheads)} trials"
        )
    if event.improvement is not None:
        lines.append(f"{event.improvement.text} (unconfirmed: one measurement each)")
    return lines


class TextReporter:
    """A run's reporter that writes each event's lines to `out` as they happen."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        for line in event_lines(event):
            print(line, file=self.out)
        self.out.flush()


def resume_command(command: str, study_file: Path, options: Sequence[str] = ()) -> str:
    """The shell command that resumes an interrupted `run` or `confirm` (quoted as needed):
    `dynamo-tune run studies/x.yaml --n-trials 12`."""
    return shlex.join(["dynamo-tune", command, str(study_file), *options])


def next_steps(study_file: Path) -> list[str]:
    """The closing lines of `run` and `confirm`: where to look next."""
    return [
        f"inspect: dynamo-tune trials {study_file} | dynamo-tune best {study_file} | "
        f"dynamo-tune dashboard {study_file}",
        f"report:  dynamo-tune report {study_file}  (one HTML file to attach to a change: "
        "verdict, plots, every trial)",
    ]
