"""Stored baselines: one JSON file per test module per platform (the store), its typed entries,
and the bookkeeping of what an update writes and what is stale."""
