"""`best` in every format states the verdict (issue 19, points 2 and 9) and its help texts.

The study: the fake cluster (tests/fakes.py) with a grid over three temperatures, the top 2
confirmed 3 times each. `TableMetrics` reports TTFT p95 0.5 s and ITL p95 0.05 s (both at
their targets, so each scores 1) and a KV efficiency per configuration and measurement, so
score = 0.4 · kve + 0.4 + 0.2 = 0.6 + 0.4 · kve:

    configuration      search kve (score)   confirmation kve        scores            mean
    baseline (rr)      0.50 (0.80)          0.45, 0.50, 0.55        0.78, 0.80, 0.82  0.80
    temperature 0.6    0.90 (0.96)          0.50, 0.50, 0.50        0.80 each         0.80
    temperature 0.0    0.80 (0.92)          0.70, 0.75, 0.80        0.88, 0.90, 0.92  0.90
    temperature 0.3    0.60 (0.84)          (not confirmed: top 2)

Temperature 0.6 is Optuna's raw best (0.96) but confirms at the baseline's mean; temperature
0.0 is the confirmed winner: +0.10 over the baseline, both sd 0.02 with n = 3, so Welch's
se = sqrt(2 · 0.02² / 3), df = 4, and the 95 % interval is 0.10 ± t(0.975, 4) · se with
t(0.975, 4) = 2.776445 (a t table): 0.0547..0.1453, +6.8..+18.2 % of 0.80.

The deployment reports the local stack's frontend flags (`frontend_router_args` with the
workers' block size 16): `--kv-cache-block-size 16` follows the router flags, set by the stack,
not by the study.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_metrics_helpers import GRID
from fakes import FakeDeployment, FakeMetricsBackend, fake_stack, write_study
from study_helpers import open_study

from dynamo_tune.cli.main import main
from dynamo_tune.cli.run_output import TextReporter
from dynamo_tune.deploy.base import AppliedConfig
from dynamo_tune.deploy.local_commands import frontend_router_args
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import split_flags
from dynamo_tune.metrics import DynamoMetricsResult
from dynamo_tune.study import run_study_file

KVE: dict[Any, list[float]] = {
    "rr": [0.50, 0.45, 0.50, 0.55],
    0.0: [0.80, 0.70, 0.75, 0.80],
    0.3: [0.60],
    0.6: [0.90, 0.50, 0.50, 0.50],
}
T_975_DF4 = 2.776445
SE = math.sqrt(2 * 0.02**2 / 3)
LOW, HIGH = 0.10 - T_975_DF4 * SE, 0.10 + T_975_DF4 * SE


class TableMetrics(FakeMetricsBackend):
    """The k-th measurement of a configuration reports KVE[configuration][k] (docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[Any, int] = {}

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        result = await super().collect(start, end)
        router = self.cluster.router
        assert router is not None
        key = (router.temperature or 0.0) if router.mode == "kv" else "rr"
        k = self.seen.get(key, 0)
        self.seen[key] = k + 1
        return result.model_copy(
            update={
                "ttft_p95": 0.5,
                "itl_p95": 0.05,
                "frontend_cached_tokens_rate": 100.0 * KVE[key][k],
            }
        )


class LocalFlagsDeployment(FakeDeployment):
    """Reports the frontend flags the local stack runs with (its workers' block size: 16)."""

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        applied = await super().apply(router)
        return applied.model_copy(update={"frontend_args": frontend_router_args(router, 16)})


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """(the study file, the confirmed winner's number, the raw best's number)."""
    path = write_study(
        tmp_path_factory.mktemp("best"), {**GRID, "study.confirm": {"top": 2, "repeats": 3}}
    )
    stack = fake_stack()
    stack.deployment = LocalFlagsDeployment(stack.cluster)
    stack.metrics = TableMetrics(stack.cluster)
    run_study_file(path, stack.services, report=TextReporter(io.StringIO()))
    search = [t for t in open_study(path).get_trials() if "stage" not in t.user_attrs]
    by_temp = {t.params["router.temperature"]: t.number for t in search if t.number != 0}
    return path, by_temp[0.0], by_temp[0.6]


def _best(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["best", str(path), *args]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_best_json_states_the_confirmed_winner_its_mean_and_gain(
    confirmed: tuple[Path, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    path, winner, raw_best = confirmed
    out, _ = _best(path, capsys, "--format", "json")
    data = json.loads(out)
    assert data["confirmed"] is True and data["verdict"]["winner"] == winner != raw_best
    (best,) = data["best"]
    assert best["number"] == winner
    assert best["values"] == [pytest.approx(0.90)]  # the confirmed mean, not 0.92
    assert best["values_source"] == "confirmation"
    assert best["search_values"] == [pytest.approx(0.92)]
    imp = data["improvement_over_baseline"]
    assert imp["source"] == "confirmation" and imp["metric"] == "score"
    assert imp["best_trial"] == winner and imp["baseline_trial"] == 0
    assert imp["best_value"] == pytest.approx(0.90)
    assert imp["baseline_value"] == pytest.approx(0.80)
    assert imp["absolute"] == pytest.approx(0.10)
    assert imp["relative"] == pytest.approx(0.125)
    assert imp["interval"]["low"] == pytest.approx(LOW, rel=1e-5)
    assert imp["interval"]["high"] == pytest.approx(HIGH, rel=1e-5)
    assert imp["interval"]["confidence"] == 0.95 and imp["interval"]["df"] == pytest.approx(4)
    assert imp["relative_low"] == pytest.approx(LOW / 0.8, rel=1e-5)
    assert imp["relative_high"] == pytest.approx(HIGH / 0.8, rel=1e-5)
    assert imp["n"] == [3, 3]
    assert best["vs_baseline"] == [imp]
    assert best["frontend_args"] == ["--router-mode", "kv", "--router-temperature", "0.0"]
    assert best["stack_frontend_args"] == ["--kv-cache-block-size", "16"]


def test_yaml_flags_and_trials_say_the_same(
    confirmed: tuple[Path, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    path, winner, _ = confirmed
    gain = "+12.5 % (95 % CI 6.8..18.2 %, n=3 each, Welch's t)"
    headline = f"confirmed winner: #{winner}: router.temperature=0.0: {gain}"
    means = (
        "score: confirmed mean 0.9000 vs baseline #0 0.8000 (n=3 each); "
        "search value 0.9200 (one measurement, not the evidence)"
    )
    out, _ = _best(path, capsys, "--format", "yaml")
    assert out.splitlines()[:2] == [f"# trial #{winner}; {headline}", f"# {means}"]
    assert yaml.safe_load(out)["router"] == {"mode": "kv", "temperature": 0.0}
    out, err = _best(path, capsys, "--format", "flags")
    assert out == "--router-mode kv --router-temperature 0.0\n"
    assert err.splitlines()[:2] == [headline, means]
    assert main(["trials", str(path)]) == 0
    table = capsys.readouterr().out
    assert f"  #{winner} score 0.9000 (sd 0.0200, n=3); vs baseline {gain}" in table
    assert f"  {headline}" in table


def test_flags_leave_out_the_stacks_block_size_unless_all(
    confirmed: tuple[Path, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    path, winner, _ = confirmed
    out, err = _best(path, capsys, "--format", "flags")
    assert "--kv-cache-block-size" not in out
    assert err.splitlines()[-1] == (
        f"# not printed (#{winner}): --kv-cache-block-size 16: set by the measuring stack, not "
        "by the study; use your deployment's own value (`--all` prints it)"
    )
    out, err = _best(path, capsys, "--format", "flags", "--all")
    assert out == "--router-mode kv --router-temperature 0.0 --kv-cache-block-size 16\n"
    assert "# not printed" not in err


def test_unconfirmed_stays_labelled_as_the_raw_search_value(
    confirmed: tuple[Path, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, raw_best = confirmed
    out, _ = _best(path, capsys, "--format", "json", "--unconfirmed")
    data = json.loads(out)
    assert data["confirmed"] is False and data["verdict"] is None
    (best,) = data["best"]
    assert best["number"] == raw_best and best["values_source"] == "search"
    assert best["values"] == best["search_values"] == [pytest.approx(0.96)]
    imp = data["improvement_over_baseline"]
    assert imp["source"] == "search" and imp["interval"] is None
    assert (imp["best_trial"], imp["baseline_trial"]) == (raw_best, 0)
    assert imp["best_value"] == pytest.approx(0.96)
    assert imp["relative"] == pytest.approx((0.96 - 0.80) / 0.80)
    assert data["note"] == (
        f"unconfirmed (--unconfirmed): best #{raw_best} 0.9600 vs baseline #0 0.8000: "
        "+0.1600 (+20.0%)"
    )


def test_split_flags_keeps_the_studys_fields_and_unknown_arguments() -> None:
    args = ["--router-mode", "kv", "--no-router-kv-events", "--router-policy-config", "p.yaml"]
    args += ["--kv-cache-block-size", "32", "--router-temperature", "0.5"]
    kept, other = split_flags(args, {"mode", "temperature"})
    assert kept == [
        "--router-mode",
        "kv",
        "--router-policy-config",
        "p.yaml",
        "--router-temperature",
        "0.5",
    ]
    assert other == ["--no-router-kv-events", "--kv-cache-block-size", "32"]


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse's line wrapping undone


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    best = _help(capsys, "best")
    assert "--format {flags,yaml,json} flags: the router flags to paste" in best
    assert "json: everything, with the verdict (default: yaml)" in best
    assert (
        "--unconfirmed Answer with the raw best search trial (one measurement, biased upward "
        "by being selected) instead of the confirmed winner" in best
    )
    assert "--all --format flags: also the flags the measuring stack set on its own" in best
    confirm = _help(capsys, "confirm")
    assert "--top K How many of the best search configurations to re-measure, 1-20" in confirm
    export = _help(capsys, "export")
    assert "--csv PATH CSV file to write: one row per trial" in export
