"""The screening stage: its rules in the study file, its engine model, the screen study it
fills with real in-process virtual-time replays (resumed, killed and resumed), what it hands
the live study, and how its ranking is compared with the live one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from fakes import BASE_STUDY, write_study
from optuna.trial import TrialState
from study_helpers import sigkill_when

from dynamo_tune.cli.main import main
from dynamo_tune.study.confirmation.agreement import (
    LOW_RHO,
    MIN_PAIRS,
    ScreenAgreement,
    agreement,
    spearman,
)
from dynamo_tune.study.confirmation.verdict_text import screen_line
from dynamo_tune.study.run.events import ScreenDone, ScreenProgress, ScreenStarted
from dynamo_tune.study.run.screening import Screening
from dynamo_tune.study.run.services import build_services
from dynamo_tune.study.spec.checks import check_spec
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.spec.schema import ScreenEngineSpec, StudySpec
from dynamo_tune.study.spec.screening import screen_engine, screen_scope
from dynamo_tune.study.spec.space import SearchSpace
from dynamo_tune.study.store.opening import StudyHandle, open_for_run
from dynamo_tune.study.store.screen_study import (
    MIN_DISTANCE,
    distance,
    enqueue_screened,
    screen_study_name,
)
from dynamo_tune.study.trial.record import TrialRecord, enqueue, records

os.environ.setdefault("DYN_LOG", "warn")  # the replay's router logs every decision at INFO
optuna.logging.set_verbosity(optuna.logging.ERROR)

TESTS = Path(__file__).resolve().parent
SESSION_ID = "hints.session_id"

WORKLOAD: dict[str, Any] = {
    "kind": "agentic",
    "sessions": 12,
    "turns": 3,
    "system_prompt_tokens": 64,
    "session_context_tokens": 192,
    "appended_tokens": 32,
    "output_tokens": 16,
    "concurrency": 4,
}
SPACE: dict[str, Any] = {
    "router.mode": {"type": "categorical", "choices": ["kv", "round-robin"]},
    "router.overlap_score_credit": {"type": "float", "low": 0.0, "high": 2.0},
    "router.temperature": {"type": "float", "low": 0.0, "high": 1.0},
    SESSION_ID: {"type": "categorical", "choices": [True, False]},
}
ENGINE: dict[str, Any] = {"workers": 8, "block_size": 32, "num_gpu_blocks": 1000}


def screened_study(folder: Path, trials: int, top: int, repeats: int = 1, **more: Any) -> Path:
    """A local-deployment study file with a screen, a round-robin baseline and the agentic
    preset; `more`: further `write_study` changes."""
    return write_study(
        folder,
        {
            "study.screen": {"trials": trials, "top": top, "repeats": repeats},
            "study.enqueue": ["agentic"],
            "deployment": {
                "kind": "local",
                "workers": 4,
                "router": {"mode": "kv"},
                "mocker": {"block_size": 16, "num_gpu_blocks": 256, "speedup_ratio": 7.5},
            },
            "workload": WORKLOAD,
            "search_space": SPACE,
            **more,
        },
    )


def spec_of(folder: Path, changes: dict[str, Any]) -> StudySpec:
    """The schema-valid StudySpec of `write_study(folder, changes)` (cross-section rules not
    applied: `check_spec` is what is tested)."""
    path = write_study(folder, changes, name="unchecked.yaml")
    return StudySpec.model_validate(yaml.safe_load(path.read_text()))


@contextmanager
def opened(path: Path) -> Iterator[StudyHandle]:
    handle = open_for_run(load_spec(path))
    try:
        yield handle
    finally:
        if isinstance(handle.storage, optuna.storages.RDBStorage):
            handle.storage.engine.dispose()


def run_screening(handle: StudyHandle) -> tuple[list[int] | None, list[object]]:
    events: list[object] = []
    enqueued = Screening(handle, build_services(handle).workload_for, events.append).run(
        handle.study
    )
    return enqueued, events


def screen_of(handle: StudyHandle) -> optuna.Study:
    name = screen_study_name(handle.loaded.spec.study.name)
    return optuna.load_study(study_name=name, storage=handle.storage)


def states(study: optuna.Study) -> list[TrialState]:
    return [t.state for t in study.get_trials(deepcopy=False)]


def live_config(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What a live trial measures: its params, or for a queued one its fixed params."""
    if trial.params:
        return dict(trial.params)
    fixed: dict[str, Any] = trial.system_attrs.get("fixed_params", {})
    return dict(fixed)


def pick(candidates: list[tuple[int, dict[str, Any]]], top: int, space: SearchSpace) -> list[int]:
    """The documented choice: best first, skipping one within MIN_DISTANCE of a chosen one,
    then the next best fill up to `top`."""
    chosen: list[tuple[int, dict[str, Any]]] = []
    for number, params in candidates:
        if len(chosen) >= top:
            break
        if all(distance(params, other, space) >= MIN_DISTANCE for _, other in chosen):
            chosen.append((number, params))
    for number, params in candidates:
        if len(chosen) >= top:
            break
        if number not in [n for n, _ in chosen]:
            chosen.append((number, params))
    return [n for n, _ in chosen]


# --- 1. validation -----------------------------------------------------------------------


SCREEN = {"trials": 20, "top": 3, "repeats": 1}
EXTERNAL = {"kind": "external", "frontend_url": "http://127.0.0.1:8000", "model": "m"}
COMMAND = {
    "kind": "command",
    "frontend_url": "http://127.0.0.1:8000",
    "model": "m",
    "ready_url": "http://127.0.0.1:8000/health",
    "apply": ["true", "{router_flags}"],
}
WORKLOAD_SPACE = {"workload.concurrency": {"type": "int", "low": 2, "high": 8}}


@pytest.mark.parametrize(
    ("changes", "where", "words"),
    [
        (
            {"workload": {"kind": "command", "argv": ["aiperf", "{frontend_url}"]}},
            "study.screen: ",
            ["command"],
        ),
        (
            {"deployment": COMMAND},
            "study.screen.engine: ",
            ["required with deployment kind command"],
        ),
        (
            {"deployment": EXTERNAL, "search_space": WORKLOAD_SPACE, "study.baseline": None},
            "study.screen.engine: ",
            ["required with deployment kind external"],
        ),
        (
            {"study.screen": {**SCREEN, "engine": ENGINE}},
            "study.screen.engine: ",
            ["local stack", "remove"],
        ),
        (
            {
                "objective": {
                    "directions": [
                        {"maximize": "kv_efficiency"},
                        {"minimize": "ttft_p95_seconds"},
                    ]
                }
            },
            "study.screen: ",
            ["objective.directions"],
        ),
        (
            {"search_space/router.mode/choices": ["kv", "round-robin", "random"]},
            "search_space.router.mode: ",
            ["not random"],
        ),
        ({"study.screen": {**SCREEN, "top": 21}}, "study.screen.top: ", ["21", "20"]),
        (
            {
                "search_space": {SESSION_ID: {"type": "categorical", "choices": [True, False]}},
                "study.baseline": None,
            },
            "study.screen: ",
            ["none of the searched knobs", SESSION_ID],
        ),
    ],
    ids=["command-workload", "command-no-engine", "external-no-engine", "local-engine",
         "pareto", "random-mode", "top>trials", "only-live-only"],
)  # fmt: skip
def test_check_spec_locates_every_screen_problem(
    tmp_path: Path, changes: dict[str, Any], where: str, words: list[str]
) -> None:
    spec = spec_of(tmp_path, {"study.screen": SCREEN, **changes})
    problems = [p for p in check_spec(spec) if p.startswith(where)]
    assert len(problems) == 1, check_spec(spec)
    for word in words:
        assert word in problems[0]
    # without the screen the same file has no such problem
    unscreened = spec_of(tmp_path, {**changes, "study.screen": None})
    assert not [p for p in check_spec(unscreened) if p.startswith(where)]


def test_external_with_an_engine_and_a_valid_local_study_have_no_problem(tmp_path: Path) -> None:
    external = {
        "deployment": EXTERNAL,
        "search_space": WORKLOAD_SPACE,
        "study.baseline": None,
        "study.screen": {**SCREEN, "engine": ENGINE},
    }
    assert check_spec(spec_of(tmp_path, external)) == []
    assert check_spec(spec_of(tmp_path, {"study.screen": SCREEN})) == []
    assert check_spec(load_spec(screened_study(tmp_path, trials=10, top=3)).spec) == []


def test_validate_exits_2_with_the_located_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_study(tmp_path, {"study.screen": {"trials": 2, "top": 5}}, name="bad.yaml")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "study.screen.top: 5 is more than the 2 screened trials" in err
    good = screened_study(tmp_path, trials=10, top=3)
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "screen: 10 configurations x 1 virtual-time replays, top 3 measured live" in out
    assert f"live-only: {SESSION_ID}" in out


def test_screen_scope_splits_replayed_and_live_only_knobs(tmp_path: Path) -> None:
    space = {
        SESSION_ID: {"type": "categorical", "choices": [True, False]},
        "router.overlap_score_credit": {"type": "float", "low": 0.0, "high": 2.0},
        "router.session_affinity_ttl_secs": {"type": "int", "low": 10, "high": 600},
        "router.mode": {"type": "categorical", "choices": ["kv", "round-robin"]},
        "router.session_affinity_mode": {"type": "categorical", "choices": ["hard", "soft"]},
        "router.temperature": {"type": "float", "low": 0.0, "high": 1.0},
        "workload.concurrency": {"type": "int", "low": 2, "high": 8},
    }
    spec = spec_of(tmp_path, {"study.screen": SCREEN, "search_space": space})
    scope = screen_scope(spec)
    assert scope.screened == (
        "router.overlap_score_credit",
        "router.mode",
        "router.temperature",
        "workload.concurrency",
    )
    assert scope.live_only == (
        SESSION_ID,
        "router.session_affinity_ttl_secs",
        "router.session_affinity_mode",
    )


# --- 2. the engine model ------------------------------------------------------------------


def test_screen_engine_of_a_local_stack_is_its_own_mocker(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        {
            "study.screen": SCREEN,
            "deployment": {
                "kind": "local",
                "workers": 3,
                "mocker": {
                    "block_size": 32,
                    "num_gpu_blocks": 777,
                    "speedup_ratio": 4.5,
                    "max_num_seqs": 12,
                },
            },
        },
    )
    engine = screen_engine(spec)
    assert (engine.workers, engine.block_size, engine.num_gpu_blocks) == (3, 32, 777)
    assert engine.speedup_ratio == 4.5
    assert engine.args["max_num_seqs"] == 12
    assert "max_num_batched_tokens" not in engine.args
    # the router's block size, when set, is the deployment's block size
    spec = spec_of(
        tmp_path,
        {"study.screen": SCREEN, "deployment": {"kind": "local", "router": {"block_size": 64}}},
    )
    assert screen_engine(spec).block_size == 64


def test_screen_engine_of_an_external_deployment_is_the_given_one(tmp_path: Path) -> None:
    engine = {**ENGINE, "speedup_ratio": 2.0, "args": {"max_num_seqs": 4}}
    spec = spec_of(
        tmp_path,
        {
            "deployment": EXTERNAL,
            "search_space": WORKLOAD_SPACE,
            "study.baseline": None,
            "study.screen": {**SCREEN, "engine": engine},
        },
    )
    assert screen_engine(spec) == ScreenEngineSpec.model_validate(engine)
    no_engine = spec_of(
        tmp_path,
        {
            "deployment": EXTERNAL,
            "search_space": WORKLOAD_SPACE,
            "study.baseline": None,
            "study.screen": SCREEN,
        },
    )
    with pytest.raises(ValueError, match="external needs study.screen.engine"):
        screen_engine(no_engine)


# --- 3. a real screening stage --------------------------------------------------------------


@dataclass
class ScreenRun:
    n: int
    top: int
    spec: StudySpec
    enqueued: list[int] | None
    events: list[object]
    screen: list[optuna.trial.FrozenTrial]
    live_before: list[optuna.trial.FrozenTrial]
    live: list[optuna.trial.FrozenTrial]


@pytest.fixture(scope="module")
def screen_run(tmp_path_factory: pytest.TempPathFactory) -> ScreenRun:
    folder = tmp_path_factory.mktemp("screen")
    n, top = 16, 3
    path = screened_study(folder, trials=n, top=top, repeats=2)
    with opened(path) as handle:
        before = handle.study.get_trials()
        enqueued, events = run_screening(handle)
        return ScreenRun(
            n=n,
            top=top,
            spec=handle.loaded.spec,
            enqueued=enqueued,
            events=events,
            screen=screen_of(handle).get_trials(),
            live_before=before,
            live=handle.study.get_trials(),
        )


def test_the_screen_study_holds_its_target_of_finished_trials(screen_run: ScreenRun) -> None:
    screen = screen_run.screen
    assert [t.state for t in screen] == [TrialState.COMPLETE] * screen_run.n
    assert [t.number for t in screen] == list(range(screen_run.n))
    for t in screen:
        r = TrialRecord.from_frozen(t)
        assert r.repeats == 2 and len(r.repeat_values) == 2
        assert t.value == pytest.approx(sum(v or 0.0 for v in r.repeat_values) / 2)
        assert r.score == pytest.approx(t.value)
        assert r.feasible_attr is True and r.feasible
        assert r.number_of("simulated_seconds") is not None
        assert 0.0 <= (r.number_of("kv_efficiency") or -1.0) <= 1.0


def test_baseline_and_preset_are_screened_first(screen_run: ScreenRun) -> None:
    first, second = (TrialRecord.from_frozen(t) for t in screen_run.screen[:2])
    assert first.baseline and first.preset is None
    assert first.params == {"router.mode": "round-robin"}
    assert second.preset == "agentic" and not second.baseline
    assert second.params["router.mode"] == "kv"
    assert second.params["router.overlap_score_credit"] == 2.0
    # the preset's settings outside the search space ride along as overrides
    assert second.overrides == {
        "router.prefill_load_scale": 4.0,
        "router.decode_active_request_weight": 64.0,
    }
    assert second.router_config["prefill_load_scale"] == 4.0
    assert second.router_config["decode_active_request_weight"] == 64.0
    later = [TrialRecord.from_frozen(t) for t in screen_run.screen[2:]]
    assert not any(r.baseline or r.preset for r in later)


def test_live_only_knobs_are_never_screened_and_router_config_is_replayed(
    screen_run: ScreenRun,
) -> None:
    for t in screen_run.screen:
        r = TrialRecord.from_frozen(t)
        assert SESSION_ID not in t.params
        assert set(t.distributions) <= {"router.mode", "router.overlap_score_credit",
                                        "router.temperature"}  # fmt: skip
        assert r.router_config["mode"] == t.params["router.mode"]
        if t.params["router.mode"] == "kv":
            for knob in ("overlap_score_credit", "temperature"):
                assert r.router_config[knob] == pytest.approx(t.params[f"router.{knob}"])
        else:  # kv-only knobs are neither sampled nor applied under round-robin
            assert "router.temperature" not in t.params
            assert "temperature" not in r.router_config
    sampled = screen_run.screen[2:]
    assert {t.params["router.mode"] for t in sampled} == {"kv", "round-robin"}


def test_the_best_distinct_screened_configs_go_live_once(screen_run: ScreenRun) -> None:
    before, live, top = screen_run.live_before, screen_run.live, screen_run.top
    # the live study held only the baseline and the preset, both still queued
    assert [TrialRecord.from_frozen(t).baseline for t in before] == [True, False]
    assert [TrialRecord.from_frozen(t).preset for t in before] == [None, "agentic"]
    assert live[:2] == before
    assert all(t.state == TrialState.WAITING for t in live)
    screened = [t for t in live if TrialRecord.from_frozen(t).screened is not None]
    assert [t.number for t in screened] == list(range(2, 2 + top))
    assert screen_run.enqueued == [TrialRecord.from_frozen(t).screened for t in screened]
    by_number = {t.number: t for t in screen_run.screen}
    baseline_session = live_config(before[0])[SESSION_ID]
    space = SearchSpace(screen_run.spec.search_space)
    for t in screened:
        source = by_number[TrialRecord.from_frozen(t).screened or -1]
        assert not TrialRecord.from_frozen(source).baseline
        assert TrialRecord.from_frozen(source).preset is None
        assert live_config(t) == {**source.params, SESSION_ID: baseline_session}
    # the documented choice, recomputed from the stored screen scores: best first, distinct
    # configurations, near-twins (within MIN_DISTANCE) only when too few lie far apart.
    ranked = sorted(
        (t for t in screen_run.screen[2:] if t.value is not None),
        key=lambda t: (-(t.value or 0.0), t.number),
    )
    held = [live_config(t) for t in before]  # the queued baseline and preset
    candidates: list[tuple[int, dict[str, Any]]] = []
    for t in ranked:
        params = space.active({**t.params, SESSION_ID: baseline_session})
        if params not in [p for _, p in candidates] and params not in held:
            candidates.append((t.number, params))
    assert len(candidates) >= top
    assert screen_run.enqueued == pick(candidates, top, space)
    best_value = by_number[screen_run.enqueued[0]].value
    assert best_value == max(t.value or 0.0 for t in screen_run.screen[2:])


def test_the_best_screened_config_also_goes_live_with_the_other_live_only_values(
    screen_run: ScreenRun,
) -> None:
    assert screen_run.enqueued
    best = screen_run.enqueued[0]
    rest = screen_run.live[2 + screen_run.top :]
    baseline_session = live_config(screen_run.live_before[0])[SESSION_ID]
    source = next(t for t in screen_run.screen if t.number == best)
    assert [TrialRecord.from_frozen(t).preset for t in rest] == [
        f"screen #{best} with {SESSION_ID}={not baseline_session}"
    ]
    assert live_config(rest[0]) == {**source.params, SESSION_ID: not baseline_session}


def test_the_screening_reports_start_progress_and_done(screen_run: ScreenRun) -> None:
    started = [e for e in screen_run.events if isinstance(e, ScreenStarted)]
    progress = [e for e in screen_run.events if isinstance(e, ScreenProgress)]
    done = [e for e in screen_run.events if isinstance(e, ScreenDone)]
    assert len(started) == 1 and len(done) == 1 and progress
    assert screen_run.events[0] is started[0] and screen_run.events[-1] is done[0]
    assert (started[0].done, started[0].target, started[0].created) == (0, screen_run.n, True)
    assert started[0].screened == ("router.mode", "router.overlap_score_credit",
                                   "router.temperature")  # fmt: skip
    assert started[0].live_only[0].startswith(f"{SESSION_ID}=")
    assert progress[-1].done == screen_run.n
    best = max(screen_run.screen, key=lambda t: (t.value or 0.0, -t.number))
    assert progress[-1].best == (best.number, best.value)
    assert done[0].done == screen_run.n and done[0].ran == screen_run.n
    assert done[0].enqueued == tuple(screen_run.enqueued or ())
    assert done[0].best[0][:2] == (best.number, best.value)


# --- 4. resume and kill ---------------------------------------------------------------------


def screened_waiting(live: optuna.Study) -> list[int]:
    return [
        r.screened
        for r in records(live, TrialState.WAITING)
        if r.screened is not None
    ]  # fmt: skip


def test_a_bigger_target_resumes_the_screen_and_enqueues_nothing_twice(tmp_path: Path) -> None:
    path = screened_study(tmp_path, trials=6, top=2)
    with opened(path) as handle:
        first, _ = run_screening(handle)
        kept = [(t.number, t.params, t.value) for t in screen_of(handle).get_trials()]
        live_count = len(handle.study.get_trials())
    assert first and len(kept) == 6
    screened_study(tmp_path, trials=10, top=2)  # the same file, a bigger screen
    with opened(path) as handle:
        again, events = run_screening(handle)
        screen = screen_of(handle)
        assert states(screen) == [TrialState.COMPLETE] * 10
        assert [(t.number, t.params, t.value) for t in screen.get_trials()][:6] == kept
        assert again is None
        assert screened_waiting(handle.study) == first
        assert len(handle.study.get_trials()) == live_count
        (started,) = [e for e in events if isinstance(e, ScreenStarted)]
        assert (started.done, started.target, started.created) == (6, 10, False)
        (done,) = [e for e in events if isinstance(e, ScreenDone)]
        assert done.enqueued is None and done.ran == 4
        # nothing left to screen: a third run replays nothing and queues nothing
        third, events = run_screening(handle)
        assert third is None and len(screen_of(handle).get_trials()) == 10
        (done,) = [e for e in events if isinstance(e, ScreenDone)]
        assert done.ran == 0


CHILD = """
import os, sys, time
os.environ.setdefault("DYN_LOG", "warn")
sys.path.insert(0, {tests!r})
from pathlib import Path
from dynamo_tune.study.run.screening import Screening
from dynamo_tune.study.run.services import build_services
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.store.opening import open_for_run

real = Screening.objective
def slow(self, trial):  # slow enough to be killed between two stored trials
    time.sleep(0.3)
    return real(self, trial)
Screening.objective = slow
handle = open_for_run(load_spec(Path({path!r})))
Screening(handle, build_services(handle).workload_for, lambda event: None).run(handle.study)
print("finished", flush=True)
"""


def test_a_killed_screening_resumes_to_its_target_and_enqueues_once(tmp_path: Path) -> None:
    n, top = 12, 2
    path = screened_study(tmp_path, trials=n, top=top)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD).format(tests=str(TESTS), path=str(path)))
    storage = f"sqlite:///{tmp_path / 'fake.db'}"

    def complete() -> int:
        try:
            screen = optuna.load_study(study_name="fake.screen", storage=storage)
        except KeyError:
            return 0
        return len(screen.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        sigkill_when(proc, lambda: complete() >= 3, timeout_s=60)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL  # killed by the test, not ended on its own
    killed_at = complete()
    assert 3 <= killed_at < n
    with opened(path) as handle:
        screen = screen_of(handle)
        assert all(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states(screen))
        assert screened_waiting(handle.study) == []  # killed before it queued anything
        enqueued, events = run_screening(handle)
        screen = screen_of(handle)
        assert states(screen) == [TrialState.COMPLETE] * n
        assert enqueued is not None and len(enqueued) == top
        assert screened_waiting(handle.study) == enqueued
        (started,) = [e for e in events if isinstance(e, ScreenStarted)]
        assert (started.done, started.created) == (killed_at, False)
        # the fixed configurations the killed run stored are not screened again
        fixed = [TrialRecord.from_frozen(t) for t in screen.get_trials()]
        assert sum(r.baseline for r in fixed) == 1
        assert [r.preset for r in fixed].count("agentic") == 1
        assert run_screening(handle)[0] is None
        assert screened_waiting(handle.study) == enqueued


# --- 5. distance and the choice of what goes live ---------------------------------------------


def hand_space() -> SearchSpace:
    """SPACE plus a log-scale knob."""
    scale = {"type": "float", "low": 0.25, "high": 4.0, "log": True}
    data = {**BASE_STUDY, "search_space": {**SPACE, "router.prefill_load_scale": scale}}
    return SearchSpace(StudySpec.model_validate(data).search_space)


def kv(credit: float, temperature: float = 0.0, scale: float = 1.0) -> dict[str, Any]:
    return {
        "router.mode": "kv",
        "router.overlap_score_credit": credit,
        "router.temperature": temperature,
        "router.prefill_load_scale": scale,
    }


def test_distance_is_the_largest_scaled_gap() -> None:
    space = hand_space()
    assert distance(kv(1.0), kv(1.0), space) == 0.0
    assert distance(kv(1.0), kv(1.1), space) == pytest.approx(0.05)  # 0.1 over [0, 2]
    assert distance(kv(1.0, 0.2), kv(1.1, 0.5), space) == pytest.approx(0.3)  # the larger gap
    # a log range is measured in logs: 0.5 -> 2.0 is ln 4 over ln 16
    assert distance(kv(1.0, scale=0.5), kv(1.0, scale=2.0), space) == pytest.approx(0.5)
    rr = {"router.mode": "round-robin", "router.prefill_load_scale": 1.0}
    assert distance(kv(1.0), rr, space) == 1.0  # a differing category / a knob only one has
    assert distance(rr, kv(1.0), space) == 1.0
    assert distance({**kv(1.0), SESSION_ID: True}, {**kv(1.0), SESSION_ID: False}, space) == 1.0


def add(
    study: optuna.Study, params: dict[str, Any], value: float, space: SearchSpace, **attrs: Any
) -> None:
    dists = space.distributions()
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={k: dists[k] for k in params},
            value=value,
            user_attrs=attrs,
        )
    )


def hand_screen(space: SearchSpace) -> optuna.Study:
    screen = optuna.create_study(direction="maximize")
    add(screen, {"router.mode": "round-robin", "router.prefill_load_scale": 1.0}, 0.1, space,
        baseline=True)  # fmt: skip
    add(screen, kv(2.0, scale=4.0), 0.99, space, preset="agentic")  # best, but fixed
    add(screen, kv(1.00), 0.90, space)  # 2: the best sampled one
    add(screen, kv(1.02), 0.89, space)  # 3: its near-twin (0.01 apart)
    add(screen, kv(0.20), 0.50, space)  # 4: far from 2
    add(screen, kv(1.90), 0.97, space, violations=["ttft_p95_seconds 3.1 > 2"])  # 5: infeasible
    add(screen, kv(1.00), 0.40, space)  # 6: the same configuration as 2, scored worse
    return screen


LIVE_ONLY = {SESSION_ID: True}


def test_near_twins_give_way_to_a_farther_config_and_fill_up_when_needed() -> None:
    space = hand_space()
    screen = hand_screen(space)
    live = optuna.create_study(direction="maximize")
    assert enqueue_screened(live, screen, 2, LIVE_ONLY, space) == [2, 4]
    queued = live.get_trials()
    assert [live_config(t) for t in queued] == [
        {**kv(1.00), **LIVE_ONLY},
        {**kv(0.20), **LIVE_ONLY},
    ]
    assert [t.user_attrs for t in queued] == [{"screened": 2}, {"screened": 4}]
    assert enqueue_screened(live, screen, 2, LIVE_ONLY, space) is None  # once per study
    assert len(live.get_trials()) == 2
    # too few far apart: the near-twin fills up; never a fixed, infeasible or repeated one
    live = optuna.create_study(direction="maximize")
    assert enqueue_screened(live, screen, 3, LIVE_ONLY, space) == [2, 4, 3]
    live = optuna.create_study(direction="maximize")
    assert enqueue_screened(live, screen, 10, LIVE_ONLY, space) == [2, 4, 3]


def test_a_config_the_live_study_measured_is_skipped() -> None:
    space = hand_space()
    screen = hand_screen(space)
    live = optuna.create_study(direction="maximize")
    add(live, {**kv(1.00), **LIVE_ONLY}, 0.5, space)  # measured live already
    assert enqueue_screened(live, screen, 2, LIVE_ONLY, space) == [3, 4]
    # with another value of the live-only knob it is a different configuration
    live = optuna.create_study(direction="maximize")
    add(live, {**kv(1.00), SESSION_ID: False}, 0.5, space)
    assert enqueue_screened(live, screen, 2, LIVE_ONLY, space) == [2, 4]


def test_a_config_the_live_study_already_queued_is_skipped() -> None:
    space = hand_space()
    screen = hand_screen(space)
    live = optuna.create_study(direction="maximize")
    enqueue(live, {**kv(1.00), **LIVE_ONLY}, {"baseline": True})  # queued, not yet measured
    assert enqueue_screened(live, screen, 2, LIVE_ONLY, space) == [3, 4]


# --- 6. rank agreement ------------------------------------------------------------------------


def ranks(xs: list[float]) -> list[float]:
    """Average ranks (1-based) for ties."""
    order = sorted(xs)
    return [order.index(x) + (order.count(x) + 1) / 2 for x in xs]


def pearson(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    return float(cov / (vx * vy) ** 0.5)


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    xs, ys = [1.0, 2.0, 2.0, 3.0, 5.0], [2.0, 1.0, 4.0, 4.0, 3.0]
    assert ranks(xs) == [1.0, 2.5, 2.5, 4.0, 5.0] and ranks(ys) == [2.0, 1.0, 4.5, 4.5, 3.0]
    assert spearman(xs, ys) == pytest.approx(pearson(ranks(xs), ranks(ys)))
    # centred ranks -2 -.5 -.5 1 2 and -1 -2 1.5 1.5 0: 3.75 / sqrt(9.5 * 9.5)
    assert spearman(xs, ys) == pytest.approx(3.75 / 9.5)
    assert spearman([1.0], [2.0]) is None
    assert spearman([], []) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def record(number: int, value: float | None, **attrs: Any) -> TrialRecord:
    trial = optuna.trial.create_trial(
        value=value,
        state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
        user_attrs=attrs,
    )
    trial.number = number
    return TrialRecord.from_frozen(trial)


SCREEN_RECORDS = [
    record(0, 0.30, baseline=True),
    record(1, 0.35, preset="agentic"),
    record(5, 0.20),
    record(6, 0.95),  # never measured live
    record(7, 0.90),
]


def test_agreement_pairs_baseline_preset_and_screened_trials() -> None:
    live = [
        record(0, 0.50, baseline=True),
        record(1, 0.60, preset="agentic"),
        record(2, 0.70, screened=5),
        record(3, 0.40, screened=7),
        record(4, 0.65, preset="enqueue[1]"),  # no screen trial scored it
        record(5, None, screened=6),  # FAIL: not a pair
        record(6, 0.45, screened=6, retry_of=5),  # the retry of a FAIL trial is paired
        record(7, 0.90, stage="confirm", confirms=2),
        record(8, 0.80, stage="confirm", confirms=2),
        record(9, 0.55, stage="confirm", confirms=0),
    ]
    got = agreement(live, SCREEN_RECORDS)
    pairs = {(p.live_trial, p.screen_trial): p for p in got.pairs}
    assert sorted(pairs) == [(0, 0), (1, 1), (2, 5), (3, 7), (6, 6)]
    assert pairs[(2, 5)].live == pytest.approx((0.70 + 0.90 + 0.80) / 3)
    assert pairs[(2, 5)].live_n == 3
    assert pairs[(0, 0)].live == pytest.approx((0.50 + 0.55) / 2)
    assert pairs[(3, 7)].live == 0.40 and pairs[(3, 7)].live_n == 1
    assert pairs[(3, 7)].screen == 0.90
    assert pairs[(0, 0)].label == "#0 baseline" and pairs[(1, 1)].label == "#1 agentic"
    assert pairs[(2, 5)].label == "#2 screened"
    # screen 0.30 0.35 0.20 0.90 0.95 -> ranks 2 3 1 4 5;
    # live 0.525 0.60 0.80 0.40 0.45 -> ranks 3 4 5 1 2; d = -1 -1 -4 3 3
    assert got.n == 5
    assert got.rho == pytest.approx(1 - 6 * (1 + 1 + 16 + 9 + 9) / (5 * 24))
    assert got.rho is not None and got.rho < LOW_RHO and not got.predicts


def test_agreement_predicts_only_with_enough_pairs_and_a_high_rho() -> None:
    live = [
        record(0, 0.50, baseline=True),
        record(1, 0.60, preset="agentic"),
        record(2, 0.30, screened=5),
        record(3, 0.90, screened=7),
    ]
    got = agreement(live, SCREEN_RECORDS)
    assert got.n == 4 and got.rho == pytest.approx(1.0)
    assert got.predicts and MIN_PAIRS == 4
    three = agreement(live[:3], SCREEN_RECORDS)
    assert three.n == 3 and three.rho == pytest.approx(1.0)
    assert not three.predicts
    assert agreement(live[:1], SCREEN_RECORDS).rho is None
    assert agreement([], SCREEN_RECORDS) == ScreenAgreement(rho=None, n=0, pairs=[])


# --- 7. the verdict's screen line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rho", "n", "why"),
    [(0.2, 6, "rho < 0.5"), (0.49, 4, "rho < 0.5"), (0.9, 3, "fewer than 4 pairs"),
     (None, 1, "fewer than 4 pairs"), (-0.8, 4, "rho < 0.5")],
)  # fmt: skip
def test_screen_line_says_when_the_screen_did_not_predict(
    rho: float | None, n: int, why: str
) -> None:
    line = screen_line(ScreenAgreement(rho=rho, n=n))
    shown = "undefined" if rho is None else f"{rho:.2f}"
    assert f"Spearman's rho {shown} over {n} configurations" in line
    assert f"({why})" in line
    assert "did not predict this deployment's live ranking" in line
    assert "predicted the live ranking here" not in line


@pytest.mark.parametrize(("rho", "n"), [(0.5, 4), (0.93, 9)])
def test_screen_line_says_when_the_screen_predicted(rho: float, n: int) -> None:
    line = screen_line(ScreenAgreement(rho=rho, n=n))
    assert f"Spearman's rho {rho:.2f} over {n} configurations" in line
    assert "the screen predicted the live ranking here" in line
    assert "did not predict" not in line


def test_an_engine_model_dynamo_refuses_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = {**ENGINE, "args": {"no_such_field": 1}}
    overrides = {
        "deployment": EXTERNAL,
        "search_space": WORKLOAD_SPACE,
        "study.baseline": None,
        "study.screen": {**SCREEN, "engine": engine},
    }
    path = write_study(tmp_path, overrides, name="engine.yaml")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dynamo-tune: error: study.screen.engine: Dynamo's replay refuses")
    assert "no_such_field" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine.yaml"]  # nothing stored
