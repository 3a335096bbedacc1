"""The sampler named in a study file, seeded. Pure (builds objects; imports optional packages).

`gp` needs `torch` and `scipy`, `qmc` needs `scipy`, `cmaes` needs `cmaes`: a missing one is a
`SpecError` naming the commands that install it (torch: its CPU build). Constraints reach the
samplers through `trial.set_constraint` where Optuna has it (5.x); on Optuna 4 they go through
`constraints_func`, reading the `constraints` user attr the objective stores.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from dynamo_tune.errors import SpecError
from dynamo_tune.study.spec.schema import FloatParam, ParamSpec, StudySpec
from dynamo_tune.study.spec.space import grid_values, paste_value
from dynamo_tune.study.trial.record import TrialRecord

NEEDS: dict[str, tuple[str, ...]] = {
    "gp": ("torch", "scipy"),
    "qmc": ("scipy",),
    "cmaes": ("cmaes",),
}
INDEX_URL: dict[str, str] = {"torch": "https://download.pytorch.org/whl/cpu"}
"""Packages installed from their own index: torch's CPU build (PyPI's is a multi-GB CUDA one)."""
HAS_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")
"""Optuna 5 has `trial.set_constraint`; Optuna 4 only `constraints_func` (the one feature test)."""
CONSTRAINT_AWARE = frozenset({"tpe", "nsga2", "gp"})


def sets_constraints(name: str) -> bool:
    """Whether trials give Optuna their constraints via `trial.set_constraint`.

    Only where the sampler uses them (others, e.g. CMA-ES, warn about ignored constraints);
    the values are in the `constraints` user attr either way.
    """
    return HAS_SET_CONSTRAINT and name in CONSTRAINT_AWARE


def install_commands(packages: Sequence[str]) -> str:
    """How to install `packages` with uv: one command for those PyPI's default build suits,
    one per package that needs its own index (`INDEX_URL`; uv's `UV_DEFAULT_INDEX` is its
    index-url option as a variable). Pure."""
    plain = [pkg for pkg in packages if pkg not in INDEX_URL]
    own = [pkg for pkg in packages if pkg in INDEX_URL]
    commands = [f"`uv pip install {' '.join(plain)}`"] if plain else []
    commands += [f"`UV_DEFAULT_INDEX={INDEX_URL[pkg]} uv pip install {pkg}`" for pkg in own]
    return " and ".join(commands)


def missing_packages(name: str) -> list[str]:
    """Packages sampler `name` needs that are not installed."""
    return [pkg for pkg in NEEDS.get(name, ()) if importlib.util.find_spec(pkg) is None]


def constraints_from_attrs(trial: FrozenTrial) -> Sequence[float]:
    """Optuna 4 `constraints_func`: the constraint values the objective stored."""
    return list(TrialRecord.from_frozen(trial).constraint_values.values())


def run_seed(seed: int | None, existing_trials: int, joined_running: bool, pid: int) -> int | None:
    """The sampler seed of one run: reproducible, but never replaying an earlier run's draws.

    A new study uses `seed`; a resumed one `seed + existing_trials` (a resumed sampler with
    the same seed would propose its first run's random start-up points again); a runner
    joining a study other runners are working on mixes in its pid, so two runners never
    draw the same sequence. None stays None (fresh entropy).
    """
    if seed is None:
        return None
    if joined_running:
        return (seed * 1_000_003 + existing_trials * 7919 + pid) % 2**32
    return seed + existing_trials


class PasteableSampler(optuna.samplers.BaseSampler):
    """Any sampler whose float proposals are rounded by `space.paste_value` (step, else 3
    significant digits) before the trial uses them, so the stored params are the values
    measured and printed. Everything else is the wrapped sampler's."""

    def __init__(self, base: optuna.samplers.BaseSampler, space: Mapping[str, ParamSpec]) -> None:
        self.base = base
        self.floats = {n: p for n, p in space.items() if isinstance(p, FloatParam)}

    def _round(self, name: str, value: Any) -> Any:
        param = self.floats.get(name)
        return value if param is None else paste_value(float(value), param)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        values = self.base.sample_relative(study, trial, search_space)
        return {name: self._round(name, value) for name, value in values.items()}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        value = self.base.sample_independent(study, trial, param_name, param_distribution)
        return self._round(param_name, value)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


def make_sampler(spec: StudySpec, seed: int | None = None) -> PasteableSampler:
    """The sampler of `spec.study.sampler`, seeded with `seed` (default: the file's), whose
    float proposals are pasteable (`PasteableSampler`)."""
    return PasteableSampler(_base_sampler(spec, seed), spec.search_space)


def screen_sampler(spec: StudySpec) -> PasteableSampler:
    """The screen's sampler: TPE seeded with the file's seed, whatever the live sampler (the
    screen is hundreds of cheap trials, what TPE is made for)."""
    base = optuna.samplers.TPESampler(seed=spec.study.sampler.seed)
    return PasteableSampler(base, spec.search_space)


def _base_sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    name = spec.study.sampler.name
    seed = spec.study.sampler.seed if seed is None else seed
    missing = missing_packages(name)
    if missing:
        raise SpecError(
            f"study.sampler.name: {name} needs {' and '.join(missing)}: "
            f"install with {install_commands(missing)}"
        )
    cons: dict[str, Any] = (
        {} if HAS_SET_CONSTRAINT else {"constraints_func": constraints_from_attrs}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if name == "tpe":
            # group=True: multivariate TPE over the sub-spaces conditional parameters form
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, **cons)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "grid":
            grid = {p: grid_values(param) for p, param in spec.search_space.items()}
            return optuna.samplers.GridSampler(grid, seed=seed)  # type: ignore[arg-type]
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, **cons)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **cons)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
