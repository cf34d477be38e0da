"""The gauge of tranches held for progress reports, counted in SQL from the workflows' reminders
(the fiscal year is in each reminder's business key) against the reports accepted since."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.programme import PROGRAMME_CODE
from domain.statuses import ReportStatus
from storage.db import make_engine, make_sessionmaker
from storage.models import Notification, ProgressReport
from telemetry.gauges import Waiting, read_snapshot
from tests.support import ledger_project


def _reminder(pid: str, fy: int, n: int) -> Notification:
    return Notification(
        key=f"project-{pid}-report-FY{fy}-reminder-{n}",
        project_id=pid,
        recipient="perf.aoki",
        kind="report_overdue",
        message=f"The FY{fy} progress report is overdue",
        at=datetime.now(UTC),
    )


def _report(pid: str, fy: int, status: ReportStatus) -> ProgressReport:
    now = datetime.now(UTC)
    return ProgressReport(
        project_id=pid,
        fiscal_year=fy,
        status=status,
        summary="work as planned",
        submitted_by="perf.aoki",
        submitted_at=now,
    )


async def test_projects_held_for_a_report_are_counted_once_until_it_is_accepted(db_url: str) -> None:
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    try:
        async with sm.begin() as s:
            for pid, status in (
                ("KP-R1", "active"),
                ("KP-R2", "on_hold"),
                ("KP-R3", "active"),
                ("KP-R4", "terminated"),
            ):
                project = ledger_project(pid, PROGRAMME_CODE, "MEXT", 1_000_000)
                project.status = status  # type: ignore[assignment]
                s.add(project)
            await s.flush()
            # R1: reminded three times of FY2026, whose report was returned: held (counted once).
            s.add_all([_reminder("KP-R1", 2026, n) for n in (1, 2, 3)])
            s.add(_report("KP-R1", 2026, ReportStatus.RETURNED))
            # R2: FY2026 accepted since, FY2027 still missing: held (on hold counts as running).
            s.add_all([_reminder("KP-R2", 2026, 1), _reminder("KP-R2", 2027, 1)])
            s.add(_report("KP-R2", 2026, ReportStatus.ACCEPTED))
            # R3: its only reminded year is accepted: paid on. R4: stopped: nothing waits.
            s.add(_reminder("KP-R3", 2026, 1))
            s.add(_report("KP-R3", 2026, ReportStatus.ACCEPTED))
            s.add(_reminder("KP-R4", 2026, 1))
        async with sm() as s:
            assert (await read_snapshot(s)).tranches_waiting[Waiting.REPORT] == 2
        async with sm.begin() as s:
            report = await s.get(ProgressReport, ("KP-R1", 2026))
            assert report is not None
            report.status = ReportStatus.ACCEPTED
        async with sm() as s:
            assert (await read_snapshot(s)).tranches_waiting[Waiting.REPORT] == 1
    finally:
        await engine.dispose()
