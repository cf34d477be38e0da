"""The programme clock of one project: workflow time to programme dates, simulated days, stage
days and the time a hold pauses them.

Pure and sandbox-safe. The project workflow reads `workflow.now()` and passes it in, so every
rule here is tested without a Temporal server (tests/unit/test_programme_clock.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from domain.fiscal import jst_date, programme_date


@dataclass(frozen=True)
class ProgrammeClock:
    """`start` is the programme date at workflow time `origin`; a day lasts `seconds_per_day`
    (86,400 in production; a demo or a test lives through years in minutes; 0 stops the clock)."""

    origin: datetime | None
    start: date | None
    seconds_per_day: float

    @property
    def started(self) -> bool:
        return self.origin is not None and self.start is not None

    def day(self, moment: datetime) -> date:
        """The programme date of a moment on the workflow clock (with simulated days the real date
        is not the one people plan by). Before the calendar starts: the date in Japan."""
        if self.origin is None or self.start is None:
            return jst_date(moment)
        return programme_date(self.origin, self.start, moment, self.seconds_per_day)

    def moment(self, day: date) -> datetime | None:
        """When `day` begins on the workflow clock (None before the calendar starts, or with the
        clock stopped: that day never comes)."""
        if self.origin is None or self.start is None or self.seconds_per_day <= 0:
            return None
        return self.origin + self.days((day - self.start).days)

    def days(self, n: float) -> timedelta:
        """`n` programme days on the workflow clock."""
        return timedelta(seconds=n * self.seconds_per_day)

    def at_day(self, stage_started_at: datetime, n: int, paused_seconds: float) -> datetime:
        """Day `n` of a stage on the workflow clock; time spent on hold does not count."""
        return stage_started_at + self.days(n) + timedelta(seconds=paused_seconds)

    def hold_limit(self, since: datetime, max_hold_days: int) -> datetime | None:
        """When a hold that began at `since` runs past the programme's limit (None with the clock
        stopped: simulated time never passes, so no hold can outlast a limit)."""
        if self.seconds_per_day <= 0:
            return None
        return since + self.days(max_hold_days)


def started_clock(now: datetime, start_date: date | None, seconds_per_day: float) -> ProgrammeClock:
    """Day 0 of a project's calendar: the proposal's start date (or today in Japan) begins now."""
    return ProgrammeClock(origin=now, start=start_date or jst_date(now), seconds_per_day=seconds_per_day)


def paused_after_hold(paused_seconds: float, since: datetime, now: datetime) -> float:
    """The stage's paused time once a hold that began at `since` ends at `now`: its due dates
    move on by exactly the time spent on hold."""
    return paused_seconds + (now - since).total_seconds()
