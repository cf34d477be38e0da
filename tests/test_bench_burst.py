"""bench.burst at toy size, as its one command runs it: so the benchmark cannot rot. Its figures
are not asserted (timing claims live in bench/); its verdict on the reviews is."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.processes import REPO

# A stack of processes (dev server, worker, API) at toy size: the deep tier's, not the suite's
# five minutes; what the product does here has tests of its own (tests/test_api_access.py).
pytestmark = pytest.mark.deep_only


def test_deadline_burst_runs_and_records_every_review_once() -> None:
    args = ["--rounds", "2", "--reviewers-per-round", "2", "--window", "2", "--baseline-rounds", "1"]
    # Half the reviews sent twice on purpose (a double click, a lost answer): still recorded once.
    args += ["--resend", "0.5", "--seconds-per-day", "0.5"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.burst", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for row in ("review one at a time (baseline)", "bare gate Update, same burst", "review, burst"):
        assert row in out, out
    assert "sent twice on purpose: 2, answered {200: 2}" in out, out
    for source in ("workflow panels", "review rows", "review events", "audit entries"):
        assert f"{source:18s} lost 0, duplicated 0" in out, out
    assert "every review recorded exactly once" in out, out
