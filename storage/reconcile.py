"""Reconciliation: each project's ledger figures against what its workflow believes.

The workflow side comes from a callable (the API and the CLI pass one that asks Temporal), so
this module stays a database module. A drift is reported in words; nothing is corrected here.
Projects are read a page at a time (keyset by id) with their ledger figures in a few batched
reads, and the drifts are streamed: memory stays flat however many projects there are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.project import ProjectStatus
from storage import ledger
from storage.models import AccountBalance, Project, Reservation, Tranche


@dataclass(frozen=True)
class WorkflowView:
    """What the workflow says: `status` is the project status (or how Temporal closed it)."""

    found: bool
    running: bool = False
    status: str = ""
    stage_no: int | None = None
    in_stage: bool = False
    tranches_paid: list[int] = field(default_factory=list)
    # Why the workflow could not say (a workflow task that keeps failing, a query it cannot
    # answer): that project's drift, never a failure of the whole reconciliation.
    problem: str = ""


@dataclass(frozen=True)
class Drift:
    project_id: str
    problem: str  # in English, for the API and the CLI
    # What kind of drift and its figures, so a page can explain it in its reader's language.
    kind: str = ""
    facts: dict[str, int | str] = field(default_factory=dict)


class _Found(list[tuple[str, str, dict[str, int | str]]]):
    def add(self, kind: str, text: str, **facts: int | str) -> None:
        self.append((kind, text, facts))


@dataclass
class Reconciliation:
    checked: int = 0
    drifts: list[Drift] = field(default_factory=list)


class ProjectRef(Protocol):
    """The columns of a project the reconciliation reads (a row, not an ORM object: nothing is
    kept in the session however many pages go by)."""

    id: str
    workflow_id: str
    status: str


# The workflow side, a page of projects at a time: what each project's workflow believes, by id.
ViewsOf = Callable[[Sequence[ProjectRef]], Awaitable[dict[str, WorkflowView]]]
PAGE = 500  # projects per page: one visibility query and four ledger reads each


@dataclass
class _Ledger:
    """One project's ledger figures, as the drift rules read them."""

    tranches: list[tuple[int, int, int, bool]] = field(default_factory=list)  # stage, tranche, amount, reversed
    paid: int = 0
    open_count: int = 0
    reserved_stages: set[int] = field(default_factory=set)  # part 0 reservations


@dataclass
class Tally:
    """How far a streamed reconciliation got: projects checked, drifts found."""

    checked: int = 0
    drifts: int = 0


async def stream(
    session: AsyncSession,
    views_of: ViewsOf,
    tally: Tally,
    *,
    page_size: int = PAGE,
    project_id: str | None = None,
) -> AsyncIterator[Drift]:
    """Every drift, page by page (keyset by project id): memory holds one page of projects,
    their ledger figures and workflow views, never all of them."""
    after = ""
    while True:
        query = (
            select(Project.id, Project.workflow_id, Project.status)
            .where(Project.id > after)
            .order_by(Project.id)
            .limit(page_size)
        )
        if project_id is not None:
            query = query.where(Project.id == project_id)
        page = (await session.execute(query)).all()
        if not page:
            return
        views = await views_of(page)
        figures = await _ledger_figures(session, [p.id for p in page])
        for project in page:
            tally.checked += 1
            for kind, text, facts in _project_drift(project, figures[project.id], views[project.id]):
                tally.drifts += 1
                yield Drift(project.id, text, kind, facts)
        after = page[-1].id


async def reconcile(
    session: AsyncSession, view_of: Callable[[ProjectRef], Awaitable[WorkflowView]], project_id: str | None = None
) -> Reconciliation:
    """The whole result at once, asking about one project at a time (the daily repair's and the
    pages' way, and the reference the streamed, paged one is tested against)."""

    async def views_of(page: Sequence[ProjectRef]) -> dict[str, WorkflowView]:
        return {p.id: await view_of(p) for p in page}

    tally = Tally()
    drifts = [d async for d in stream(session, views_of, tally, project_id=project_id)]
    return Reconciliation(checked=tally.checked, drifts=drifts)


async def _ledger_figures(session: AsyncSession, ids: list[str]) -> dict[str, _Ledger]:
    """The page's ledger figures in four reads, whatever the page's size."""
    figures = {pid: _Ledger() for pid in ids}
    for pid, stage_no, tranche_no, amount, reversal in await session.execute(
        select(
            Tranche.project_id, Tranche.stage_no, Tranche.tranche_no, Tranche.amount, Tranche.reversal_transaction_id
        ).where(Tranche.project_id.in_(ids))
    ):
        figures[pid].tranches.append((stage_no, tranche_no, amount, reversal is not None))
    accounts = {ledger.paid_account(pid): pid for pid in ids}
    for account, total in await session.execute(
        select(AccountBalance.account, func.sum(AccountBalance.balance))
        .where(AccountBalance.account.in_(list(accounts)))
        .group_by(AccountBalance.account)
    ):
        figures[accounts[account]].paid = int(total)
    for pid, count in await session.execute(
        select(Reservation.project_id, func.count())
        .where(Reservation.project_id.in_(ids), Reservation.status == "open")
        .group_by(Reservation.project_id)
    ):
        figures[pid].open_count = int(count)
    for pid, stage_no in await session.execute(
        select(Reservation.project_id, Reservation.stage_no).where(
            Reservation.project_id.in_(ids), Reservation.part == 0
        )
    ):
        figures[pid].reserved_stages.add(stage_no)
    return figures


def _project_drift(project: ProjectRef, figures: _Ledger, wf: WorkflowView) -> _Found:
    problems = _Found()
    recorded = sum(amount for _, _, amount, reversed_ in figures.tranches if not reversed_)
    paid = figures.paid
    if paid != recorded:
        problems.add(
            "paid_mismatch",
            f"the ledger has paid {paid} yen but the tranches on record total {recorded} yen",
            paid=paid,
            recorded=recorded,
        )
    open_count = figures.open_count
    if not wf.found:
        problems.add(
            "no_workflow", f"no workflow {project.workflow_id} exists for this project", workflow=project.workflow_id
        )
        return problems
    if wf.problem:
        problems.add(
            "workflow_silent",
            f"the workflow {project.workflow_id} cannot say what it believes: {wf.problem}",
            workflow=project.workflow_id,
            detail=wf.problem,
        )
        return problems
    if not wf.running and open_count:
        problems.add(
            "ended_with_open",
            f"the workflow has ended ({wf.status}) but {open_count} reservation(s) are still open",
            status=wf.status,
            count=int(open_count),
        )
    # A workflow Temporal closed ("workflow terminated", ...) whose project the repair closed out
    # (workflows/repair.py) agrees with its row: the stop was made, if late.
    repaired = wf.status.startswith("workflow ") and project.status == ProjectStatus.TERMINATED
    if wf.status and wf.status != project.status and not repaired:
        problems.add(
            "status_mismatch",
            f"the database says {project.status} but the workflow says {wf.status}",
            database=str(project.status),
            workflow=wf.status,
        )
    if wf.running and wf.in_stage and wf.stage_no is not None:
        in_ledger = {tranche for stage, tranche, _, _ in figures.tranches if stage == wf.stage_no}
        believed = set(wf.tranches_paid)
        for n in sorted(believed - in_ledger):
            problems.add(
                "unpaid_in_ledger",
                f"the workflow counts tranche {n} of stage {wf.stage_no} paid; the ledger has no payment",
                tranche=n,
                stage=wf.stage_no,
            )
        for n in sorted(in_ledger - believed):
            problems.add(
                "unknown_to_workflow",
                f"the ledger paid tranche {n} of stage {wf.stage_no}, which the workflow has not recorded "
                "(a payment in flight shows here until it completes)",
                tranche=n,
                stage=wf.stage_no,
            )
        if wf.stage_no not in figures.reserved_stages:
            problems.add(
                "no_reservation",
                f"the workflow is in stage {wf.stage_no} but the ledger holds no reservation for it",
                stage=wf.stage_no,
            )
    return problems
