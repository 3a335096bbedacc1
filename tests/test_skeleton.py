"""The CLI entry point and the error tree."""

import pytest

from dynamo_tune.cli.main import main
from dynamo_tune.errors import DynamoTuneError, MetricsError, SpecError


def test_version_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "dynamo-tune" in capsys.readouterr().out


def test_user_errors_exit_2() -> None:
    assert SpecError("x").exit_code == 2
    assert MetricsError("x").exit_code == 2
    assert DynamoTuneError("x").exit_code == 1
