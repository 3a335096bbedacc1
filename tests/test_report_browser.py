"""The report in a real browser: headless Chromium opens the file from disk with every other
host unreachable (tests/browser.py fails each non-file request and resolves no host name) and
draws every plot, with no console error."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser import is_blank, visit
from fake_metrics_helpers import PARETO, RANDOM_12, ModeOnlyMetrics
from fakes import fake_stack, write_study

from dynamo_tune.cli.main import main
from dynamo_tune.study import run_study_file

pytestmark = pytest.mark.integration

PLOTS = """Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => ({
  id: d.id,
  svgs: d.querySelectorAll('svg.main-svg').length,
  traces: d.querySelectorAll('g.trace').length,
  marks: d.querySelectorAll('g.trace path, g.trace .point, g.trace .bars path').length,
  width: Math.round(d.getBoundingClientRect().width),
}))"""

STUDIES: dict[str, dict[str, Any]] = {
    "single objective, confirmed": {  # 20 search trials: enough for importances
        **RANDOM_12,
        "study.n_trials": 20,
        "study.confirm": {"top": 2, "repeats": 3},
    },
    "Pareto, confirmed": {
        **RANDOM_12,
        "study.sampler": {"name": "nsga2", "seed": 1},
        "objective.directions": PARETO,
        "study.confirm": {"top": 2, "repeats": 2},
    },
}


@pytest.mark.parametrize("kind", list(STUDIES))
def test_chromium_draws_every_plot_offline_without_errors(tmp_path: Path, kind: str) -> None:
    path = write_study(tmp_path, STUDIES[kind])
    stack = fake_stack()
    stack.metrics = ModeOnlyMetrics(stack.cluster)
    run_study_file(path, stack.services)
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    expected = re.findall(r'<div id="(plot-[\w-]+)" class="plotly-graph-div"', out.read_text())
    assert len(expected) >= 5

    page = visit(out, tmp_path / "profile", {"plots": PLOTS, "title": "document.title"})

    assert page.console_errors == []
    assert page.network_errors == [] and page.blocked_urls == []
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.requested_urls)
    assert page.values["title"] == "dynamo-tune report: fake"
    plots = page.values["plots"]
    assert [p["id"] for p in plots] == expected
    for plot in plots:  # each container holds plotly's SVG with its traces drawn
        assert plot["svgs"] >= 1 and plot["traces"] >= 1 and plot["marks"] >= 1, plot
        assert plot["width"] > 300, plot
    assert not is_blank(page.screenshot_png)
    (tmp_path / "screenshot.png").write_bytes(page.screenshot_png)
