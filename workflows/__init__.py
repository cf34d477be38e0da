"""Deterministic Temporal workflows (no I/O here: every side effect is an activity)."""
