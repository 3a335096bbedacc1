"""Shared fixtures: each family lives in `tests/fixtures/<name>.py`, registered here."""

pytest_plugins = ["fixtures.postgres", "fixtures.prometheus", "fixtures.stack"]
