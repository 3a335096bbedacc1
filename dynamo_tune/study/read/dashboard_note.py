"""The verdict as optuna-dashboard's study note. Does I/O: writes study system attrs.

optuna-dashboard shows a study's note (Markdown; `optuna_dashboard.save_note` keeps it in the
study's system attrs `dashboard:note_ver` and `dashboard:note_str:<i>`) on the study's Note page
(`<prefix>/studies/<id>/note`, "Note" in its sidebar). Its study page shows its own "Best
Trial": Optuna's raw best single value over every COMPLETE trial, search trials and
confirmation measurements alike. The note states the confirmed verdict in the verdict's own
words (`verdict_text`), says what that "Best Trial" is, and links the Trials (List) page
filtered (`?numbers=`) to the confirmation measurements and to the search trials.
Each stored verdict that reads differently rewrites the one note (its next version): edits
made in the dashboard are replaced then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import optuna

from dynamo_tune.study.confirmation.verdict import Verdict
from dynamo_tune.study.confirmation.verdict_text import block, headline
from dynamo_tune.study.trial.attr_keys import CONFIRM_STAGE, TrialAttr
from dynamo_tune.study.trial.record import records

RAW_BEST: Final = (
    "optuna-dashboard's own \"Best Trial\" (on the study's first page) is Optuna's raw best "
    "single value over every COMPLETE trial, confirmation measurements included: it is not the "
    "verdict. Its history, importance and slice plots include the confirmation measurements too."
)
REWRITTEN: Final = (
    "Written by dynamo-tune each time a run or `dynamo-tune confirm` stores the verdict "
    "(edits made here are replaced then)."
)


def _trials_link(text: str, numbers: Sequence[int]) -> str:
    """A Markdown link to the study's Trials (List) page showing only `numbers`; relative to
    the Note page (`<prefix>/studies/<id>/note`), so any URL prefix and study id work."""
    shown = ",".join(map(str, numbers))
    return f"[{text}](trials?numbers={shown})"


def note_body(verdict: Verdict, confirmations: Sequence[int], search: Sequence[int]) -> str:
    """The note's Markdown: the headline, what the dashboard's "Best Trial" is, the links to
    the confirmation measurements and the search trials, then the verdict's full text."""
    marked = f"user attr `{TrialAttr.STAGE}`: `{CONFIRM_STAGE}`; `{TrialAttr.CONFIRMS}`: the trial"
    confirmed = _trials_link(f"the {len(confirmations)} confirmation measurements", confirmations)
    links = [
        f"- {confirmed} ({marked} each repeats; Trials (Table) groups them when sorted by its "
        f'"UserAttribute {TrialAttr.CONFIRMS}" column)',
        f"- {_trials_link(f'the {len(search)} search trials', search)}",
    ]
    return "\n".join(
        [
            "## dynamo-tune verdict",
            "",
            f"**{headline(verdict)}**",
            "",
            RAW_BEST,
            "",
            *links,
            "",
            "```text",
            *block(verdict),
            "```",
            "",
            REWRITTEN,
            "",
        ]
    )


def write_verdict_note(study: optuna.Study, verdict: Verdict) -> None:
    """Store `verdict` as the study's optuna-dashboard note, replacing the one there; a note
    that already reads so is left as it is (its version too)."""
    from optuna_dashboard import get_note, save_note  # loads the web app: only when written

    trials = records(study)
    confirmations = [t.number for t in trials if t.is_confirmation]
    search = [t.number for t in trials if not t.is_confirmation]
    body = note_body(verdict, confirmations, search)
    if get_note(study) != body:
        save_note(study, body)
