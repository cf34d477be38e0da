"""Reconciliation: each project's ledger figures against what its workflow believes.

The workflow side comes from a callable (the API and the CLI pass one that asks Temporal), so
this module stays a database module. A drift is reported in words; nothing is corrected here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.project import ProjectStatus
from storage import ledger
from storage.models import Project, Reservation, Tranche


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


async def reconcile(
    session: AsyncSession, view_of: Callable[[Project], Awaitable[WorkflowView]], project_id: str | None = None
) -> Reconciliation:
    result = Reconciliation()
    query = select(Project).order_by(Project.id)
    if project_id is not None:
        query = query.where(Project.id == project_id)
    for project in (await session.scalars(query)).all():
        result.checked += 1
        found = await _project_drift(session, project, await view_of(project))
        result.drifts += [Drift(project.id, text, kind, facts) for kind, text, facts in found]
    return result


async def _project_drift(session: AsyncSession, project: Project, wf: WorkflowView) -> _Found:
    problems = _Found()
    tranches = (await session.scalars(select(Tranche).where(Tranche.project_id == project.id))).all()
    recorded = sum(t.amount for t in tranches if t.reversal_transaction_id is None)
    paid = await ledger.balance(session, ledger.paid_account(project.id))
    if paid != recorded:
        problems.add(
            "paid_mismatch",
            f"the ledger has paid {paid} yen but the tranches on record total {recorded} yen",
            paid=paid,
            recorded=recorded,
        )
    open_count = await session.scalar(
        select(func.count())
        .select_from(Reservation)
        .where(Reservation.project_id == project.id, Reservation.status == "open")
    )
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
        in_ledger = {t.tranche_no for t in tranches if t.stage_no == wf.stage_no}
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
        reserved = await session.get(Reservation, (project.id, wf.stage_no, 0))
        if reserved is None:
            problems.add(
                "no_reservation",
                f"the workflow is in stage {wf.stage_no} but the ledger holds no reservation for it",
                stage=wf.stage_no,
            )
    return problems
