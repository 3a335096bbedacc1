"""`dynamo-tune report`: read a study, render its report, write the HTML file. Does I/O.

The file is written beside its destination and renamed into place, so a failed run never
leaves half a report (nor touches an older one). The study is only read.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from dynamo_tune.errors import SpecError
from dynamo_tune.report.contents import build_report
from dynamo_tune.report.page import render
from dynamo_tune.study.spec.loading import load_spec
from dynamo_tune.study.store.opening import open_existing
from dynamo_tune.study.store.screen_study import load_screen_study
from dynamo_tune.validation import require_folder


@dataclass(frozen=True)
class WrittenReport:
    """Where the report went, its size in bytes, and how long reading + rendering took (s)."""

    path: Path
    size_bytes: int
    seconds: float
    trials: int
    headline: str


def default_output(study_file: Path, study_name: str) -> Path:
    """`<study file's folder>/<study name>.report.html`."""
    return study_file.parent / f"{study_name}.report.html"


def _dynamo_version() -> str | None:
    try:
        return metadata.version("ai-dynamo")
    except metadata.PackageNotFoundError:
        return None


def write_report_file(study_file: Path, output: Path | None = None) -> WrittenReport:
    """Render the report of the study `study_file` describes and write it to `output`.

    SpecError for a bad study file, a study that does not exist, an output whose folder does
    not exist (never created) or that cannot be written; StorageError when the storage cannot
    be read.
    """
    started = time.perf_counter()
    loaded = load_spec(study_file)
    handle = open_existing(loaded)
    target = output if output is not None else default_output(study_file, loaded.spec.study.name)
    if target.is_dir():
        raise SpecError(f"-o: {target} is a folder; name the HTML file to write")
    require_folder(target, "-o")  # a typo in the folder is refused, never created
    report = build_report(
        handle.study,
        loaded.spec,
        loaded.sha256,
        now=dt.datetime.now(dt.UTC),
        dynamo_version=_dynamo_version() if loaded.spec.deployment.kind == "local" else None,
        screen=load_screen_study(handle),
    )
    page = render(report).encode("utf-8")
    _write_atomically(target, page)
    return WrittenReport(
        path=target,
        size_bytes=len(page),
        seconds=time.perf_counter() - started,
        trials=len(report.contents.trials),
        headline=report.contents.verdict.headline,
    )


def _write_atomically(target: Path, data: bytes) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise SpecError(f"-o: cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SpecError(f"-o: cannot write {target}: {exc.strerror or exc}") from exc
