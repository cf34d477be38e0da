"""bench.open_workflows at toy size, as its one command runs it: so the benchmark cannot rot. Its
figures are not asserted (timing claims live in bench/); that every project waits in its first
stage, and that the table is printed, are."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config import REPO_ROOT

# A stack of processes (dev server, worker, API) at toy size: the deep tier's, not the suite's
# five minutes; the worker settings it relies on have tests of their own (tests/unit/test_worker_settings.py).
pytestmark = pytest.mark.deep_only


def test_open_workflows_runs_at_toy_size() -> None:
    args = ["--workflows", "3", "--baseline", "2", "--queries", "6", "--max-cached-workflows", "2", "--settle", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.open_workflows", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for row in ("worker RSS peak (MB)", "time to start all (s)", "status query p99 (ms)", "target worker RSS < 1 GB"):
        assert row in out, out
    assert "TRLGATE_WORKER_MAX_CACHED_WORKFLOWS" in out, out  # the worker got the setting
    assert "not in their first stage" not in out, out
