"""The study file: schema, loading with located errors, cross-section checks, the search
space, its conditions and known starting points. Pure, except `loading` (reads the file) and
`checks.require_metrics_source` (looks `prometheus` up on PATH).

Imports nothing else of the study layer.
"""
