"""The console log format (development) prints a logged exception's traceback without the
frames' local variables: they may hold payloads, task tokens or closed work's content."""

from __future__ import annotations

import logging

from telemetry.logs import formatter


def test_a_console_traceback_names_the_error_but_not_the_locals() -> None:
    record: logging.LogRecord | None = None

    def fail() -> None:
        closed_title = "QS-lattice interceptor"  # noqa: F841 (a local a traceback could print)
        raise ValueError("the activity failed")

    try:
        fail()
    except ValueError:
        import sys

        record = logging.LogRecord("trlgate.test", logging.ERROR, __file__, 1, "it failed", None, sys.exc_info())
    assert record is not None
    for fmt in ("console", "json"):
        text = formatter(fmt).format(record)  # type: ignore[arg-type]
        assert "ValueError" in text and "the activity failed" in text, fmt
        assert "QS-lattice interceptor" not in text, fmt
