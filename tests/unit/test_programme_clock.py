"""domain/programme_clock.py: programme dates from workflow time, stage days, hold shifts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.fiscal import fiscal_year
from domain.programme_clock import ProgrammeClock, paused_after_hold, started_clock

ORIGIN = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)  # 12:00 in Japan
MINUTE_DAYS = ProgrammeClock(ORIGIN, date(2026, 4, 1), seconds_per_day=60)


def test_a_started_clock_begins_on_the_proposals_start_date() -> None:
    clock = started_clock(ORIGIN, date(2026, 4, 1), 60)
    assert clock.started and clock.day(ORIGIN) == date(2026, 4, 1)


def test_without_a_start_date_day_zero_is_today_in_japan() -> None:
    late_evening_utc = datetime(2026, 5, 1, 20, 0, tzinfo=UTC)  # already 2 May in Japan
    assert started_clock(late_evening_utc, None, 86400).day(late_evening_utc) == date(2026, 5, 2)


def test_simulated_days_pass_at_seconds_per_day() -> None:
    assert MINUTE_DAYS.day(ORIGIN + timedelta(seconds=59)) == date(2026, 4, 1)
    assert MINUTE_DAYS.day(ORIGIN + timedelta(minutes=365)) == date(2027, 4, 1)
    assert fiscal_year(MINUTE_DAYS.day(ORIGIN + timedelta(minutes=365))) == 2027


def test_a_stopped_clock_stays_on_its_start_and_sets_no_hold_limit() -> None:
    stopped = ProgrammeClock(ORIGIN, date(2026, 4, 1), seconds_per_day=0)
    assert stopped.day(ORIGIN + timedelta(days=900)) == date(2026, 4, 1)
    assert stopped.days(30) == timedelta(0)
    assert stopped.hold_limit(ORIGIN, 180) is None


def test_before_the_calendar_starts_a_day_is_the_date_in_japan() -> None:
    unstarted = ProgrammeClock(None, None, 60)
    assert not unstarted.started
    assert unstarted.day(datetime(2026, 5, 1, 16, 0, tzinfo=UTC)) == date(2026, 5, 2)


def test_stage_days_move_on_by_the_time_spent_on_hold() -> None:
    started = ORIGIN + timedelta(minutes=10)
    assert MINUTE_DAYS.at_day(started, 30, 0) == started + timedelta(minutes=30)
    assert MINUTE_DAYS.at_day(started, 30, 90.0) == started + timedelta(minutes=30, seconds=90)


def test_a_hold_past_the_programmes_limit_is_dated_in_programme_days() -> None:
    assert MINUTE_DAYS.hold_limit(ORIGIN, 180) == ORIGIN + timedelta(minutes=180)


@given(
    paused=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    held=st.integers(min_value=0, max_value=10**7),
    due_in=st.integers(min_value=0, max_value=3650),
)
def test_after_a_hold_every_due_day_moves_by_the_hold(paused: float, held: int, due_in: int) -> None:
    since = ORIGIN + timedelta(days=3)
    after = paused_after_hold(paused, since, since + timedelta(seconds=held))
    assert after == paused + held
    shift = MINUTE_DAYS.at_day(ORIGIN, due_in, after) - MINUTE_DAYS.at_day(ORIGIN, due_in, paused)
    assert abs(shift.total_seconds() - held) < 1e-3


def test_a_programme_day_begins_at_its_moment_on_the_workflow_clock() -> None:
    origin = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    clock = ProgrammeClock(origin, date(2026, 10, 1), 60.0)
    moment = clock.moment(date(2027, 4, 1))  # FY2026 ends: day 182
    assert moment == origin + timedelta(seconds=182 * 60)
    assert clock.day(moment) == date(2027, 4, 1) and clock.day(moment - timedelta(seconds=1)) == date(2027, 3, 31)
    assert ProgrammeClock(origin, date(2026, 10, 1), 0).moment(date(2027, 4, 1)) is None  # the clock stopped
    assert ProgrammeClock(None, None, 60.0).moment(date(2027, 4, 1)) is None  # not started
