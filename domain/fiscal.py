"""Japanese fiscal years (1 April - 31 March) and a project's programme calendar.

Pure and sandbox-safe: the project workflow uses it to date tranches and reports.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")  # Japan keeps no daylight saving time


def fiscal_year(day: date) -> int:
    """FY2026 runs from 1 April 2026 to 31 March 2027."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_start(fy: int) -> date:
    return date(fy, 4, 1)


def fiscal_year_end(fy: int) -> date:
    return date(fy + 1, 3, 31)


def jst_date(moment: datetime) -> date:
    return moment.astimezone(JST).date() if moment.tzinfo else moment.replace(tzinfo=UTC).astimezone(JST).date()


def programme_date(origin: datetime, start: date, now: datetime, seconds_per_day: float) -> date:
    """The programme date of `now` for a project whose day 0 (`start`) began at `origin`.

    A project's calendar runs in simulated days (`seconds_per_day` real seconds each) so a demo
    or a test can live through fiscal years in minutes; in production a day is 86,400 s and this
    is the calendar date in Japan.
    """
    if seconds_per_day <= 0:
        return start
    return start + timedelta(days=int((now - origin).total_seconds() // seconds_per_day))


def reports_due_before(start: date, day: date) -> list[int]:
    """Fiscal years whose progress report must be accepted before a payment on `day`: every year
    that has ended since the project started."""
    return list(range(fiscal_year(start), fiscal_year(day)))


class FiscalYearFunds:
    """One ministry's fiscal year: its ceiling, what earlier years carried in, and commitments."""

    __slots__ = ("carried_in", "ceiling", "fiscal_year", "paid", "reserved")

    def __init__(self, fiscal_year: int, ceiling: int | None, carried_in: int, reserved: int, paid: int) -> None:
        self.fiscal_year = fiscal_year
        self.ceiling = ceiling
        self.carried_in = carried_in
        self.reserved = reserved
        self.paid = paid

    @property
    def committed(self) -> int:
        return self.reserved + self.paid

    @property
    def available(self) -> int | None:
        """None when the year has no ceiling (only the ministry's allocation binds)."""
        return None if self.ceiling is None else self.ceiling + self.carried_in - self.committed


def fiscal_years(ceilings: dict[int, int], reserved: dict[int, int], paid: dict[int, int]) -> list[FiscalYearFunds]:
    """Carry-over: what a ceilinged year leaves uncommitted carries into the next year when that
    year has a ceiling too. A year without a ceiling is unlimited and starts the carry afresh, so
    the rule is the same as "commitments through any ceilinged year stay within the ceilings of
    its unbroken run of ceilinged years"."""
    years = sorted(set(ceilings) | {fy for fy, v in reserved.items() if v} | {fy for fy, v in paid.items() if v})
    out: list[FiscalYearFunds] = []
    carry = 0
    for i, fy in enumerate(years):
        if i == 0 or years[i - 1] != fy - 1 or fy - 1 not in ceilings:
            carry = 0
        row = FiscalYearFunds(
            fy, ceilings.get(fy), carry if fy in ceilings else 0, reserved.get(fy, 0), paid.get(fy, 0)
        )
        out.append(row)
        carry = row.available if row.available is not None else 0
    return out
