"""A ten-year project on the time-skipping server: real durations (86,400 s a day). How much wall
time it takes is measured by `python -m bench.time_skipping`, not asserted here."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.programme import PROGRAMME_CODE
from domain.project import ProjectStatus
from storage import ledger
from storage.models import Project, Tranche
from tests.support import ten_year_project


async def test_ten_year_project_runs_in_seconds(
    time_skipping_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    p, outcome = await ten_year_project(time_skipping_env, sessionmaker, task_queue)
    assert outcome.status == ProjectStatus.COMPLETED
    assert outcome.trl == 9

    async with sessionmaker() as session:
        tranches = (await session.scalars(select(Tranche).order_by(Tranche.stage_no, Tranche.tranche_no))).all()
        assert len(tranches) == sum(len(s.tranches) for s in p.stage_plan) == 10
        assert sum(t.amount for t in tranches) == p.total_budget
        # The stage timers really ran, on the workflow's own clock: inside a stage each tranche fell
        # due at its planned offset, and no stage began before the previous one's planned end.
        previous_start = None
        for stage_no, stage in enumerate(p.stage_plan, start=1):
            dues = [t.due_at for t in tranches if t.stage_no == stage_no]
            assert [(d - dues[0]).days for d in dues] == [t.offset_days for t in stage.tranches]
            if previous_start is not None:
                assert (dues[0] - previous_start[0]).days >= previous_start[1]
            previous_start = (dues[0], stage.duration_days)
        assert (tranches[-1].due_at - tranches[0].due_at).days >= 365 * 9
        project = await session.get(Project, p.project_id)
        assert project is not None and project.status == "completed" and project.current_trl == 9
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []
        assert await session.scalar(select(func.count()).select_from(Tranche)) == 10
