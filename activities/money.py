"""Money activities: reserve a stage's budget, pay a tranche, release what is unpaid."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import SYSTEM_ACTOR, DatabaseActivities
from storage import ledger
from storage.audit import audit
from storage.models import Project, Stage


class ReserveStageInput(BaseModel):
    programme_code: str
    project_id: str
    stage_no: int
    ministry: str
    amount: int
    part: int = 0


class ReserveStageResult(BaseModel):
    amount: int
    created: bool


class PayTrancheInput(BaseModel):
    project_id: str
    stage_no: int
    tranche_no: int
    amount: int
    due_at: datetime
    part: int = 0


class PayTrancheResult(BaseModel):
    transaction_id: int
    amount: int
    created: bool


class ReleaseInput(BaseModel):
    project_id: str


class ReleaseResult(BaseModel):
    released: int


class MoneyActivities(DatabaseActivities):
    @activity.defn
    async def reserve_stage(self, input: ReserveStageInput) -> ReserveStageResult:
        async def work(session: AsyncSession) -> ReserveStageResult:
            view = await ledger.reserve(
                session,
                input.programme_code,
                input.project_id,
                input.stage_no,
                input.ministry,
                input.amount,
                input.part,
            )
            stage = await session.get(Stage, (input.project_id, input.stage_no))
            project = await session.get(Project, input.project_id)
            if stage is not None and project is not None and view.created:
                stage.status = "active"
                project.stage_no = input.stage_no
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "reserve_stage",
                    f"project:{input.project_id}",
                    stage_no=input.stage_no,
                    amount=input.amount,
                )
            return ReserveStageResult(amount=view.amount, created=view.created)

        return await self.transact(work)

    @activity.defn
    async def pay_tranche(self, input: PayTrancheInput) -> PayTrancheResult:
        async def work(session: AsyncSession) -> PayTrancheResult:
            view = await ledger.pay_tranche(
                session, input.project_id, input.stage_no, input.tranche_no, input.amount, input.due_at, input.part
            )
            if view.created:
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "pay_tranche",
                    f"project:{input.project_id}",
                    stage_no=input.stage_no,
                    tranche_no=input.tranche_no,
                    amount=input.amount,
                )
            return PayTrancheResult(transaction_id=view.transaction_id, amount=view.amount, created=view.created)

        return await self.transact(work)

    @activity.defn
    async def release_reservations(self, input: ReleaseInput) -> ReleaseResult:
        async def work(session: AsyncSession) -> ReleaseResult:
            released = await ledger.release_open(session, input.project_id)
            if released:
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "release_reservations",
                    f"project:{input.project_id}",
                    amount=released,
                )
            return ReleaseResult(released=released)

        return await self.transact(work)
