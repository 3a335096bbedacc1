"""Per-trial files as Optuna artifacts (shown by optuna-dashboard). Does I/O: writes files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact


class FileArtifactSink:
    """Uploads named text files to a `FileSystemArtifactStore` in `directory`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.store = FileSystemArtifactStore(str(directory))

    def upload(self, trial: optuna.Trial, filename: str, content: str) -> None:
        with tempfile.TemporaryDirectory(prefix="dynamo-tune-artifact-") as tmp:
            path = Path(tmp) / filename
            path.write_text(content, encoding="utf-8")
            upload_artifact(
                artifact_store=self.store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/json" if filename.endswith(".json") else None,
            )
