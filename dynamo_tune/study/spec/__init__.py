"""The study file: schema, loading with located errors, cross-section checks, the search
space, its conditions and known starting points. Pure, except `loading` (reads the file).

Imports nothing else of the study layer.
"""
