"""Optional pytest plugins shipped with pytest-edgeopt, each its own `pytest11` entry point.

They extend the core only through its hooks (hookspecs.py), exactly as a third-party plugin would:
`-p no:<entry point>` turns one off and leaves the rest of pytest-edgeopt as it is.
"""
