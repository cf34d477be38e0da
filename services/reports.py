"""Progress reports as their performers and programme managers see them: the user's projects (paged
and counted in SQL) with each fiscal year's report, and which years are due or overdue on the
project's own programme calendar, computed by the rule the workflow pays by
(domain/fiscal.reports_due_before)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from domain.fiscal import fiscal_year, fiscal_year_end, reports_due_before
from domain.project import ProjectSnapshot, ProjectStatus
from domain.roles import Role
from storage.access import readable_sql
from storage.models import ProgressReport, Project, User

# Only a running project files reports (the workflow refuses them once its funding has ended).
REPORTING = (ProjectStatus.ACTIVE.value, ProjectStatus.ON_HOLD.value)
_QUERY_TIMEOUT = timedelta(seconds=3)


@dataclass(frozen=True)
class Calendar:
    """A project's programme calendar as its workflow keeps it: day 0 and today."""

    start: date
    today: date


@dataclass(frozen=True)
class YearReport:
    fiscal_year: int
    # due | overdue | submitted | returned | accepted
    status: str
    due_on: date
    overdue: bool  # the year has ended and the performer still owes an (acceptable) report
    note: str = ""


@dataclass(frozen=True)
class ProjectReports:
    project: Project
    years: list[YearReport]
    calendar_known: bool


@dataclass(frozen=True)
class ReportsPage:
    rows: list[ProjectReports]
    total: int
    page: int
    pages: int


def _reporter_of(user: User) -> ColumnElement[bool]:
    """The projects whose reports this user files or reviews: a performer's own, a PM's own, all
    for an admin; closed work only where the user holds a grant (the access policy still decides)."""
    roles = set(user.roles)
    if Role.ADMIN.value in roles:
        return true()
    mine: list[ColumnElement[bool]] = []
    if Role.PM.value in roles:
        mine.append(Project.programme_manager == user.username)
    if Role.PERFORMER.value in roles:
        mine.append(Project.performer == user.username)
    return or_(*mine) if mine else false()


async def reporting_projects(
    session: AsyncSession, user: User, page: int = 1, per_page: int = 20
) -> tuple[list[Project], int, int, int]:
    """A page of the user's projects (running first, then newest), with the count and pages."""
    where = (_reporter_of(user), readable_sql(user))
    total = int(await session.scalar(select(func.count()).select_from(Project).where(*where)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    running = Project.status.in_(REPORTING)
    rows = await session.scalars(
        select(Project)
        .where(*where)
        .order_by(running.desc(), Project.created_at.desc(), Project.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows.all()), total, page, pages


async def reports_of(session: AsyncSession, project_ids: list[str]) -> dict[str, dict[int, ProgressReport]]:
    """Every filed report of these projects, by project and fiscal year (one query)."""
    out: dict[str, dict[int, ProgressReport]] = {pid: {} for pid in project_ids}
    if project_ids:
        for r in await session.scalars(select(ProgressReport).where(ProgressReport.project_id.in_(project_ids))):
            out[r.project_id][r.fiscal_year] = r
    return out


def year_reports(filed: dict[int, ProgressReport], calendar: Calendar | None) -> list[YearReport]:
    """Each fiscal year with a report filed or owed, newest first. Owed: every year ended since the
    calendar began (overdue unless accepted, as the tranches are held), and the year under way
    (due at its end)."""
    ended = set(reports_due_before(calendar.start, calendar.today)) if calendar else set()
    years = set(filed) | ended | ({fiscal_year(calendar.today)} if calendar else set())
    out = []
    for fy in sorted(years, reverse=True):
        report = filed.get(fy)
        status = report.status.value if report is not None else ("overdue" if fy in ended else "due")
        owed = status in ("overdue", "returned") and fy in ended
        out.append(YearReport(fy, status, fiscal_year_end(fy), owed, report.note if report is not None else ""))
    return out


async def calendar_of(client: Client | None, project: Project) -> Calendar | None:
    """The programme calendar from the project's workflow (None when it cannot answer now, or the
    project no longer reports): only the workflow knows its simulated days and holds."""
    if client is None or project.status not in REPORTING:
        return None
    try:
        handle = client.get_workflow_handle(project.workflow_id)
        snap: ProjectSnapshot = await handle.query("status", result_type=ProjectSnapshot, rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):  # not connected, down, slow, gone: no live calendar
        return None
    money = snap.money
    if money is None or money.calendar_start is None or money.programme_date is None:
        return None
    return Calendar(money.calendar_start, money.programme_date)


@dataclass(frozen=True)
class FiledPage:
    """A page of projects and their filed reports, read in SQL (no calendar yet)."""

    projects: list[Project]
    filed: dict[str, dict[int, ProgressReport]]
    total: int
    page: int
    pages: int


async def filed_page(session: AsyncSession, user: User, page: int = 1, per_page: int = 20) -> FiledPage:
    projects, total, page, pages = await reporting_projects(session, user, page, per_page)
    return FiledPage(projects, await reports_of(session, [p.id for p in projects]), total, page, pages)


async def with_calendars(client: Client | None, found: FiledPage) -> ReportsPage:
    """The page's years, once each project's workflow has said where its calendar is (asked
    together, after the database session is handed back)."""
    calendars = await asyncio.gather(*(calendar_of(client, p) for p in found.projects))
    rows = [
        ProjectReports(p, year_reports(found.filed[p.id], cal), cal is not None)
        for p, cal in zip(found.projects, calendars, strict=True)
    ]
    return ReportsPage(rows, found.total, found.page, found.pages)
