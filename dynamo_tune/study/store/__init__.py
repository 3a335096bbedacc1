"""Where a study lives: storage URLs and opening them, creating or resuming a study,
samplers, and recovery of dead runners' trials. Does I/O: the study storage.

Imports `spec` and `trial`.
"""
