"""The report's first section: the verdict and the chosen configuration(s), paste-ready. Pure.

The answer is `readback.answer`'s (the one definition `best` uses too): the confirmed winner,
a Pareto study's feasible confirmed set, the plain "nothing beats the baseline beyond noise",
or, before any confirmation, the raw best search trial labelled unconfirmed.
"""

from __future__ import annotations

import shlex
from typing import Literal

import optuna
import yaml
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict

from dynamo_tune.study.confirmation.verdict import label_of
from dynamo_tune.study.read.answers import (
    answer,
    best_config,
    improvement_text,
    stored_verdict,
)
from dynamo_tune.study.trial.attr_keys import TrialAttr
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


def verdict_block(study: optuna.Study) -> VerdictBlock:
    """The verdict section of `study`'s report."""
    ans = answer(study)
    verdict = stored_verdict(study)
    chosen = [
        ChosenConfig(
            label=label_of(t),
            flags=shlex.join(t.user_attrs.get(TrialAttr.FRONTEND_ARGS, [])),
            router_yaml=yaml.safe_dump(best_config(t), sort_keys=False),
        )
        for t in ans.trials
    ]
    lines = list(verdict.lines) if verdict is not None else []
    kind: Literal["confirmed", "no winner", "pareto", "unconfirmed", "no result"]
    if not ans.trials and verdict is None:
        kind = "no result"
        finished = search_trials(study, TrialState.COMPLETE)
        headline = (
            "no result: no search trial COMPLETE yet"
            if not finished
            else "no result: " + (ans.note or "no comparable trial")
        )
    elif not ans.confirmed:
        kind = "unconfirmed"
        raw = improvement_text(study) or "best " + ", ".join(c.label for c in chosen)
        headline = (
            "UNCONFIRMED raw best (one measurement, biased upward by being selected as the "
            f"best; `dynamo-tune confirm` measures it again): {raw}"
        )
    elif len(study.directions) > 1:
        kind = "pareto"
        headline = (
            f"confirmed Pareto set: {len(chosen)} feasible configuration(s); each objective's "
            "confirmed mean and 95 % interval against the baseline below"
        )
    elif not ans.trials:
        kind = "no winner"
        assert verdict is not None
        headline = verdict.headline
    else:
        kind = "confirmed"
        headline = ans.note
    return VerdictBlock(kind=kind, headline=headline, lines=lines, chosen=chosen)
