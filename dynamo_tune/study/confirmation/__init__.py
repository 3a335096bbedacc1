"""The confirmation stage's logic: what to re-measure (`plan`), the statistics
(`confidence`), the verdict as data and its text (`verdict`, `verdict_text`), and range
edges worth widening (`edges`).

Imports `spec`, `trial` and `store`.
"""
