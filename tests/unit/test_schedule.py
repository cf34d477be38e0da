"""tests/schedule.py: the order the suite's tests are handed to the xdist workers."""

from __future__ import annotations

from pathlib import Path

from tests.schedule import REPORT, costs, longest_first

ROOT = Path(__file__).parents[2]


def test_a_durations_report_adds_up_each_tests_phases(tmp_path: Path) -> None:
    report = tmp_path / "slow.txt"
    report.write_text(
        "============ slowest durations ============\n"
        "12.50s call     tests/test_a.py::test_x[sqlite-pm]\n"
        "2.00s setup    tests/test_a.py::test_x[sqlite-pm]\n"
        "3.00s call     tests/test_b.py::test_y@tests/test_b.py\n"
        "(5 durations < 0.005s hidden.)\n"
    )
    assert costs(report) == {"tests/test_a.py::test_x[sqlite-pm]": 14.5, "tests/test_b.py::test_y": 3.0}
    assert costs(tmp_path / "missing.txt") == {}


def test_the_longest_unit_goes_first_and_a_modules_tests_stay_together() -> None:
    tests = [
        ("a.py::quick", "a.py::quick"),
        ("m.py::one", "m.py"),  # share a module-scoped fixture: one unit, 3 + 4 s
        ("b.py::long", "b.py::long"),
        ("m.py::two", "m.py"),
        ("c.py::unknown", "c.py::unknown"),
    ]
    known = {"a.py::quick": 1.0, "m.py::one": 3.0, "m.py::two": 4.0, "b.py::long": 5.0}
    assert [tests[i][0] for i in longest_first(tests, known)] == [
        "m.py::one", "m.py::two", "b.py::long", "a.py::quick", "c.py::unknown"
    ]  # fmt: skip


def test_the_committed_report_names_tests_that_exist() -> None:
    known = costs(REPORT)
    assert len(known) > 50
    missing = {t.split("::")[0] for t in known if not (ROOT / t.split("::")[0]).exists()}
    assert not missing, f"renew {REPORT.name} (tests/schedule.py says how): {missing}"
