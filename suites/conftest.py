"""Example regression suites: copy this folder into your project and edit the budgets.

Run them with `pytest suites/` (add `--edge-quick` for a smoke run). They measure real models on
the platform chosen with `--edge-platform` and print the comparison table at the end.
"""
