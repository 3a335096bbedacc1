"""The study runner's own cost per trial (storage writes, attrs, artifacts), without Dynamo.

Runs a study whose deployment, workload and metrics are the in-repo fakes (instant, fake
clock), so every second measured is the runner's: suggest, ~60 user attrs, constraints, two
artifacts, progress. Prints the median per-trial wall time per storage kind.

    uv run python benchmarks/study.py [--trials 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import optuna  # noqa: E402
from fakes import fake_stack, write_study  # noqa: E402

from dynamo_tune.study import run_study_file  # noqa: E402


def per_trial_seconds(storage: str, trials: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_study(Path(tmp), {"study.n_trials": trials, "study.storage": storage})
        run_study_file(path, fake_stack(workload_seconds=0.0).services)
        backend = storage.replace("sqlite:///", f"sqlite:///{tmp}/")
        if storage.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            store: object = JournalStorage(JournalFileBackend(f"{tmp}/{storage[8:]}"))
        else:
            store = backend
        study = optuna.load_study(study_name="fake", storage=store)  # type: ignore[arg-type]
        durations = [t.duration.total_seconds() for t in study.trials if t.duration]
        return statistics.median(durations), len(study.trials[-1].user_attrs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # as the CLI does: only our own lines
    for storage in ("sqlite:///bench.db", "journal:bench.log"):
        seconds, attrs = per_trial_seconds(storage, args.trials)
        print(
            f"{storage.split(':')[0]:>7}: runner overhead per trial {seconds * 1000:6.1f} ms "
            f"(median of {args.trials}; {attrs} user attrs + 2 artifacts per trial)"
        )


if __name__ == "__main__":
    main()
