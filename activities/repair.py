"""The daily repair's activities (workflows/repair.py) and the schedule the worker keeps for it.

Terminating a project's workflow in Temporal skips its clean stop. The repair finds such projects
through Temporal's visibility (closed project workflows whose row still says the project lives),
and the workflow then runs the clean stop's own activities on them: the same ledger release and
close-out, keyed alike, so a repair after a partial stop, or two repairs, change nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.base import SYSTEM_ACTOR, DatabaseActivities
from activities.notices import store_notice
from activities.schedules import ensure_schedule
from domain.handoff import HandoffKind, HandoffWithdrawal, handoff_workflow_id
from domain.project import ProjectStatus
from domain.statuses import HandoffStatus
from services.workflow_views import workflow_views
from storage import reconcile, repair_runs
from storage.audit import audit
from storage.models import Handoff, Project, utcnow
from storage.reconcile import Tally, WorkflowView
from storage.reconcile import stream as reconcile_stream

SCHEDULE_ID = "trlgate-repair"
REASON = "terminated outside trlgate: repaired by the daily reconciliation"
# Scans read every project (visibility, then the reconciliation): longer than a short write.
SCAN_TIMEOUT = timedelta(minutes=30)
SCAN_HEARTBEAT = timedelta(minutes=1)
# A project's workflow ended without its stop when it closed in any of these ways; Completed and
# ContinuedAsNew are the workflow's own ends.
CLOSED_WITHOUT_STOP = ("Terminated", "Failed", "TimedOut", "Canceled")
LIVING = (ProjectStatus.ACTIVE.value, ProjectStatus.ON_HOLD.value, ProjectStatus.HANDOFF.value)
_BATCH = 200  # workflow ids looked up in the database at once


class RepairRequest(BaseModel):
    ran_by: str = "schedule"
    # A run that continued as new carries what it did so far and the projects it gave up on.
    carried: RepairResult | None = None
    skip: list[str] = []


class FindRepairsInput(BaseModel):
    skip: list[str] = []  # projects whose repair failed in this run: reported, not tried again
    limit: int = 50


class RepairCandidate(BaseModel):
    project_id: str
    closed_as: str  # how Temporal closed its workflow: terminated, failed, timed_out, canceled
    trl: int
    stage_no: int


class FindRepairsResult(BaseModel):
    candidates: list[RepairCandidate]
    more: bool  # the limit was reached: ask again once these are repaired


class ProjectRef(BaseModel):
    project_id: str


class RepairNoticeInput(BaseModel):
    project_id: str
    closed_as: str
    released: int
    document_id: str


class RepairedProject(BaseModel):
    project_id: str
    released: int  # yen back in the fund from the project's reservations
    document_id: str  # its close-out report


class DriftItem(BaseModel):
    project_id: str
    kind: str
    problem: str


class RepairResult(BaseModel):
    repaired: list[RepairedProject] = []
    drift: list[DriftItem] = []

    @property
    def released(self) -> int:
        return sum(r.released for r in self.repaired)

    def details(self) -> str:
        """Counts only: Temporal shows current details in clear, and project ids may be closed work."""
        return (
            f"repaired {len(self.repaired)} project(s), released {self.released:,} yen, "
            f"{len(self.drift)} drift item(s) left for people"
        )


class RecordRepairInput(BaseModel):
    key: str
    ran_by: str
    result: RepairResult


class RecordRepairResult(BaseModel):
    run_id: int


RepairRequest.model_rebuild()


class RepairActivities(DatabaseActivities):
    @activity.defn
    async def find_repairs(self, input: FindRepairsInput) -> FindRepairsResult:
        """Projects whose workflow closed without the clean stop while their row says they live.
        Reads visibility in pages (one list, not a describe per project) and describes only the
        few it finds: a reset leaves a terminated run behind a running one."""
        client = activity.client()
        statuses = ", ".join(f'"{s}"' for s in CLOSED_WITHOUT_STOP)
        query = (
            f'WorkflowType="ProjectWorkflow" AND TaskQueue="{activity.info().task_queue}" '
            f"AND ExecutionStatus IN ({statuses})"
        )
        seen: set[str] = set()
        batch: list[str] = []
        found: list[RepairCandidate] = []
        async for execution in client.list_workflows(query, page_size=_BATCH):
            if execution.id in seen:
                continue
            seen.add(execution.id)
            batch.append(execution.id)
            if len(batch) == _BATCH:
                found += await self._living(client, batch, input.skip)
                batch = []
                activity.heartbeat(len(seen))
            if len(found) >= input.limit:
                return FindRepairsResult(candidates=found[: input.limit], more=True)
        found += await self._living(client, batch, input.skip)
        return FindRepairsResult(candidates=found[: input.limit], more=len(found) > input.limit)

    async def _living(self, client: Client, workflow_ids: list[str], skip: list[str]) -> list[RepairCandidate]:
        if not workflow_ids:
            return []
        async with self.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(Project)
                    .where(Project.workflow_id.in_(workflow_ids), Project.status.in_(LIVING))
                    .order_by(Project.id)
                )
            ).all()
        out = []
        for project in rows:
            if project.id in skip:
                continue
            try:
                latest = await client.get_workflow_handle(project.workflow_id).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    continue  # gone past retention since it was listed: the reconciliation reports it
                raise
            if latest.status in (None, WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
                continue  # reset and running again, or completed after all: not ours to stop
            out.append(
                RepairCandidate(
                    project_id=project.id,
                    closed_as=latest.status.name.lower(),
                    trl=project.current_trl,
                    stage_no=project.stage_no,
                )
            )
        return out

    @activity.defn
    async def withdraw_handoffs(self, input: ProjectRef) -> int:
        """Hand-off workflows outlive their project (ParentClosePolicy.ABANDON): withdraw the
        open ones as the clean stop does, or they would go on reminding liaisons. A hand-off takes
        a withdrawal once; one that has ended is past asking."""
        from workflows.handoff import HandoffWorkflow

        async with self.sessionmaker() as session:
            handoffs = (
                await session.scalars(
                    select(Handoff).where(Handoff.project_id == input.project_id, Handoff.status == "pending")
                )
            ).all()
            targets = [
                h.workflow_id or handoff_workflow_id(h.project_id, h.ministry, HandoffKind(h.kind)) for h in handoffs
            ]
        withdrawn = 0
        for workflow_id in targets:
            try:
                await (
                    activity.client()
                    .get_workflow_handle(workflow_id)
                    .signal(
                        HandoffWorkflow.withdraw,
                        HandoffWithdrawal(status=HandoffStatus.CANCELLED, reason="The project stopped"),
                    )
                )
                withdrawn += 1
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
        return withdrawn

    @activity.defn
    async def notify_repaired(self, input: RepairNoticeInput) -> None:
        """Tell the programme manager, once (keyed by project and repair): their project was
        stopped by someone outside trlgate, which they may not know."""

        async def work(session: AsyncSession) -> None:
            project = await session.get(Project, input.project_id)
            assert project is not None
            message = (
                f"The workflow of {project.id} was {input.closed_as.replace('_', ' ')} in Temporal, outside trlgate. "
                f"The daily repair released {input.released:,} yen to the fund and wrote its close-out report "
                f"({input.document_id}). If the project should not have stopped, start it again."
            )
            key = f"{project.id}-repaired"
            if await store_notice(
                session, key, project.id, project.programme_manager, "project_repaired", message, utcnow()
            ):
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "project_repaired",
                    f"project:{project.id}",
                    closed_as=input.closed_as,
                    released=input.released,
                )

        await self.transact(work)

    @activity.defn
    async def find_drift(self) -> list[DriftItem]:
        """The reconciliation's drift (storage/reconcile.py), reported and left alone: what the
        repair could not put right is for people to look at. A page of projects at a time,
        their workflows read through visibility; a heartbeat per page."""
        client = activity.client()
        tally = Tally()

        async def views(page: Sequence[reconcile.ProjectRef]) -> dict[str, WorkflowView]:
            activity.heartbeat(tally.checked)
            return await workflow_views(client, page)

        async with self.sessionmaker() as session:
            return [
                DriftItem(project_id=d.project_id, kind=d.kind, problem=d.problem)
                async for d in reconcile_stream(session, views, tally)
            ]

    @activity.defn
    async def record_run(self, input: RecordRepairInput) -> RecordRepairResult:
        async def work(session: AsyncSession) -> RecordRepairResult:
            run = await repair_runs.record(
                session,
                key=input.key,
                ran_by=input.ran_by,
                repaired=[r.model_dump() for r in input.result.repaired],
                drift=[d.model_dump() for d in input.result.drift],
            )
            return RecordRepairResult(run_id=run.id)

        return await self.transact(work)


async def ensure_repair_schedule(client: Client, task_queue: str, every: timedelta) -> bool:
    """Create the repair's schedule unless it exists (see activities/schedules.py)."""
    from workflows.repair import RepairWorkflow

    action = ScheduleActionStartWorkflow(RepairWorkflow.run, RepairRequest(), id=SCHEDULE_ID, task_queue=task_queue)
    return await ensure_schedule(client, SCHEDULE_ID, action, every)
