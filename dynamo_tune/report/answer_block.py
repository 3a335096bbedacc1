"""The report's first section: the verdict and the chosen configuration(s), paste-ready. Pure.

The answer is `answers.answer`'s (the one definition `best` uses too): the confirmed winner,
a Pareto study's feasible confirmed set, the plain "nothing beats the baseline beyond noise",
or, before any confirmation, the raw best search trial labelled unconfirmed. Every text is
rendered here from the answer's data (`verdict_text` for the verdict's own lines).
"""

from __future__ import annotations

import shlex
from typing import Literal

import optuna
import yaml
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.confirmation import verdict_text
from dynamo_tune.study.confirmation.verdict import label_of
from dynamo_tune.study.read.answers import Answer, answer, best_config, router_args
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.trial.selection import search_trials


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChosenConfig(_Model):
    """A configuration the verdict recommends, as the operator would paste it."""

    label: str
    flags: str
    """The frontend flags the trial ran with (shell-quoted)."""
    router_yaml: str
    """`router:` and `hints:` as YAML (a study file's or `dynamo-tune best --format yaml`'s)."""


class VerdictBlock(_Model):
    kind: Literal["confirmed", "no winner", "pareto", "unconfirmed", "no result"]
    headline: str
    lines: list[str]
    """Every line of the stored verdict (each configuration's confirmed mean and gain)."""
    chosen: list[ChosenConfig]
    tied: str | None = None
    """The configurations not told apart from the winner, as one group (`tie_group`)."""


def _unconfirmed_note(ans: Answer) -> str:
    """`unconfirmed (the study has no confirmation yet): <raw best vs baseline>`."""
    raw = ans.improvement.text if ans.improvement is not None else ""
    return f"unconfirmed (the study has no confirmation yet): {raw}".rstrip(": ")


def verdict_block(study: optuna.Study, spec: StudySpec | None = None) -> VerdictBlock:
    """The verdict section of `study`'s report (`spec`: the study file, which fills in the
    range edges of a verdict stored without them)."""
    ans = answer(study, spec=spec)
    verdict = ans.verdict
    chosen = [
        ChosenConfig(
            label=label_of(r),
            flags=shlex.join(router_args(r)[0]),
            router_yaml=yaml.safe_dump(best_config(r), sort_keys=False),
        )
        for r in ans.trials
    ]
    lines = verdict_text.lines(verdict) if verdict is not None else []
    kind: Literal["confirmed", "no winner", "pareto", "unconfirmed", "no result"]
    if not ans.trials and verdict is None:
        kind = "no result"
        finished = search_trials(study, TrialState.COMPLETE)
        headline = (
            "no result: no search trial COMPLETE yet"
            if not finished
            else "no result: " + _unconfirmed_note(ans)
        )
    elif verdict is None:
        kind = "unconfirmed"
        raw = (
            ans.improvement.text
            if ans.improvement is not None
            else "best " + ", ".join(c.label for c in chosen)
        )
        headline = (
            "UNCONFIRMED raw best (one measurement, biased upward by being selected as the "
            f"best; `dynamo-tune confirm` measures it again): {raw}"
        )
    elif ans.kind == "pareto":
        kind = "pareto"
        headline = (
            f"confirmed Pareto set: {len(chosen)} feasible configuration(s); each objective's "
            f"confirmed mean and {verdict.confidence * 100:g} % interval against the baseline "
            "below"
        )
    elif ans.kind == "no_winner":
        kind = "no winner"
        headline = verdict_text.headline(verdict)
    else:
        kind = "confirmed"
        headline = verdict_text.headline(verdict)
    tied = verdict_text.tie_group(verdict) if verdict is not None else None
    return VerdictBlock(kind=kind, headline=headline, lines=lines, chosen=chosen, tied=tied)
