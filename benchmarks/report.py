"""How long `dynamo-tune report` takes and how big its file is, on a synthetic 200-trial study.

The study is fake-driven (tests/fakes.py: instant deployment, workload and metrics, fake
clock): 200 search trials over the fake's five knobs, 4 of them FAILed by a deployment that
refuses its flags, then a confirmation of the top 3 and the baseline, 3 measurements each.
Measured: the `dynamo-tune report` command end to end (a fresh process: imports, reading the
study, plots, writing), and `write_report_file` in this process once imports are warm.
Budget (issue 11): 5 s and 8 MB; exit 1 when exceeded.

    uv run python benchmarks/report.py [--trials 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import optuna  # noqa: E402
from fakes import fake_stack, write_study  # noqa: E402

from dynamo_tune.report import write_report_file  # noqa: E402
from dynamo_tune.study import run_study_file  # noqa: E402

BUDGET_SECONDS = 5.0
BUDGET_BYTES = 8_000_000


def make_study(folder: Path, trials: int) -> Path:
    """A finished fake-driven study of `trials` search trials with a confirmation."""
    path = write_study(
        folder,
        {
            "study.n_trials": trials,
            "study.sampler": {"name": "random", "seed": 7},
            "study.confirm": {"top": 3, "repeats": 3},
            "study.max_failures_in_a_row": 10,
        },
    )
    stack = fake_stack(workload_seconds=20.0, deployment={"fail_apply": {5, 50, 120, 180}})
    run_study_file(path, stack.services)
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # as the CLI does: only our own lines
    exe = shutil.which("dynamo-tune") or str(Path(sys.executable).parent / "dynamo-tune")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = make_study(Path(tmp), args.trials)
        print(f"synthetic study: {args.trials} search trials made in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        out = Path(tmp) / "report.html"
        cli = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            done = subprocess.run(
                [exe, "report", str(path), "-o", str(out)], capture_output=True, text=True
            )
            cli.append(time.perf_counter() - t0)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
        warm = []
        for _ in range(args.runs):
            written = write_report_file(path, out)
            warm.append(written.seconds)
        size = out.stat().st_size
        print(f"trials in the report: {written.trials} (search + confirmation + failed)")
        print(f"`dynamo-tune report` (fresh process): median {statistics.median(cli):.2f} s "
              f"(runs: {', '.join(f'{s:.2f}' for s in cli)})")  # fmt: skip
        print(f"write_report_file, imports warm:      median {statistics.median(warm):.2f} s "
              f"(runs: {', '.join(f'{s:.2f}' for s in warm)})")  # fmt: skip
        print(f"report size: {size} bytes ({size / 1e6:.2f} MB)")
        ok = statistics.median(cli) <= BUDGET_SECONDS and size <= BUDGET_BYTES
        print(
            f"budget {BUDGET_SECONDS:g} s, {BUDGET_BYTES / 1e6:g} MB: {'met' if ok else 'EXCEEDED'}"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
