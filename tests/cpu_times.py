"""CPU-seconds per test, for measuring the suite on a machine other runs load (wall times are then
noise): `pytest -p tests.cpu_times` writes one JSON line per test phase to TRLGATE_CPU_TIMES (default
cpu-times.jsonl), and `python -m tests.cpu_times FILE [FILE]` prints the costliest tests (and, given
two files, before and after). A test's CPU is that of its pytest process (every thread: uvicorn, the
Temporal SDK's core) plus its descendants' (the Temporal servers, Chromium, schemathesis), live or
reaped during the test. A descendant that ends unreaped by this process (orphaned, its parent gone
first) takes its CPU with it: that phase can show less, even below zero, so sums are lower bounds."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

OUT = Path(os.environ.get("TRLGATE_CPU_TIMES", "cpu-times.jsonl"))


def _cpu() -> tuple[float, float]:
    """(this process, its descendants)"""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = reaped.ru_utime + reaped.ru_stime
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:  # gone between listing and reading
            continue
        # What it reaped of its own children (a server's helpers) is no longer listed by itself.
        total += t.user + t.system + t.children_user + t.children_system
    return time.process_time(), total


def _record(item: pytest.Item, phase: str) -> Iterator[None]:
    (own, children), wall = _cpu(), time.monotonic()
    yield
    own_after, children_after = _cpu()
    line = {
        "test": item.nodeid,
        "phase": phase,
        "cpu": own_after - own + children_after - children,
        "children": children_after - children,
        "wall": time.monotonic() - wall,
    }
    with OUT.open("a") as f:
        f.write(json.dumps(line) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _record(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _record(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _record(item, "teardown")


def totals(path: Path) -> dict[str, tuple[float, float]]:
    """test -> (CPU-seconds, wall seconds), its phases added up."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in path.read_text().splitlines():
        row = json.loads(line)
        out[row["test"]][0] += row["cpu"]
        out[row["test"]][1] += row["wall"]
    return {k: (v[0], v[1]) for k, v in out.items()}


def main(paths: list[str]) -> None:
    runs = [totals(Path(p)) for p in paths]
    for i, run in enumerate(runs):
        print(
            f"{paths[i]}: {len(run)} tests, {sum(c for c, _ in run.values()):.1f} CPU-s, "
            f"{sum(w for _, w in run.values()):.1f} s in tests"
        )
    first = runs[0]
    for test in sorted(first, key=lambda t: -first[t][0])[:60]:
        figures = "  ".join(f"{r[test][0]:7.1f} cpu {r[test][1]:6.1f} s" if test in r else " " * 22 for r in runs)
        print(f"{figures}  {test}")


if __name__ == "__main__":
    main(sys.argv[1:])
