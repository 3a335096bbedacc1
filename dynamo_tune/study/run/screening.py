"""The screening stage: search the study's space in Dynamo's virtual-time replay, then hand the
best configurations to the live search. Does I/O: the study storage, in-process replays.

Each screen trial lays the sampled screened knobs and the baseline's live-only knobs over the
study's fixed configuration (`spec.screening`), replays the candidate's request plan
`screen.repeats` times on the engine model (`dynamo_tune.screen.replay`; kv replays break ties
at random, so each replay differs a little) and stores the mean of each core metric, the mean
score (the study's own `to_optimization_score` weights and targets), the spread and the
study's constraints judged on the means. The screen continues to `screen.trials` COMPLETE
trials across runs; then `enqueue_screened` queues the best `screen.top` in the live study,
once, and the best one again with each other value of each categorical live-only knob (the
screen cannot rank those). Nothing here touches the deployment.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import optuna
from optuna.trial import TrialState

from dynamo_tune.errors import SpecError
from dynamo_tune.screen.kv_router_args import REPLAY_ROUTER_MODES
from dynamo_tune.screen.replay import Replayer, ReplayResult, check_engine, engine_args
from dynamo_tune.study.run.events import Reporter, ScreenDone, ScreenProgress, ScreenStarted
from dynamo_tune.study.spec.presets import router_defaults_if_installed
from dynamo_tune.study.spec.schema import CategoricalParam, ScreenSpec, StudySpec
from dynamo_tune.study.spec.screening import screen_engine, screen_scope
from dynamo_tune.study.spec.space import Candidate, SearchSpace, fixed_values, make_candidate
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.store.samplers import screen_sampler
from dynamo_tune.study.store.screen_study import (
    FINISHED,
    enqueue_screened,
    missing_fixed,
    open_screen_study,
    ranked,
    screened_count,
)
from dynamo_tune.study.store.storage import storage_errors
from dynamo_tune.study.trial.attr_keys import CORE_KEYS, WORKLOAD_KEYS, TrialAttr
from dynamo_tune.study.trial.outcome import judge_constraints, score_of
from dynamo_tune.study.trial.record import TrialRecord, enqueue
from dynamo_tune.study.trial.runner import runner_identity
from dynamo_tune.workload.base import Workload
from dynamo_tune.workload.workloads import PlannedWorkload

SLACK = 10
"""Trials a run may add beyond the target's remainder, for pruned ones (a preset in a mode the
replay cannot simulate); the stop callback ends the screen at the target."""
PROGRESS_EVERY_S = 2.0
"""Seconds between two screen progress events (the last trial always reports)."""


def live_only_values(spec: StudySpec) -> dict[str, Any]:
    """The baseline's value of every live-only knob (the study's fixed value without a
    baseline; Dynamo's default for an unset router knob)."""
    scope = screen_scope(spec)
    space = SearchSpace(spec.search_space)
    params, _ = fixed_values(
        space,
        dict(spec.study.baseline or {}),
        spec.deployment.router,
        spec.workload,
        router_defaults_if_installed(),
    )
    return {k: v for k, v in params.items() if k in scope.live_only}


def checked_engine(spec: StudySpec) -> dict[str, Any]:
    """The replay's engine arguments of `spec`'s screen, accepted by Dynamo (else a located
    `SpecError` with Dynamo's own message)."""
    engine = screen_engine(spec)
    args = engine_args(
        block_size=engine.block_size,
        num_gpu_blocks=engine.num_gpu_blocks,
        speedup_ratio=engine.speedup_ratio,
        **engine.args,
    )
    try:
        check_engine(args)
    except ValueError as exc:
        where = (
            "study.screen.engine"
            if spec.study.screen and spec.study.screen.engine
            else "deployment.mocker"
        )
        raise SpecError(f"{where}: Dynamo's replay refuses the engine model: {exc}") from None
    return args


class Screening:
    """One run's screening stage (see the module)."""

    def __init__(
        self,
        handle: StudyHandle,
        workload_for: Callable[[Candidate], Workload],
        report: Reporter,
    ) -> None:
        spec = handle.loaded.spec
        if spec.study.screen is None:
            raise ValueError("the study file has no study.screen")
        self.handle = handle
        self.spec = spec
        self.screen: ScreenSpec = spec.study.screen
        self.scope = screen_scope(spec)
        self.space = SearchSpace({n: spec.search_space[n] for n in self.scope.screened})
        self.full_space = SearchSpace(spec.search_space)
        self.live_only = live_only_values(spec)
        self.engine = checked_engine(spec)
        self.workers = screen_engine(spec).workers
        self.replayer: Replayer | None = None
        self.workload_for = workload_for
        self.report = report
        self.best: tuple[int, float] | None = None
        self._last_report = 0.0
        self._started = 0.0
        self._ran = 0
        self._memo: dict[str, dict[str, Any]] = {}
        self.workload_keys = [
            k for k in WORKLOAD_KEYS if k in {c.metric for c in spec.objective.constraints}
        ]

    def replay(self, candidate: Candidate) -> list[ReplayResult]:
        """`screen.repeats` replays of `candidate` (its workload must be a planned one)."""
        workload = self.workload_for(candidate)
        if self.replayer is None:
            raise RuntimeError("Screening.replay runs inside Screening.run")
        if not isinstance(workload, PlannedWorkload):
            raise ValueError(f"workload {type(workload).__name__} cannot be replayed")
        return self.replayer.replay_many(
            workload.plan,
            self.screen.repeats,
            router=candidate.router,
            in_flight_limit=workload.settings.in_flight_limit,
            window=workload.settings.window,
            max_failure_ratio=workload.settings.max_failure_ratio,
        )

    def objective(self, trial: optuna.Trial) -> float:
        """One screen trial: replay, store the means, return the mean score."""
        trial.set_user_attr(TrialAttr.RUNNER, runner_identity())
        record = TrialRecord.from_trial(trial)
        values = self.space.suggest(trial)
        candidate = make_candidate(
            {**values, **self.live_only, **record.overrides},
            self.spec.deployment.router,
            self.spec.workload,
        )
        if candidate.router.mode not in REPLAY_ROUTER_MODES:
            reason = f"router mode {candidate.router.mode} cannot be replayed"
            trial.set_user_attr(TrialAttr.FAIL_REASON, reason)
            raise optuna.TrialPruned(reason)
        key = candidate.router.model_dump_json() + candidate.workload.model_dump_json()
        if key not in self._memo:  # a configuration proposed again is not replayed again
            self._memo[key] = self.means(self.replay(candidate))
        attrs = self._memo[key]
        trial.set_user_attr(
            TrialAttr.ROUTER_CONFIG, candidate.router.model_dump(mode="json", exclude_none=True)
        )
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return float(attrs[TrialAttr.SCORE])

    def means(self, results: list[ReplayResult]) -> dict[str, Any]:
        """Mean metrics, mean score, spread and constraints of one configuration's replays."""
        objective = self.spec.objective
        scores = [score_of(r.metrics, objective) for r in results]
        finite = [s if s is not None else 0.0 for s in scores]
        attrs: dict[str, Any] = {}
        for key in CORE_KEYS:
            got = [getattr(r.metrics, key) for r in results]
            numbers = [float(v) for v in got if isinstance(v, int | float)]
            if numbers:
                attrs[key] = statistics.fmean(numbers)
        for key in self.workload_keys:  # only what a constraint reads: each attr costs a write
            got = [getattr(r.report, key, None) for r in results]
            numbers = [float(v) for v in got if isinstance(v, int | float) and v is not True]
            if numbers and len(numbers) == len(got):
                attrs[key] = statistics.fmean(numbers)
        attrs[TrialAttr.SCORE] = statistics.fmean(finite)
        attrs[TrialAttr.REPEATS] = len(results)
        attrs[TrialAttr.REPEAT_VALUES] = finite
        attrs[TrialAttr.VALUE_SPREAD] = max(finite) - min(finite)
        attrs[TrialAttr.SIMULATED_SECONDS] = statistics.fmean(r.simulated_s for r in results)
        constraints, violations = judge_constraints(
            objective.constraints,
            lambda metric: float(v) if isinstance(v := attrs.get(metric), int | float) else None,
        )
        if any(s is None for s in scores):
            violations.insert(0, "metrics incomplete in a replay")
        attrs[TrialAttr.CONSTRAINTS] = constraints
        attrs[TrialAttr.VIOLATIONS] = violations
        attrs[TrialAttr.FEASIBLE] = not violations
        return attrs

    def variants(self) -> dict[str, list[Any]]:
        """{categorical live-only knob: its values other than the baseline's}."""
        out: dict[str, list[Any]] = {}
        for name in self.scope.live_only:
            param = self.spec.search_space[name]
            if isinstance(param, CategoricalParam) and name in self.live_only:
                out[name] = [c for c in param.choices if c != self.live_only[name]]
        return out

    def _after_trial(self, trial: optuna.trial.FrozenTrial, done: int) -> None:
        self._ran += 1
        value = trial.values[0] if trial.values is not None else None
        better = value is not None and (self.best is None or value > self.best[1])
        if value is not None and better and TrialRecord.from_frozen(trial).feasible:
            self.best = (trial.number, value)
        now = time.perf_counter()
        if now - self._last_report >= PROGRESS_EVERY_S or done >= self.screen.trials:
            self._last_report = now
            rate = self._ran / (now - self._started) if now > self._started else 0.0
            self.report(ScreenProgress(done, self.screen.trials, self.best, rate))

    def _screen(self, stored: optuna.Study, done: int) -> None:
        """Sample and replay in memory; each finished trial is stored in one write
        (`add_trial`) on a writer thread, in order, while the next one replays."""
        mem = optuna.create_study(sampler=screen_sampler(self.spec), direction="maximize")
        mem.add_trials(stored.get_trials(deepcopy=False, states=FINISHED))  # same numbers
        for params, attrs in missing_fixed(stored, self.spec, self.space):
            enqueue(mem, params, attrs)
        budget = self.screen.trials - done + SLACK
        writer = ThreadPoolExecutor(1, thread_name_prefix="screen-store")  # in order, overlapped
        writes: list[Future[None]] = []
        try:
            while done < self.screen.trials and budget > 0:
                budget -= 1
                trial = mem.ask()
                try:
                    mem.tell(trial, self.objective(trial))
                except optuna.TrialPruned:
                    mem.tell(trial, state=TrialState.PRUNED)
                frozen = mem.trials[trial.number]
                writes.append(writer.submit(stored.add_trial, frozen))
                if writes[0].done():
                    writes.pop(0).result()  # a storage error surfaces now
                done += frozen.state == TrialState.COMPLETE
                self._after_trial(frozen, done)
        finally:
            writer.shutdown(wait=True)  # every finished trial is stored, also on Ctrl-C
        with storage_errors(self.handle.target, "write"):
            for write in writes:
                write.result()

    def run(self, live: optuna.Study) -> list[int] | None:
        """Screen to `screen.trials` COMPLETE trials, then queue the top ones in `live`
        (None: queued by an earlier run)."""
        study, created = open_screen_study(self.handle)
        done = screened_count(study)
        self.report(
            ScreenStarted(
                name=study.study_name,
                done=done,
                target=self.screen.trials,
                repeats=self.screen.repeats,
                screened=self.scope.screened,
                live_only=tuple(f"{k}={v}" for k, v in self.live_only.items())
                or self.scope.live_only,
                created=created,
            )
        )
        best = ranked(study)
        if best and best[0].values:
            self.best = (best[0].number, best[0].values[0])
        self._started = time.perf_counter()
        if done < self.screen.trials:
            self.replayer = Replayer(self.engine, self.workers)
            try:
                self._screen(study, done)
            finally:
                self.replayer.close()
                self.replayer = None
        seconds = time.perf_counter() - self._started
        with storage_errors(self.handle.target, "write"):
            enqueued = enqueue_screened(
                live, study, self.screen.top, self.live_only, self.full_space, self.variants()
            )
        top = tuple((r.number, (r.values or (0.0,))[0], dict(r.params)) for r in ranked(study)[:5])
        self.report(
            ScreenDone(
                done=screened_count(study),
                target=self.screen.trials,
                ran=self._ran,
                seconds=seconds,
                best=top,
                enqueued=None if enqueued is None else tuple(enqueued),
                variants=tuple(
                    f"{k}={v}" for k, vs in self.variants().items() for v in vs if enqueued
                ),
            )
        )
        return enqueued
