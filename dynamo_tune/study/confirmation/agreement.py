"""How well the screen predicted the live ranking: Spearman's rho over configurations measured
both ways. Pure.

A pair is one configuration with a screen score (the mean of its replays) and a live score
(the mean of its live measurements: its search trial and every confirmation measurement of
it). The configurations paired are the live trials the screen also scored: the screened top K
it enqueued (`screened`), the baseline and the presets (the screen replays them as fixed
configurations). rho is Spearman's rank correlation (`scipy.stats.spearmanr`, average ranks
for ties); None with fewer than 2 pairs or a constant side. With rho < `LOW_RHO` or fewer than
`MIN_PAIRS` pairs the screen is not shown to predict this deployment's live ranking.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from dynamo_tune.study.trial.record import TrialRecord

LOW_RHO = 0.5
MIN_PAIRS = 4


class AgreementPair(BaseModel):
    """One configuration scored both ways."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(description="'#<live trial>' plus baseline/preset/screen origin")
    live_trial: int
    screen_trial: int
    screen: float = Field(description="Mean screen score over the replays")
    live: float = Field(description="Mean live score over its live measurements")
    live_n: int = Field(description="Live measurements averaged")


class ScreenAgreement(BaseModel):
    """Spearman's rho between screen and live scores, with its pairs."""

    model_config = ConfigDict(frozen=True)

    rho: float | None
    n: int
    pairs: list[AgreementPair] = Field(default_factory=list)

    @property
    def predicts(self) -> bool:
        """Whether the screen predicted the live ranking (rho >= LOW_RHO over >= MIN_PAIRS)."""
        return self.rho is not None and self.n >= MIN_PAIRS and self.rho >= LOW_RHO


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired samples; None with < 2 pairs or a constant side."""
    if len(xs) != len(ys):
        raise ValueError(f"`len(xs) == len(ys)` must hold, but got {len(xs)} and {len(ys)}.")
    if len(xs) < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    from scipy.stats import spearmanr  # loaded only when there is something to rank

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(xs, ys).statistic)
    return None if math.isnan(rho) else rho


def _label(live: TrialRecord) -> str:
    origin = "baseline" if live.baseline else live.preset or "screened"
    return f"#{live.number} {origin}"


def screen_match(live: TrialRecord, screen: Sequence[TrialRecord]) -> TrialRecord | None:
    """The screen trial that scored live search trial `live`'s configuration, if any."""
    for s in screen:
        if s.values is None:
            continue
        if live.screened is not None and s.number == live.screened:
            return s
        if live.screened is None and live.baseline and s.baseline:
            return s
        if live.screened is None and live.preset is not None and s.preset == live.preset:
            return s
    return None


def agreement(live: Sequence[TrialRecord], screen: Sequence[TrialRecord]) -> ScreenAgreement:
    """The pairs and rho from COMPLETE live trials (search and confirmation) and screen trials."""
    values: dict[int, list[float]] = {}
    for r in live:
        if r.values is None:
            continue
        source = r.confirms if r.is_confirmation else r.number
        if source is not None:
            values.setdefault(source, []).append(r.values[0])
    pairs: list[AgreementPair] = []
    for r in live:
        if r.is_confirmation or r.values is None:  # a retry of a FAIL trial counts
            continue
        match = screen_match(r, screen)
        if match is None or match.values is None or not values.get(r.number):
            continue
        pairs.append(
            AgreementPair(
                label=_label(r),
                live_trial=r.number,
                screen_trial=match.number,
                screen=match.values[0],
                live=statistics.fmean(values[r.number]),
                live_n=len(values[r.number]),
            )
        )
    rho = spearman([p.screen for p in pairs], [p.live for p in pairs])
    return ScreenAgreement(rho=rho, n=len(pairs), pairs=pairs)
