"""Screening in virtual time vs a live-only search, on the quickstart's load and local stack.

Three measurements (`--part`):

- `rate`: the screening stage alone (no deployment): `--screen-trials` configurations, each
  replayed 3 times, stored in a fresh SQLite study; configurations per second, storage included.
- `arms`: for each seed and live budget, two runs of the quickstart study on fresh storages,
  both with the baseline only (no presets, so the budget is the search's own): `live` searches
  `budget` live trials with TPE; `screen` screens first (`study.screen: {trials, top: 2}`,
  the best once more with session ids) and then fills `budget` live trials. Both confirm as
  the quickstart does (top 2 + baseline, 3 repeats). Printed per run: wall time, the
  confirmed winner's mean score and gain over the baseline (or "no winner": the best
  confirmed mean then), and the best confirmed mean.
- `agreement`: 8 fixed configurations (round-robin, Dynamo's defaults, the agentic preset and
  5 kv settings spread over the space) measured live 3 times each (one search trial and 2
  confirmation measurements) and screened (3 replays each); Spearman's rho and the pairs, as
  the run's verdict stores them.

    uv run python benchmarks/screen.py --part rate [--screen-trials 200] [--repeats 3]
    uv run python benchmarks/screen.py --part arms [--budgets 4,6,10] [--seeds 0,1,2]
    uv run python benchmarks/screen.py --part agreement

On 2 cores: `rate` ~30 s; each `arms` run 4-7 minutes; `agreement` ~10 minutes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DYN_LOG", "warn")  # the replay's router logs every decision at INFO

import optuna  # noqa: E402
import yaml  # noqa: E402

from dynamo_tune.study import build_services, run_study_file  # noqa: E402
from dynamo_tune.study.confirmation.verdict import Verdict  # noqa: E402
from dynamo_tune.study.run.screening import Screening  # noqa: E402
from dynamo_tune.study.spec.loading import load_spec  # noqa: E402
from dynamo_tune.study.store.opening import open_for_run  # noqa: E402

QUICKSTART = Path(__file__).resolve().parent.parent / "studies" / "quickstart.yaml"

SPREAD: list[dict[str, Any]] = [
    {"router.mode": "kv", "router.overlap_score_credit": 0.0, "router.temperature": 0.0},
    {"router.mode": "kv", "router.overlap_score_credit": 2.0, "router.prefill_load_scale": 8.0},
    {"router.mode": "kv", "router.overlap_score_credit": 1.0, "router.temperature": 0.8},
    {"router.mode": "kv", "router.overlap_score_credit": 4.0, "router.prefill_load_scale": 0.5},
    {
        "router.mode": "kv",
        "router.overlap_score_credit": 1.3,
        "router.prefill_load_scale": 14.0,
        "router.decode_active_request_weight": 110.0,
    },
]
"""kv settings spread over the quickstart's space (the rest of each: Dynamo's defaults)."""


def quickstart() -> dict[str, Any]:
    doc = yaml.safe_load(QUICKSTART.read_text())
    assert isinstance(doc, dict)
    return doc


def write(folder: Path, doc: dict[str, Any]) -> Path:
    path = folder / f"{doc['study']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def verdict_of(path: Path) -> Verdict | None:
    loaded = load_spec(path)
    storage = f"sqlite:///{path.parent / (loaded.spec.study.name + '.db')}"
    study = optuna.load_study(study_name=loaded.spec.study.name, storage=storage)
    from dynamo_tune.study.trial.record import StudyRecord

    stored = StudyRecord.from_study(study).verdict
    return None if stored is None else Verdict.model_validate(stored)


def part_rate(trials: int, repeats: int) -> None:
    doc = quickstart()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        doc["study"].update(
            {
                "name": "rate",
                "storage": "sqlite:///rate.db",
                "screen": {"trials": trials, "top": 2, "repeats": repeats},
            }
        )
        doc["study"].pop("artifact_dir", None)
        handle = open_for_run(load_spec(write(folder, doc)))
        started = time.perf_counter()
        Screening(handle, build_services(handle).workload_for, lambda _: None).run(handle.study)
        seconds = time.perf_counter() - started
    print(
        f"screen: {trials} configurations x {repeats} replays (240 requests each) in "
        f"{seconds:.1f} s, SQLite storage included: {trials / seconds:.1f} configurations/s, "
        f"{repeats * trials / seconds:.1f} replays/s (configurations proposed twice are not "
        "replayed twice)"
    )


def arm(folder: Path, name: str, budget: int, seed: int, screen: bool) -> dict[str, Any]:
    doc = quickstart()
    study = doc["study"]
    study.update(
        {
            "name": name,
            "storage": f"sqlite:///{name}.db",
            "n_trials": budget,
            "sampler": {"name": "tpe", "seed": seed},
            "enqueue": [],
        }
    )
    study.pop("artifact_dir", None)
    study.pop("screen", None)
    if screen:
        study["screen"] = {"trials": 150, "top": 2, "repeats": 3}
    path = write(folder, doc)
    started = time.perf_counter()
    run_study_file(path, build_services)
    seconds = time.perf_counter() - started
    verdict = verdict_of(path)
    out: dict[str, Any] = {"seconds": seconds, "winner": None, "gain": None, "best": None}
    if verdict is not None:
        means = [(c.objectives[0].summary.mean, c) for c in verdict.configs if c.feasible]
        if means:
            best_mean, best = max(means, key=lambda m: m[0])
            out["best"] = f"{best_mean:.4f} {best.label}"
        winner = verdict.winner_config
        if winner is not None:
            diff = winner.objectives[0].difference
            out["winner"] = f"{winner.objectives[0].summary.mean:.4f} {winner.label}"
            if diff is not None:
                base = verdict.baseline.objectives[0].summary.mean
                low, high = 100 * diff.low / base, 100 * diff.high / base
                out["gain"] = f"{100 * diff.diff / base:+.1f} % ({low:+.1f}..{high:+.1f})"
        if verdict.screen is not None:
            out["rho"] = verdict.screen.rho
            out["n"] = verdict.screen.n
    return out


def part_arms(budgets: list[int], seeds: list[int]) -> None:
    print(f"{'arm':<8}{'seed':>5}{'budget':>7}{'wall':>9}  winner (gain) | best confirmed")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for budget in budgets:
                for screen in (False, True):
                    label = "screen" if screen else "live"
                    folder = Path(tmp) / f"{label}-{seed}-{budget}"
                    folder.mkdir()
                    r = arm(folder, f"{label}{seed}b{budget}", budget, seed, screen)
                    rho = f" | rho {r['rho']:.2f} n={r['n']}" if r.get("rho") is not None else ""
                    print(
                        f"{label:<8}{seed:>5}{budget:>7}{r['seconds']:>8.0f}s  "
                        f"{r['winner'] or 'no winner'} ({r['gain'] or '-'}) | {r['best']}{rho}",
                        flush=True,
                    )


def part_agreement() -> None:
    doc = quickstart()
    study = doc["study"]
    fixed = 3 + len(SPREAD)  # baseline, two presets, the spread
    study.update(
        {
            "name": "agreement",
            "storage": "sqlite:///agreement.db",
            "n_trials": fixed,
            "enqueue": ["dynamo-defaults", "agentic", *SPREAD],
            "screen": {"trials": fixed, "top": 1, "repeats": 3},  # the fixed ones only
            "confirm": {"top": fixed - 1, "repeats": 2},
        }
    )
    study.pop("artifact_dir", None)
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), doc)
        started = time.perf_counter()
        run_study_file(path, build_services)
        seconds = time.perf_counter() - started
        verdict = verdict_of(path)
    if verdict is None or verdict.screen is None:
        print(f"no verdict with a screen agreement after {seconds:.0f} s")
        return
    agreement = verdict.screen
    rho = "undefined" if agreement.rho is None else f"{agreement.rho:.3f}"
    print(f"{fixed} configurations, {seconds:.0f} s: Spearman's rho {rho} (n={agreement.n})")
    print(f"{'configuration':<28}{'screen':>8}{'live':>8}{'n live':>7}")
    for p in sorted(agreement.pairs, key=lambda p: -p.screen):
        print(f"{p.label:<28}{p.screen:>8.4f}{p.live:>8.4f}{p.live_n:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["rate", "arms", "agreement"], required=True)
    parser.add_argument("--screen-trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="rate: replays per configuration")
    parser.add_argument("--budgets", default="4,6,10")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.part == "rate":
        part_rate(args.screen_trials, args.repeats)
    elif args.part == "arms":
        part_arms(
            [int(b) for b in args.budgets.split(",")], [int(s) for s in args.seeds.split(",")]
        )
    else:
        part_agreement()


if __name__ == "__main__":
    main()
