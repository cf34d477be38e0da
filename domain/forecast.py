"""The fund's future: what the active projects will commit in each of the next fiscal years,
against each funding ministry's ceilings, with carry-over (domain.fiscal.fiscal_years, the same
rule the ledger enforces), and a what-if.

Pure: the service (services/fund_forecast.py) reads the ledger and the plans; this computes.

The model, year by year and ministry by ministry:
- **committed**: what the ledger already holds for the year - paid, and reserved (a reserved
  stage's unpaid tranches stay in the fiscal year its schedule planned them for);
- **planned**: the money of the stages after each project's current one, by their plan. The
  first later stage starts in the project's `next_start` year (the year after its current stage's
  last scheduled tranche); each stage spans `years` fiscal years, its budget split evenly
  (remainder to the first years, as domain.proposal.split_evenly), and the next starts after it;
- **what-if (expected value)**: with a kill rate k per gate, the j-th stage after the current one
  is reached only through j gates, so its money counts (1 - k)^j of its budget. With a recycle
  rate r per gate, a stage that is reached is repeated once with probability r before its gate:
  its expected repeat, r x (its budget) x (its probability of being reached), is spread like the
  stage itself over the fiscal years after it ends (the current stage's repeat starts at
  `next_start`). A recycle adds money, not time: later stages keep their planned years, so the
  model reads the plan's calendar, not a delayed one. k = r = 0 is the plan as it stands;
- **available**: ceiling + carried in - committed - planned; unspent ceiling carries into the
  next year while the years have ceilings. A year without a ceiling has no limit (None).
A ministry runs short in the first year whose available is negative; a year with available
money has that much room for new projects.

Expected values are exact fractions, rounded to whole yen (half up) once per ministry and year.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.fiscal import fiscal_years
from domain.proposal import split_evenly

HORIZON = 10  # fiscal years, the current one first
Rate = Annotated[Decimal, Field(ge=0, le=1, max_digits=6, decimal_places=4)]


class LaterStage(BaseModel):
    """A stage after the project's current one, as its plan has it."""

    model_config = ConfigDict(frozen=True)
    budget: int = Field(ge=0)
    years: int = Field(ge=1, description="Fiscal years the stage spans.")


class ProjectPlan(BaseModel):
    """What is left of one active project's plan."""

    model_config = ConfigDict(frozen=True)
    project_id: str
    ministry: str
    next_start: int = Field(description="Fiscal year the first later stage (or the current one's repeat) starts.")
    current_budget: int = Field(0, ge=0, description="The current stage's budget (what a recycle repeats).")
    current_years: int = Field(1, ge=1)
    later: list[LaterStage] = []


class ForecastInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    first_year: int
    horizon: int = Field(HORIZON, ge=1, le=50)
    ceilings: dict[str, dict[int, int]] = Field(description="Ministry -> fiscal year -> ceiling.")
    reserved: dict[str, dict[int, int]] = {}
    paid: dict[str, dict[int, int]] = {}
    projects: list[ProjectPlan] = []
    kill_rate: Rate = Decimal(0)
    recycle_rate: Rate = Decimal(0)


class ForecastYear(BaseModel):
    fiscal_year: int
    ceiling: int | None
    carried_in: int
    committed: int = Field(description="Paid and reserved in the ledger for the year.")
    planned: int = Field(description="Later stages (and expected repeats) by their plan.")
    available: int | None = Field(description="ceiling + carried_in - committed - planned; None: no ceiling.")

    @property
    def short(self) -> bool:
        return self.available is not None and self.available < 0


class MinistryForecast(BaseModel):
    ministry: str
    years: list[ForecastYear]
    short_in: int | None = Field(description="The first fiscal year over its ceiling, if any.")


class ForecastResult(BaseModel):
    first_year: int
    kill_rate: Decimal
    recycle_rate: Decimal
    ministries: list[MinistryForecast]
    total: list[ForecastYear] = Field(description="All ministries; a year's ceiling only when each has one.")
    short_in: int | None = Field(description="The first fiscal year any ministry runs short.")


def planned_by_year(plan: ProjectPlan, kill_rate: Fraction, recycle_rate: Fraction) -> dict[int, Fraction]:
    """One project's later money by fiscal year, weighted by the what-if."""
    out: dict[int, Fraction] = defaultdict(Fraction)

    def add(budget: int, start: int, years: int, weight: Fraction) -> None:
        for i, part in enumerate(split_evenly(budget, years)):
            out[start + i] += part * weight

    # The current stage is under way (reached); its repeat starts when it would have ended.
    reach = Fraction(1)
    add(plan.current_budget, plan.next_start, plan.current_years, recycle_rate * reach)
    start = plan.next_start
    for stage in plan.later:
        reach *= 1 - kill_rate  # one more gate passed
        add(stage.budget, start, stage.years, reach)
        start += stage.years
        add(stage.budget, start, stage.years, recycle_rate * reach)
    return out


def _yen(amount: Fraction) -> int:
    """Whole yen, half up (amounts here are never negative)."""
    return int(amount + Fraction(1, 2)) if amount >= 0 else -int(-amount + Fraction(1, 2))


def forecast(data: ForecastInput) -> ForecastResult:
    kill, recycle = Fraction(data.kill_rate), Fraction(data.recycle_rate)
    horizon = range(data.first_year, data.first_year + data.horizon)
    planned: dict[str, dict[int, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    for plan in data.projects:
        for fy, amount in planned_by_year(plan, kill, recycle).items():
            planned[plan.ministry][fy] += amount
    ministries = sorted(set(data.ceilings) | set(data.reserved) | set(data.paid) | set(planned))
    out: list[MinistryForecast] = []
    for m in ministries:
        expected = {fy: _yen(v) for fy, v in planned[m].items()}
        reserved = dict(data.reserved.get(m, {}))
        # Planned money counts against the ceilings as a reservation would, so carry-over and
        # the ceilings' rule are the ledger's own (fiscal_years), applied to the future.
        with_plan = {fy: reserved.get(fy, 0) + expected.get(fy, 0) for fy in set(reserved) | set(expected)}
        ceilings = data.ceilings.get(m, {})
        rows = {y.fiscal_year: y for y in fiscal_years(ceilings, with_plan, data.paid.get(m, {}))}
        years = []
        for fy in horizon:
            row = rows.get(fy)
            if row is None:  # no ceiling and nothing committed or planned: no limit, nothing to carry
                years.append(
                    ForecastYear(fiscal_year=fy, ceiling=None, carried_in=0, committed=0, planned=0, available=None)
                )
                continue
            planned_here = expected.get(fy, 0)
            years.append(
                ForecastYear(
                    fiscal_year=fy,
                    ceiling=row.ceiling,
                    carried_in=row.carried_in,
                    committed=row.committed - planned_here,
                    planned=planned_here,
                    available=row.available,
                )
            )
        short = next((y.fiscal_year for y in years if y.short), None)
        out.append(MinistryForecast(ministry=m, years=years, short_in=short))
    total = [_sum_year(fy, [mf.years[i] for mf in out]) for i, fy in enumerate(horizon)]
    shorts = [mf.short_in for mf in out if mf.short_in is not None]
    return ForecastResult(
        first_year=data.first_year,
        kill_rate=data.kill_rate,
        recycle_rate=data.recycle_rate,
        ministries=out,
        total=total,
        short_in=min(shorts) if shorts else None,
    )


def _sum_year(fy: int, rows: list[ForecastYear]) -> ForecastYear:
    ceilinged = bool(rows) and all(r.ceiling is not None for r in rows)
    return ForecastYear(
        fiscal_year=fy,
        ceiling=sum(r.ceiling or 0 for r in rows) if ceilinged else None,
        carried_in=sum(r.carried_in for r in rows),
        committed=sum(r.committed for r in rows),
        planned=sum(r.planned for r in rows),
        available=sum(r.available or 0 for r in rows) if ceilinged else None,
    )
