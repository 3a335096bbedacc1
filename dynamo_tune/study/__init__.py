"""The study layer: a study file in, trials measured and stored, answers read back.

One module per step of a study (design.md §1), each imported from here:

- the study file: `schema` (`StudySpec`), `loading` (`load_spec`), `checks` (cross-section rules);
- the search space: `space` (`SearchSpace`, `Candidate`);
- one trial: `objective` (`Objective`, `TrialServices`: the only module that knows a trial's
  order), `outcome` (what a trial stores), `attr_keys` (every stored key), `artifacts`,
  `services` (the real deployment, workload and metrics of a study file);
- opening a study: `storage`, `samplers`, `recovery` (dead runners, the space guard),
  `opening` (`open_for_run`, `open_existing`);
- the search space's conditions (`conditions`) and known starting points (`presets`);
- the run loop: `run` (`run_study`, `run_study_file`, `confirm_study_file`), `progress`;
- confirmation: `confirm` (what to re-measure, queued interleaved), `confidence` (Welch's
  t), `edges` (values at a bound of their range), `verdict` (the confirmed winner);
- reading it back: `readback` (best trials, the answer, tables), `dashboard`.

Importing this package imports Optuna (about a second); commands that do not need a study
import it when they run.
"""

from dynamo_tune.study.attr_keys import StudyAttr, TrialAttr
from dynamo_tune.study.loading import LoadedSpec, load_spec
from dynamo_tune.study.objective import Objective, TrialServices
from dynamo_tune.study.opening import StudyHandle, open_existing, open_for_run, storage_target
from dynamo_tune.study.run import (
    RunSummary,
    ServicesFactory,
    confirm_study_file,
    run_study,
    run_study_file,
)
from dynamo_tune.study.schema import StudySpec
from dynamo_tune.study.services import build_services
from dynamo_tune.study.space import Candidate, SearchSpace

__all__ = [
    "Candidate",
    "LoadedSpec",
    "Objective",
    "RunSummary",
    "SearchSpace",
    "ServicesFactory",
    "StudyAttr",
    "StudyHandle",
    "StudySpec",
    "TrialAttr",
    "TrialServices",
    "build_services",
    "confirm_study_file",
    "load_spec",
    "open_existing",
    "open_for_run",
    "run_study",
    "run_study_file",
    "storage_target",
]
