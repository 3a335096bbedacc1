"""optuna-dashboard on a study's storage and artifacts, on 127.0.0.1. Does I/O: serves HTTP."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.artifacts import FileSystemArtifactStore

from dynamo_tune.net import LOOPBACK
from dynamo_tune.study.store.storage import StorageTarget


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Requests are not logged (the dashboard polls every few seconds)."""


def make_dashboard_server(
    storage: optuna.storages.BaseStorage, target: StorageTarget, port: int = 0
) -> WSGIServer:
    """A bound (not yet serving) optuna-dashboard server; `port=0` lets the OS pick."""
    from optuna_dashboard import wsgi

    target.artifact_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = wsgi(storage, artifact_store=FileSystemArtifactStore(str(target.artifact_dir)))
    return make_server(LOOPBACK, port, app, handler_class=_QuietHandler)


def dashboard_url(server: WSGIServer, study_id: int | None = None) -> str:
    """`http://127.0.0.1:<port>/dashboard/` (or the study's page)."""
    base = f"http://{LOOPBACK}:{server.server_port}/dashboard/"
    return base if study_id is None else f"{base}studies/{study_id}"


def serve(server: WSGIServer, announce: Callable[[str], None], url: str) -> None:
    """Print the URL, then serve until Ctrl-C."""
    announce(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
