"""Gate activities: record a gate's decision (the gate review workflow records the rest)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import DatabaseActivities
from domain.command import Command
from domain.project import Decision, Recommendation
from domain.statuses import GateStatus, StageStatus, TaskStatus
from storage.audit import audit_effect
from storage.models import Gate, GateDecision, Project, ReviewTask, Stage, utcnow

STAGE_STATUS_AFTER = {
    Decision.GO: StageStatus.PASSED,
    Decision.CONDITIONAL_GO: StageStatus.PASSED,
    Decision.KILL: StageStatus.STOPPED,
    Decision.HOLD: StageStatus.ON_HOLD,
    Decision.RECYCLE: StageStatus.RECYCLED,
}


class RecordDecisionInput(BaseModel):
    project_id: str
    gate_no: int
    decision: Decision
    decided_by: str
    justification: str
    recommendation: Recommendation | None
    decided_at: datetime
    trl: int
    round: int = 1
    terms: dict[str, object] | None = None
    command: Command | None = None  # the decision's command (its row is written once, by key)


class GateActivities(DatabaseActivities):
    @activity.defn
    async def record_decision(self, input: RecordDecisionInput) -> None:
        async def work(session: AsyncSession) -> None:
            if await session.get(GateDecision, (input.project_id, input.gate_no, input.round)) is not None:
                return
            session.add(
                GateDecision(
                    project_id=input.project_id,
                    gate_no=input.gate_no,
                    round=input.round,
                    terms=input.terms,
                    decision=input.decision.value,
                    decided_by=input.decided_by,
                    justification=input.justification,
                    recommendation=input.recommendation.model_dump(mode="json") if input.recommendation else None,
                    decided_at=input.decided_at,
                )
            )
            gate = await session.get(Gate, (input.project_id, input.gate_no))
            if gate is not None:
                gate.status = GateStatus.DECIDED
            stage = await session.get(Stage, (input.project_id, input.gate_no))
            if stage is not None:
                stage.status = STAGE_STATUS_AFTER[input.decision]
            project = await session.get(Project, input.project_id)
            if project is not None:
                project.current_trl = input.trl
            # Tasks of reviewers who never reviewed cannot stay open past a decision.
            for task in (
                await session.scalars(
                    select(ReviewTask).where(
                        ReviewTask.project_id == input.project_id,
                        ReviewTask.gate_no == input.gate_no,
                        ReviewTask.status.in_(("open", "invited", "accepted")),
                    )
                )
            ).all():
                task.status = TaskStatus.CANCELLED
                task.closed_at = utcnow()
            await audit_effect(
                session,
                input.command,
                input.decided_by,
                "decision_recorded",
                f"gate:{input.project_id}/{input.gate_no}",
                decision=input.decision.value,
            )

        await self.transact(work)
