"""Fault-injection soak: two runners on one study, a real PostgreSQL, the local stack, and
faults at seeded random moments; then the invariants nothing measured may break.

Two `dynamo-tune run` processes (each with its own local Dynamo stack: frontend + KV router,
mocker workers, Prometheus) share one study on a private PostgreSQL server. For `--minutes`,
an injector waits an exponential gap (mean `--mean-gap` s, drawn from `--seed`) and then,
each kind once per round in a seeded order, SIGKILLs a mocker worker, a frontend or a
Prometheus of a running stack, SIGKILLs a runner (and starts it again), cuts the study
database's connections (`pg_terminate_backend`) or restarts the server (down 1-5 s). A
runner that exits before the study is done is started again. After the injection window the
runners get `--grace` minutes to finish the search (`n_trials` COMPLETE) and the
confirmation. Then the stored study is checked:

- search trials COMPLETE == n_trials exactly; no RUNNING trial;
- every FAIL trial has a reason and a fault kind;
- no configuration measured more often than the confirmation plan asks;
- every COMPLETE trial holds all seven core metrics;
- no spill file holds a line; no runner printed a traceback.

    uv run python benchmarks/soak.py --minutes 20 --seed 1

Prints the faults injected by kind, the runners' exits, the trials by state and the invariants
table; exits 1 when an invariant fails (the work folder is then kept and named). PostgreSQL
comes from Debian's `postgresql` package (tests/fixtures/postgres.py starts it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import optuna  # noqa: E402
import yaml  # noqa: E402
from fixtures.postgres import ROLE_PASSWORD, PostgresServer, start_postgres  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from dynamo_tune.errors import MeasurementFault  # noqa: E402
from dynamo_tune.metrics import DynamoCoreMetrics  # noqa: E402
from dynamo_tune.study.confirmation.plan import stored_plan  # noqa: E402
from dynamo_tune.study.trial.record import ConfirmPlan, TrialRecord, records  # noqa: E402

PASSWORD_VAR = "SOAK_DB_PASSWORD"
DATABASE = "soak"
FAULT_KINDS = ("worker", "frontend", "prometheus", "runner", "pg_terminate", "pg_restart")
STACK_MARKERS = {"worker": "dynamo.mocker", "frontend": "dynamo.frontend"}
CORE_METRICS = tuple(
    k for k in DynamoCoreMetrics.model_fields if k == "kv_efficiency" or k.endswith("_seconds")
)
"""KVE, TTFT p50/p95/p99, ITL p50/p95/p99: what a COMPLETE trial must hold."""


class SoakConfig(BaseModel):
    """One soak: how long faults are injected, how often, with which seed, on what study."""

    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(default=20.0, gt=0, description="Fault-injection window, minutes")
    grace_minutes: float = Field(default=15.0, gt=0, description="Time to finish afterwards")
    seed: int = 1
    mean_gap_s: float = Field(default=40.0, gt=0, description="Mean gap between faults, s")
    n_trials: int = Field(default=40, ge=2, description="The study's search target")
    confirm_top: int = 2
    confirm_repeats: int = 2
    kinds: tuple[str, ...] = FAULT_KINDS
    runners: int = 2


def study_document(cfg: SoakConfig, storage_url: str) -> dict[str, Any]:
    """The soak's study file: a short agentic workload on a 2-worker local stack. Pure."""
    return {
        "study": {
            "name": "soak",
            "storage": storage_url,
            "n_trials": cfg.n_trials,
            "sampler": {"name": "tpe", "seed": cfg.seed},
            "baseline": {"router.mode": "round-robin"},
            "confirm": {"top": cfg.confirm_top, "repeats": cfg.confirm_repeats},
            "heartbeat_interval_s": 2,
            "storage_retry_s": 60,
            "max_failures_in_a_row": 10,
            "artifact_dir": "artifacts",
        },
        "deployment": {
            "kind": "local",
            "workers": 2,
            "mocker": {"speedup_ratio": 1, "block_size": 16, "num_gpu_blocks": 1024},
            "isolation": "restart",
            "scrape_interval_s": 0.5,
            "router": {"mode": "kv"},
        },
        "workload": {
            "kind": "agentic",
            "sessions": 8,
            "turns": 4,
            "concurrency": 8,
            "system_prompt_tokens": 400,
            "session_context_tokens": 400,
            "appended_tokens": 100,
            "output_tokens": 48,
            "seed": 0,
        },
        "search_space": {
            "router.mode": {"type": "categorical", "choices": ["kv", "round-robin"]},
            "router.overlap_score_credit": {"type": "float", "low": 0.0, "high": 4.0},
            "router.temperature": {"type": "float", "low": 0.0, "high": 1.0},
        },
        "objective": {"kv_weight": 0.5, "ttft_weight": 0.3, "itl_weight": 0.2},
    }


# -- processes --------------------------------------------------------------------------------


def _ppid(pid: int) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return None


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := _ppid(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _cmdline(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    return []


def stack_pids(runner_pid: int, kind: str) -> list[int]:
    """The `kind` processes ("worker", "frontend", "prometheus") of a runner's stack."""
    found = []
    for pid in descendants(runner_pid):
        argv = _cmdline(pid)
        if kind == "prometheus":
            if argv and Path(argv[0]).name == "prometheus":
                found.append(pid)
        elif STACK_MARKERS[kind] in argv:
            found.append(pid)
    return found


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Runner:
    """One `dynamo-tune run` process, started again after a kill or an early exit."""

    index: int
    study_file: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    exits: list[int] = field(default_factory=list)
    starts: int = 0
    done: bool = False

    def log(self, stream: str) -> Path:
        return self.study_file.parent / f"runner-{self.index}.{stream}.log"

    def start(self) -> None:
        exe = Path(sys.executable).parent / "dynamo-tune"
        out, err = self.log("stdout").open("ab"), self.log("stderr").open("ab")
        with out, err:
            self.proc = subprocess.Popen(
                [str(exe), "run", str(self.study_file)],
                cwd=self.study_file.parent,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.starts += 1

    def poll(self) -> int | None:
        """The exit code once the current process ended (recorded once), else None."""
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is not None:
            self.exits.append(code)
            self.done = code == 0
            self.proc = None
        return code

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill(self) -> None:
        """SIGKILL the runner's process group and the stack below it (by pid)."""
        if self.proc is None:
            return
        below = descendants(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.proc.wait()
        self.poll()


# -- faults -----------------------------------------------------------------------------------


@dataclass
class Injection:
    kind: str
    at_s: float
    detail: str
    done: bool


def terminate_connections(server: PostgresServer) -> int:
    """Cut every connection to the study database; how many there were."""
    with server.admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = %s",
            (DATABASE,),
        ).fetchall()
    return len(rows)


class Injector:
    """Draws (gap, kind) from the seed and applies each fault to a random live target."""

    def __init__(self, cfg: SoakConfig, runners: list[Runner], server: PostgresServer) -> None:
        self.cfg, self.runners, self.server = cfg, runners, server
        self.rng = random.Random(cfg.seed)
        self.log: list[Injection] = []
        self.order: list[str] = []

    def next_gap(self) -> float:
        return self.rng.expovariate(1.0 / self.cfg.mean_gap_s)

    def inject(self, elapsed_s: float) -> Injection:
        if not self.order:  # every kind once per round, in a seeded order
            self.order = self.rng.sample(self.cfg.kinds, len(self.cfg.kinds))
        kind = self.order.pop()
        live = [r for r in self.runners if r.pid is not None]
        runner = self.rng.choice(live) if live else None
        detail, done = self._apply(kind, runner)
        shot = Injection(kind, elapsed_s, detail, done)
        self.log.append(shot)
        return shot

    def _apply(self, kind: str, runner: Runner | None) -> tuple[str, bool]:
        if kind == "pg_terminate":
            return f"{terminate_connections(self.server)} connections cut", True
        if kind == "pg_restart":
            down = self.rng.uniform(1.0, 5.0)
            self.server.stop()
            time.sleep(down)
            self.server.start()
            return f"server down {down:.1f} s", True
        if runner is None or runner.pid is None:
            return "no runner alive", False
        if kind == "runner":
            runner.kill()
            time.sleep(self.rng.uniform(0.5, 3.0))
            runner.start()
            return f"runner {runner.index} killed and started again", True
        pids = stack_pids(runner.pid, kind)
        if not pids:
            return f"runner {runner.index} has no {kind} now", False
        pid = self.rng.choice(pids)
        return f"runner {runner.index} {kind} pid {pid}", _kill(pid)


# -- the check --------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def fault_kind(reason: str | None, fault: str | None) -> str | None:
    """What failed a FAIL trial, from its stored reason and fault: a kind or None. Pure."""
    if fault:
        return "metrics" if MeasurementFault.describes(fault) else "deployment"
    text = reason or ""
    for kind, words in (
        ("runner", ("runner process died", "heartbeat")),
        ("interrupted", ("interrupted", "SIGTERM", "SIGINT")),
        ("storage", ("storage", "database")),
    ):
        if any(w in text for w in words):
            return kind
    return None


def stored_study(url: str) -> tuple[list[TrialRecord], ConfirmPlan | None]:
    """Every trial of the stored study and its confirmation plan (the connections closed)."""
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name="soak", storage=storage)
        return records(study), stored_plan(study)
    finally:
        storage.engine.dispose()


def check_study(
    recs: list[TrialRecord], plan: ConfirmPlan | None, cfg: SoakConfig, runners: list[Runner]
) -> list[Check]:
    """The soak's invariants over the stored trials, the spill files and the runners' logs."""
    search = [r for r in recs if not r.is_confirmation]
    complete = [r for r in search if r.state == TrialState.COMPLETE]
    running = [r.number for r in recs if r.state == TrialState.RUNNING]
    fails = [r for r in recs if r.state == TrialState.FAIL]
    unexplained = {
        r.number: (r.fail_reason or "no reason").splitlines()[0][:100]
        for r in fails
        if not r.fail_reason or not fault_kind(r.fail_reason, r.fault)
    }
    measured: dict[int, list[TrialRecord]] = {}
    for r in recs:
        if r.is_confirmation and r.confirms is not None and r.state == TrialState.COMPLETE:
            measured.setdefault(r.confirms, []).append(r)
    over = (
        {
            n: len(measured.get(n, []))
            for n in plan.members
            if len(measured.get(n, [])) > plan.repeats
        }
        if plan
        else {}
    )
    short = (
        {
            n: len(measured.get(n, []))
            for n in plan.members
            if len(measured.get(n, [])) < plan.repeats
        }
        if plan
        else {}
    )
    missing = [
        r.number
        for r in recs
        if r.state == TrialState.COMPLETE and any(r.number_of(k) is None for k in CORE_METRICS)
    ]
    spills = [
        p for p in runners[0].study_file.parent.glob("*.spill.jsonl") if p.read_text().strip()
    ]
    tracebacks = sum(
        r.log("stderr").read_text(errors="replace").count("Traceback") for r in runners
    )
    tracebacks += sum(
        r.log("stdout").read_text(errors="replace").count("Traceback") for r in runners
    )
    return [
        Check(
            "search trials COMPLETE == n_trials",
            len(complete) == cfg.n_trials,
            f"{len(complete)} of {cfg.n_trials}",
        ),
        Check("no RUNNING trial", not running, f"running: {running}" if running else "0"),
        Check(
            "every FAIL has a reason and a fault kind",
            not unexplained,
            f"{len(fails)} FAIL; unexplained: {unexplained}",
        ),
        Check(
            "no duplicated confirmation measurement",
            plan is not None and not over,
            f"plan: {plan.model_dump() if plan else None}; over: {over}",
        ),
        Check("confirmation complete", plan is not None and not short, f"short: {short}"),
        Check(
            "no COMPLETE trial with missing core metrics",
            not missing,
            f"missing: {missing}" if missing else "0",
        ),
        Check("spill files empty", not spills, ", ".join(map(str, spills)) or "none"),
        Check("tracebacks printed == 0", tracebacks == 0, str(tracebacks)),
    ]


def fail_kinds(recs: list[TrialRecord]) -> Counter[str]:
    """FAIL trials by what failed them. Pure."""
    return Counter(
        fault_kind(r.fail_reason, r.fault) or "unexplained"
        for r in recs
        if r.state == TrialState.FAIL
    )


def state_counts(recs: list[TrialRecord]) -> Counter[str]:
    """Trials by stage and state. Pure."""
    return Counter(f"{'confirm' if r.is_confirmation else 'search'} {r.state.name}" for r in recs)


# -- the soak ---------------------------------------------------------------------------------


@dataclass
class SoakResult:
    injections: list[Injection]
    exits: dict[int, list[int]]
    starts: dict[int, int]
    states: Counter[str]
    fails: Counter[str]
    checks: list[Check]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def soak(
    cfg: SoakConfig, server: PostgresServer, folder: Path, say: Callable[[str], None] = print
) -> SoakResult:
    """Run the soak in `folder` against `server` (a fresh database `soak` is created)."""
    server.create_database(DATABASE)
    storage_file_url = server.url(DATABASE, password="${" + PASSWORD_VAR + "}")
    study_file = folder / "soak.yaml"
    study_file.write_text(yaml.safe_dump(study_document(cfg, storage_file_url), sort_keys=False))
    env = {**os.environ, PASSWORD_VAR: ROLE_PASSWORD}
    runners = [Runner(i, study_file, env) for i in range(cfg.runners)]
    injector = Injector(cfg, runners, server)
    t0 = time.monotonic()
    inject_until = t0 + cfg.minutes * 60
    hard_end = inject_until + cfg.grace_minutes * 60
    next_fault = t0 + injector.next_gap()
    for runner in runners:
        runner.start()
    say(
        f"soak: {cfg.runners} runners on {folder}; faults for {cfg.minutes:g} min (seed {cfg.seed})"
    )
    try:
        while time.monotonic() < hard_end:
            for runner in runners:
                code = runner.poll()
                if code is not None and code != 0:
                    say(f"  runner {runner.index} exited {code} on its own: started again")
                    runner.start()
            if all(r.done for r in runners):
                break
            now = time.monotonic()
            if next_fault <= now < inject_until:
                shot = injector.inject(now - t0)
                mark = "" if shot.done else " (skipped)"
                say(f"  {shot.at_s:7.1f} s  {shot.kind:<12} {shot.detail}{mark}")
                next_fault = time.monotonic() + injector.next_gap()
            time.sleep(0.5)
    finally:
        for runner in runners:
            runner.kill()
    seconds = time.monotonic() - t0
    recs, plan = stored_study(server.url(DATABASE))
    return SoakResult(
        injections=injector.log,
        exits={r.index: r.exits for r in runners},
        starts={r.index: r.starts for r in runners},
        states=state_counts(recs),
        fails=fail_kinds(recs),
        checks=check_study(recs, plan, cfg, runners),
        seconds=seconds,
    )


def table(result: SoakResult) -> str:
    """The soak's tables (markdown). Pure."""
    done = Counter(i.kind for i in result.injections if i.done)
    skipped = Counter(i.kind for i in result.injections if not i.done)
    lines = ["| fault | injected | skipped (no target) |", "|---|---|---|"]
    lines += [f"| {k} | {done[k]} | {skipped[k]} |" for k in FAULT_KINDS if done[k] or skipped[k]]
    lines += ["", "| runner | starts | exit codes |", "|---|---|---|"]
    lines += [
        f"| {i} | {result.starts[i]} | {' '.join(map(str, codes))} |"
        for i, codes in result.exits.items()
    ]
    lines += ["", "| trials | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(result.states.items())]
    lines += [f"| FAIL by {k} | {v} |" for k, v in sorted(result.fails.items())]
    lines += ["", "| invariant | holds | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'yes' if c.ok else 'NO'} | {c.detail} |" for c in result.checks]
    lines.append(f"\n{result.seconds:.0f} s in all")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="Fault window (default 20)")
    parser.add_argument("--grace", type=float, default=15.0, help="Minutes to finish after it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mean-gap", type=float, default=40.0, help="Mean s between faults")
    parser.add_argument(
        "--n-trials", type=int, default=None, help="The search target (default: 13 per minute)"
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work folder")
    args = parser.parse_args()
    cfg = SoakConfig(
        minutes=args.minutes,
        grace_minutes=args.grace,
        seed=args.seed,
        mean_gap_s=args.mean_gap,
        n_trials=args.n_trials or max(4, round(13 * args.minutes)),
    )
    folder = Path(tempfile.mkdtemp(prefix="dynamo-tune-soak-"))
    server = start_postgres()
    try:
        result = soak(cfg, server, folder)
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
    print(table(result))
    if result.ok and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"work folder kept: {folder}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
