"""The order the suite's tests are handed to the xdist workers: the longest first, so the last
minutes are not one worker finishing a long test while the others idle (longest processing time
first). pyproject's addopts load this plugin and say `--dist loadgroup --no-loadscope-reorder`:
xdist then hands out one test at a time, in this order, to whichever worker is free (worksteal
hands each worker a third of the list up front, so a sorted list would give one worker every long
test). A test that uses a module- or class-scoped fixture is grouped with its module (one worker
runs the module, which sets that fixture up once).

The costs are a `--durations` report of the suite (tests/slow_tests.txt, wall seconds); to renew:
`./test.sh -p no:cacheprovider --durations=150 | grep -E '^[0-9.]+s (setup|call|teardown) ' >
tests/slow_tests.txt`. A test it does not name costs nothing and keeps its place after those it
names, so a stale report only orders less well."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

REPORT = Path(__file__).with_name("slow_tests.txt")
LINE = re.compile(r"^(?P<seconds>[0-9.]+)s (?:setup|call|teardown) +(?P<test>\S+)$")
SHARED = ("module", "class", "package")


def costs(report: Path = REPORT) -> dict[str, float]:
    """nodeid -> seconds (its phases added up)."""
    found: dict[str, float] = defaultdict(float)
    lines = report.read_text().splitlines() if report.exists() else []
    for m in filter(None, map(LINE.match, lines)):
        found[m["test"].split("@")[0]] += float(m["seconds"])
    return found


def unit_of(item: pytest.Item) -> str:
    """The test itself, or its module when it shares a fixture with the module's other tests."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info else []
    shared = any(d[-1].scope in SHARED for d in defs if d)
    return item.nodeid.split("::")[0] if shared else item.nodeid


def longest_first(tests: Sequence[tuple[str, str]], known: Mapping[str, float]) -> list[int]:
    """The order (indices) of the (nodeid, unit) pairs: the units by their tests' summed cost, the
    longest first, each unit's tests together and in their order. sorted() is stable: units of
    equal (or unknown) cost keep the collection's order."""
    units: dict[str, list[int]] = defaultdict(list)
    for i, (_, unit) in enumerate(tests):
        units[unit].append(i)
    cost = {unit: sum(known.get(tests[i][0], 0.0) for i in members) for unit, members in units.items()}
    return [i for unit in sorted(units, key=lambda u: -cost[u]) for i in units[unit]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = [(item.nodeid, unit_of(item)) for item in items]
    for item, (nodeid, unit) in zip(items, tests, strict=True):
        if unit != nodeid:
            item.add_marker(pytest.mark.xdist_group(unit))
    items[:] = [items[i] for i in longest_first(tests, costs())]
