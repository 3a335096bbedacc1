"""The study report: one self-contained HTML file a reviewer can read in a minute.

One module per part, pure apart from `writing`:

- `answer_block` (the verdict and the chosen configuration, paste-ready), `status` (trial
  counts, wall time, overhead, "still running"), `measured` (deployment, workload, objective),
  `knobs` (the measurement noise and which knobs did not matter beyond it), `trial_rows`
  (the trials table), `figures` (Optuna's plots), `measured_figures` (the two plotly plots
  Optuna has none of: KVE vs TTFT p95, confirmation intervals), `screen_figure` (a screened
  study: screen vs live score per configuration, beside the screen's best configurations);
- `contents` (`build_report`: all of the above from one study), `page` (`render`: the HTML,
  plotly.js inlined), `writing` (`write_report_file`: read the study, write the file).

Importing it imports Optuna and plotly; the CLI imports it when `report` runs.
"""

from dynamo_tune.report.contents import Report, ReportContents, build_report
from dynamo_tune.report.page import render
from dynamo_tune.report.writing import WrittenReport, write_report_file

__all__ = [
    "Report",
    "ReportContents",
    "WrittenReport",
    "build_report",
    "render",
    "write_report_file",
]
