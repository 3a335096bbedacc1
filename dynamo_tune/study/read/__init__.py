"""Reading a study back: the answer (`answers`), tables, and optuna-dashboard.

Imports `spec`, `trial`, `store` and `confirmation`.
"""
