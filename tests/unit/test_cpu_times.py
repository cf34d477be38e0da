"""tests/cpu_times.py: CPU-seconds per test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cpu_times import _cpu, totals
from tests.support import assert_eventually


def test_a_tests_phases_add_up(tmp_path: Path) -> None:
    rows = [
        {"test": "t.py::a", "phase": "setup", "cpu": 1.0, "children": 0.5, "wall": 2.0},
        {"test": "t.py::a", "phase": "call", "cpu": 3.0, "children": 0.0, "wall": 4.0},
        {"test": "t.py::b", "phase": "call", "cpu": 0.25, "children": 0.0, "wall": 0.5},
    ]
    path = tmp_path / "cpu.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert totals(path) == {"t.py::a": (4.0, 6.0), "t.py::b": (0.25, 0.5)}


async def test_a_childs_cpu_counts_while_it_runs_and_after_it_is_reaped() -> None:
    own, children = _cpu()
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ninput()"
    child = subprocess.Popen([sys.executable, "-c", busy], stdin=subprocess.PIPE)
    try:
        await assert_eventually(lambda: _cpu()[1] - children, "the running child's CPU", until=lambda c: c >= 0.3)
    finally:
        child.communicate(b"\n")
    assert _cpu()[1] - children >= 0.3  # still there once it is reaped
    assert _cpu()[0] >= own
