"""The dynamo-tune error tree. Pure.

Every error the tool raises on purpose derives from `DynamoTuneError`; the CLI maps
each to a one-line message and an exit code (`exit_code`). Third-party exceptions are
translated where they are caught, with `raise ... from exc`.
"""

from __future__ import annotations


class DynamoTuneError(Exception):
    """Base of every deliberate dynamo-tune error. `exit_code` is what the CLI exits with."""

    exit_code: int = 1


class SpecError(DynamoTuneError):
    """A study file, CLI argument or config value is invalid (user input)."""

    exit_code = 2


class SearchSpaceChanged(SpecError):
    """A study file's search space differs from the one its stored study was created with
    (a sampler cannot mix them); `study_name` names the study."""

    def __init__(self, study_name: str) -> None:
        self.study_name = study_name
        super().__init__(self.message("allow a changed space"))

    def message(self, allow: str) -> str:
        """The one text of this error; `allow` says how to continue anyway (the CLI names its
        flag)."""
        return (
            f"study {self.study_name!r} was created with a different search_space; a sampler "
            f"cannot mix them. Use a new study name, restore the old space, or {allow} to "
            "continue anyway"
        )


class DeploymentError(DynamoTuneError):
    """A deployment could not be started, applied, made ready or stopped."""


class DeploymentFault(DeploymentError):
    """A deployment broke during a trial (a worker exited, the ready check failed): the fault's,
    not the configuration's. The trial is FAIL with the reason and its configuration is measured
    again once, after the deployment has been brought back."""

    @property
    def fault(self) -> str:
        """What the trial's `fault` attr stores."""
        return str(self)


class MeasurementFault(DeploymentFault):
    """The metrics source could not measure a trial's window (`DynamoMetricsResult.fault`:
    unreachable, no active target, a target down or not scraped inside the window, a window
    query failed): the measurement's fault, not the configuration's. It takes the deployment
    fault's path: the trial is FAIL and its configuration is measured again once."""

    PREFIX = "metrics: "

    @property
    def fault(self) -> str:
        return f"{self.PREFIX}{self}"

    @classmethod
    def describes(cls, fault: str) -> bool:
        """Whether a stored `fault` attr is a measurement fault's."""
        return fault.startswith(cls.PREFIX)


class WorkloadError(DynamoTuneError):
    """A workload could not run (not: a failed request, which is data on its record)."""


class MetricsError(DynamoTuneError):
    """A metrics source cannot serve a study or command at all (e.g. Prometheus does not answer
    the check before the first trial). The collector itself never raises it for an unreachable
    source: its result says so (`DynamoMetricsResult.reachable`)."""

    exit_code = 2


class StorageError(DynamoTuneError):
    """The study storage cannot be opened, read or written (names the URL or path, never a
    password). Not user input in the study file's schema, so not exit 2."""

    exit_code = 3


class RunStopped(DynamoTuneError):
    """A run gave up on its own: too many consecutive FAIL trials."""
