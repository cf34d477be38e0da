"""The fund's forecast (domain/forecast.py) against figures worked out by hand in the comments:
carry-over of unspent ceiling, a year over its ceiling, years without a ceiling, the what-if's
expected values (kill rate per gate, recycle rate) and their rounding, bad rates refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.forecast import ForecastInput, ForecastYear, LaterStage, ProjectPlan, forecast


def _year(
    fy: int, ceiling: int | None, carried_in: int, committed: int, planned: int, available: int | None
) -> ForecastYear:
    return ForecastYear(
        fiscal_year=fy,
        ceiling=ceiling,
        carried_in=carried_in,
        committed=committed,
        planned=planned,
        available=available,
    )


# MEXT: ceilings of 100 for FY2025-2028; 60 paid in FY2025 (40 left, carried into FY2026); the
# current stage still holds 50 reserved for FY2026 and 30 for FY2027; after it, one stage of
# 900 over three years from FY2028: 300 a year. METI: ceilings of 50 for FY2026-2029, nothing used.
PLAN = ForecastInput(
    first_year=2026,
    horizon=5,
    ceilings={"MEXT": {2025: 100, 2026: 100, 2027: 100, 2028: 100}, "METI": {fy: 50 for fy in range(2026, 2030)}},
    reserved={"MEXT": {2026: 50, 2027: 30}},
    paid={"MEXT": {2025: 60}},
    projects=[
        ProjectPlan(
            project_id="KP-1",
            ministry="MEXT",
            next_start=2028,
            current_budget=80,
            current_years=2,
            later=[LaterStage(budget=900, years=3)],
        )
    ],
)


def test_the_plan_as_it_stands_carries_unspent_ceiling_and_runs_short_in_the_year_over_it() -> None:
    result = forecast(PLAN)
    [meti, mext] = result.ministries
    assert mext.ministry == "MEXT" and meti.ministry == "METI"
    assert mext.years == [
        # 100 + 40 carried from FY2025 - 50 reserved = 90
        _year(2026, 100, 40, 50, 0, 90),
        # 100 + 90 - 30 = 160
        _year(2027, 100, 90, 30, 0, 160),
        # 100 + 160 - 300 planned = -40: over the ceiling, even with two years' carry-over
        _year(2028, 100, 160, 0, 300, -40),
        # no ceiling: no limit, nothing carried in
        _year(2029, None, 0, 0, 300, None),
        _year(2030, None, 0, 0, 300, None),
    ]
    assert mext.short_in == 2028
    # METI: 50 a year, each year's unspent 50 carried into the next: room of 50, 100, 150, 200.
    assert [y.available for y in meti.years] == [50, 100, 150, 200, None]
    assert [y.carried_in for y in meti.years] == [0, 50, 100, 150, 0]
    assert meti.short_in is None
    assert result.short_in == 2028
    # The programme: a year's ceiling only while every ministry has one.
    assert result.total[0] == _year(2026, 150, 40, 50, 0, 140)
    assert result.total[2] == _year(2028, 150, 260, 0, 300, 110)
    assert result.total[3] == _year(2029, None, 150, 0, 300, None)


def test_the_what_if_weights_later_stages_by_the_gates_before_them_and_adds_expected_repeats() -> None:
    # kill 20 % per gate, recycle 10 % per gate. Current stage 80 over 2 years, then A (100, one
    # year) from FY2028, then B (200, two years) from FY2029.
    # - current stage's repeat: 0.1 x 80, split 40/40 -> 4 in FY2028 and 4 in FY2029
    # - A, one gate:  0.8 x 100 = 80 in FY2028; its repeat 0.1 x 0.8 x 100 = 8 in FY2029
    # - B, two gates: 0.64 x 100 = 64 in FY2029 and FY2030; repeat 0.1 x 0.64 x 100 = 6.4 in FY2031, FY2032
    # FY2028: 84, FY2029: 4 + 8 + 64 = 76, FY2030: 64, FY2031: 6.4 -> 6, FY2032: 6.4 -> 6.
    data = ForecastInput(
        first_year=2028,
        horizon=5,
        ceilings={"MEXT": {2028: 100}},
        projects=[
            ProjectPlan(
                project_id="KP-2",
                ministry="MEXT",
                next_start=2028,
                current_budget=80,
                current_years=2,
                later=[LaterStage(budget=100, years=1), LaterStage(budget=200, years=2)],
            )
        ],
        kill_rate=Decimal("0.2"),
        recycle_rate=Decimal("0.1"),
    )
    [mext] = forecast(data).ministries
    assert [y.planned for y in mext.years] == [84, 76, 64, 6, 6]
    assert mext.years[0] == _year(2028, 100, 0, 0, 84, 16)  # room for 16 of new projects
    assert mext.short_in is None
    # The same plan with no what-if: A's 100 in FY2028 and B's 100 + 100 after it, no repeats.
    as_planned = forecast(data.model_copy(update={"kill_rate": Decimal(0), "recycle_rate": Decimal(0)}))
    assert [y.planned for y in as_planned.ministries[0].years] == [100, 100, 100, 0, 0]
    # Every gate kills: nothing after the current stage is spent.
    all_killed = forecast(data.model_copy(update={"kill_rate": Decimal(1), "recycle_rate": Decimal(0)}))
    assert [y.planned for y in all_killed.ministries[0].years] == [0, 0, 0, 0, 0]


def test_expected_yen_are_summed_exactly_and_rounded_half_up_once_per_year() -> None:
    # Two projects each expecting 0.5 x 5 = 2.5 in FY2026: 5 together (not 3 + 3 rounded apart);
    # a third expecting 0.5 x 3 = 1.5 in FY2027: 2 (half up).
    plans = [
        ProjectPlan(project_id=f"KP-{n}", ministry="METI", next_start=fy, later=[LaterStage(budget=b, years=1)])
        for n, fy, b in ((1, 2026, 5), (2, 2026, 5), (3, 2027, 3))
    ]
    data = ForecastInput(first_year=2026, horizon=2, ceilings={}, projects=plans, kill_rate=Decimal("0.5"))
    [meti] = forecast(data).ministries
    assert [y.planned for y in meti.years] == [5, 2]
    assert [y.available for y in meti.years] == [None, None]  # no ceilings: no limit, never short


@pytest.mark.parametrize("rates", [{"kill_rate": "1.5"}, {"kill_rate": "-0.1"}, {"recycle_rate": "2"}])
def test_a_rate_outside_zero_to_one_is_refused(rates: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ForecastInput(first_year=2026, ceilings={}, **rates)  # type: ignore[arg-type]


_stages = st.lists(
    st.builds(LaterStage, budget=st.integers(0, 10**12), years=st.integers(1, 4)), min_size=0, max_size=4
)
_plans = st.lists(
    st.builds(
        ProjectPlan,
        project_id=st.just("KP-H"),
        ministry=st.sampled_from(["MEXT", "METI"]),
        next_start=st.integers(2026, 2030),
        current_budget=st.integers(0, 10**12),
        current_years=st.integers(1, 4),
        later=_stages,
    ),
    max_size=5,
)
_rates = st.decimals(min_value=0, max_value=1, places=2)


@settings(max_examples=60, deadline=None)
@given(plans=_plans, kill=_rates, more_kill=_rates, recycle=_rates)
def test_the_plan_is_spent_in_full_without_a_what_if_and_never_more_with_more_kills(
    plans: list[ProjectPlan], kill: Decimal, more_kill: Decimal, recycle: Decimal
) -> None:
    def planned(k: Decimal, r: Decimal) -> int:
        data = ForecastInput(first_year=2026, horizon=30, ceilings={}, projects=plans, kill_rate=k, recycle_rate=r)
        return sum(y.planned for y in forecast(data).total)

    # No kills, no recycles: every later stage's budget, to the yen (the horizon holds them all).
    assert planned(Decimal(0), Decimal(0)) == sum(s.budget for p in plans for s in p.later)
    low, high = sorted((kill, more_kill))
    # Rounding is per ministry and year: two yen per year and ministry is the most it can move.
    assert planned(high, recycle) <= planned(low, recycle) + 2 * 30 * 2
