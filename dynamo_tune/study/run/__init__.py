"""Running a study: the stages (search, confirmation), the loop that runs them, the events
it emits, the progress line, the real services of a study file and the entry points.

The top of the study layer: may import every other group.
"""
