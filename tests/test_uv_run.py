"""`uv run` in this project starts the command without recompiling the environment.

With `[tool.uv] compile-bytecode = true`, uv's implicit sync before every `uv run` compiled all
of site-packages again ("Bytecode compiled 11291 files in ...", ~0.3 s or more per call).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_uv_run_compiles_nothing_when_the_environment_is_in_sync() -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is not on PATH (README: the project is run with `uv run`)"
    env = {k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"}
    stderr = ""
    for _ in range(2):  # the first may still build the project once if its files changed
        done = subprocess.run(
            [uv, "run", "--frozen", "python", "-c", "pass"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        stderr += done.stderr
    assert "Bytecode compiled" not in stderr
