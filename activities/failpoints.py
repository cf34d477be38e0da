"""Crash points for the crash tests: a name listed in TRLGATE_FAILPOINTS kills this process with
SIGKILL when reached, as a power cut would. Nothing is listed in normal operation."""

from __future__ import annotations

import os
import signal


def hit(name: str) -> None:
    if name in os.environ.get("TRLGATE_FAILPOINTS", "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
