"""The fund as projects live it: fiscal years and carry-over, overdue progress reports, four eyes
on large tranches, and many projects competing for one allocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import RetryState
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.fiscal import fiscal_year
from domain.programme import ALLOCATIONS, PROGRAMME_CODE
from domain.project import (
    ProgressReportInput,
    ProjectSnapshot,
    ProjectStatus,
    ReportReviewInput,
    ResumeInput,
    TerminateInput,
    TrancheSignature,
)
from storage import ledger
from storage.db import make_engine, make_sessionmaker
from storage.models import LedgerTransaction, Notification, Project, Reservation, Tranche
from storage.projects import insert_project
from tests.support import PM, assert_eventually, proposal, sized, start_project, wait_until
from worker import build_worker
from workflows.project import ProjectWorkflow

PERFORMER = "perf.aoki"
B = 1_000_000_000  # one oku yen


def three_year_stage(**overrides: Any) -> Any:
    return proposal(
        start_trl=1,
        target_trl=3,
        total_budget=3 * B,
        performer=PERFORMER,
        stages=[
            {
                "name": "Basic research",
                "trl_in": 1,
                "trl_out": 3,
                "duration_days": 800,
                "budget": 3 * B,
                "tranches": [
                    {"offset_days": 0, "amount": B},
                    {"offset_days": 365, "amount": B},
                    {"offset_days": 730, "amount": B},
                ],
            }
        ],
        **overrides,
    )


async def notifications(sm: async_sessionmaker[AsyncSession], project_id: str, kind: str) -> list[Notification]:
    async with sm() as s:
        return list(
            (
                await s.scalars(
                    select(Notification)
                    .where(Notification.project_id == project_id, Notification.kind == kind)
                    .order_by(Notification.at)
                )
            ).all()
        )


async def test_multi_year_project_carries_over_and_an_overdue_report_holds_the_tranche(
    time_skipping_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    env = time_skipping_env
    # MEXT may commit 1.5 oku in FY2026 and only 0.8 oku in FY2027: the stage's FY2027 tranche
    # (1 oku) fits only because FY2026 leaves 0.5 oku unused, which carries over.
    async with sessionmaker.begin() as s:
        await ledger.set_ceiling(
            s, programme_code=PROGRAMME_CODE, ministry="MEXT", fiscal_year=2026, amount=3 * B // 2, actor="fin.suzuki"
        )
        await ledger.set_ceiling(
            s, programme_code=PROGRAMME_CODE, ministry="MEXT", fiscal_year=2027, amount=8 * B // 10, actor="fin.suzuki"
        )
    p = three_year_stage(start_date=date(2026, 10, 1))
    assert p.project_id is not None
    async with build_worker(env.client, task_queue, sessionmaker):
        handle = await start_project(env.client, task_queue, p, seconds_per_day=86400.0, progress_reports=True)
        # The live view dates tranche 2 (day 365) on the project's calendar, which began 2026-10-01,
        # whatever the real date the test runs on; the real due time is there too, named as such.
        due = await wait_until(handle, lambda s: "tranche 2 due" in s.waiting_for, "tranche 2 next", env=env)
        assert due.waiting_for == "Stage 1 (Basic research): tranche 2 due 2027-10-01"
        assert due.due_on == date(2027, 10, 1) and due.due_at is not None
        held = await wait_until(
            handle, lambda s: "FY2026 progress report" in s.waiting_for, "tranche 2 held for the report", env=env
        )
        assert held.money is not None and held.money.tranches_paid == [1]
        assert held.money.programme_date is not None and held.money.programme_date >= date(2027, 10, 1)
        [reminder, *_] = await notifications(sessionmaker, p.project_id, "report_overdue")
        assert reminder.recipient == PERFORMER and "FY2026" in reminder.message

        refused = ProgressReportInput(fiscal_year=2025, summary="before the project began", submitted_by=PERFORMER)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(ProjectWorkflow.submit_report, refused)
        assert "outside the project's reporting years" in str(err.value.cause)
        report = ProgressReportInput(fiscal_year=2026, summary="Concept proven in the lab", submitted_by=PERFORMER)
        await handle.execute_update(ProjectWorkflow.submit_report, report)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                ProjectWorkflow.review_report, ReportReviewInput(fiscal_year=2026, accept=True, reviewed_by=PERFORMER)
            )
        assert "only the project's programme manager" in str(err.value.cause)
        await handle.execute_update(
            ProjectWorkflow.review_report, ReportReviewInput(fiscal_year=2026, accept=True, reviewed_by=PM)
        )
        paid = await wait_until(
            handle, lambda s: s.money is not None and 2 in s.money.tranches_paid, "tranche 2 paid", env=env
        )
        assert paid.money is not None and paid.money.reports == {2026: "accepted"}
        await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))

    async with sessionmaker() as s:
        t2 = await s.get(Tranche, (p.project_id, 1, 2))
        assert t2 is not None and t2.planned_fiscal_year == 2027
        # Paid late (after the report), on the workflow's own calendar, in the year it was paid.
        txn = await s.get(LedgerTransaction, t2.transaction_id)
        assert txn is not None and txn.booked_on is not None and txn.booked_on >= date(2027, 10, 1)
        assert t2.fiscal_year == fiscal_year(txn.booked_on)
        [mext] = [m for m in await ledger.fund_summary(s, PROGRAMME_CODE) if m.ministry == "MEXT"]
        years = {y.fiscal_year: y for y in mext.fiscal_years}
        assert years[2026].paid == B and years[2026].available == B // 2
        assert years[2027].carried_in == B // 2  # the carry-over that made the reservation fit
        assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []
        reservation = await s.get(Reservation, (p.project_id, 1, 0))
        assert reservation is not None and reservation.status == "released" and reservation.released == B


async def sign(handle: WorkflowHandle[Any, Any], action: str, signer: str, tranche: int = 1) -> Any:
    return await handle.execute_update(
        ProjectWorkflow.sign_tranche, TrancheSignature(stage_no=1, tranche_no=tranche, action=action, signer=signer)
    )


async def test_a_large_tranche_waits_for_a_second_approver_who_is_not_the_requester(
    local_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    p = three_year_stage()
    assert p.project_id is not None
    async with build_worker(local_env.client, task_queue, sessionmaker):
        handle = await start_project(local_env.client, task_queue, p, seconds_per_day=0.0, four_eyes_threshold=B - 1)
        await wait_until(handle, lambda s: "four-eyes approval" in s.waiting_for, "tranche 1 waiting for approval")
        for action, signer, reason in (
            ("approve", "fin.yamada", "has not been requested"),
            ("request", "fin.suzuki", None),
            ("request", "fin.yamada", "already requested by fin.suzuki"),
            ("approve", "fin.suzuki", "four eyes: the approver must be someone other than the requester"),
        ):
            if reason is None:
                await sign(handle, action, signer)
                continue
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await sign(handle, action, signer)
            assert reason in str(err.value.cause)
        snap: ProjectSnapshot = await handle.query(ProjectWorkflow.status)
        assert snap.money is not None and snap.money.tranches_paid == []
        await sign(handle, "approve", "fin.yamada")
        await wait_until(handle, lambda s: s.money is not None and s.money.tranches_paid == [1], "tranche 1 paid")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await sign(handle, "request", "fin.suzuki")
        assert "already paid" in str(err.value.cause)
        asks = await notifications(sessionmaker, p.project_id, "tranche_approval")
        # Each finance user was asked once per tranche (tranche 2 is due at once too: timers are off here).
        assert sorted(a.recipient for a in asks if a.message.startswith("Tranche 1 ")) == ["fin.suzuki", "fin.yamada"]
        assert (await handle.query(ProjectWorkflow.status)).money.tranches_paid == [1]
        await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


@pytest.fixture
async def any_db_sessionmaker(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


# More projects than the allocation has room for, all at once: 8 for 3 in the suite, 30 for 6 in
# the deep tier.
COMPETING, ROOM = sized(suite=8, deep=30), sized(suite=3, deep=6)


@pytest.mark.stress
async def test_more_projects_than_there_is_room_for_compete_at_once(
    local_env: WorkflowEnvironment, any_db_sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    """Exactly ROOM reserve; the others go on Hold with their programme manager told (the
    documented path), and a resume tries again without a retry storm. The books balance throughout. On SQLite
    (serialised writers) and on PostgreSQL (the allocation's row lock)."""
    sessionmaker = any_db_sessionmaker
    budget = B // ROOM
    proposals = [
        proposal(
            start_trl=1,
            target_trl=2,
            total_budget=budget,
            stages=[
                {
                    "name": "Basic research",
                    "trl_in": 1,
                    "trl_out": 2,
                    "duration_days": 365,
                    "budget": budget,
                    "tranches": [{"offset_days": 0, "amount": budget}],
                }
            ],
        )
        for _ in range(COMPETING)
    ]
    # Leave exactly ROOM stages' worth in MEXT's allocation.
    filler = proposal()
    assert filler.project_id is not None
    async with sessionmaker.begin() as s:
        await insert_project(s, PROGRAMME_CODE, "filler", filler)
        await ledger.reserve(
            s,
            programme_code=PROGRAMME_CODE,
            project_id=filler.project_id,
            stage_no=1,
            ministry="MEXT",
            amount=ALLOCATIONS["MEXT"] - ROOM * budget,
        )
    async with build_worker(local_env.client, task_queue, sessionmaker, max_concurrent_activities=COMPETING):
        handles = await asyncio.gather(
            *(start_project(local_env.client, task_queue, p, seconds_per_day=86400.0) for p in proposals)
        )

        async def settled(h: WorkflowHandle[Any, Any]) -> ProjectSnapshot:
            return await wait_until(
                h, lambda s: s.on_hold or (s.money is not None and s.money.tranches_paid == [1]), "settled", 120
            )

        snaps = await asyncio.gather(*(settled(h) for h in handles))
        running = [s for s in snaps if not s.on_hold]
        waiting = [s for s in snaps if s.on_hold]
        assert len(running) == ROOM and len(waiting) == COMPETING - ROOM
        assert all(s.money is not None and s.money.waiting_for_funds for s in waiting)
        assert all("Waiting for funds" in s.waiting_for for s in waiting)

        ids = [p.project_id for p in proposals]

        async def books() -> tuple[int, int, int]:
            """(reservations, projects on hold, PM notifications) as the database has them."""
            async with sessionmaker() as s:
                return (
                    await s.scalar(
                        select(func.count()).select_from(Reservation).where(Reservation.project_id.in_(ids))
                    ),
                    await s.scalar(
                        select(func.count())
                        .select_from(Project)
                        .where(Project.id.in_(ids), Project.status == ProjectStatus.ON_HOLD.value)
                    ),
                    await s.scalar(
                        select(func.count())
                        .select_from(Notification)
                        .where(
                            Notification.project_id.in_(ids),
                            Notification.kind == "funds_short",
                            Notification.recipient == PM,
                        )
                    ),
                )  # type: ignore[return-value]

        # The snapshot says "on hold" as soon as the workflow decides; its writes follow.
        await assert_eventually(
            books,
            "the books of the paid and the held",
            until=lambda b: b == (ROOM, COMPETING - ROOM, COMPETING - ROOM),
            timeout=30,
        )
        async with sessionmaker() as s:
            assert await ledger.balance(s, ledger.allocation_account("MEXT")) == 0
            assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []

        # No retry storm: the refusal is a business error, so the reservation failed once and was
        # not retried after it (read from its history: the failure's retry state says so). An
        # attempt before it may have timed out on a starved machine (30 workflows on 2 cores); that
        # retry is the policy's, not a retry of the refusal, so the attempt number is not pinned.
        first = handles[next(i for i, s in enumerate(snaps) if s.on_hold)]
        events = (await first.fetch_history()).events
        reserve_ids = {
            e.event_id
            for e in events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "reserve_stage"
        }
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in events
            if e.HasField("activity_task_started_event_attributes")
            and e.activity_task_started_event_attributes.scheduled_event_id in reserve_ids
        ]
        failures = [
            e
            for e in events
            if e.HasField("activity_task_failed_event_attributes")
            and e.activity_task_failed_event_attributes.scheduled_event_id in reserve_ids
        ]
        assert len(reserve_ids) == 1 and len(attempts) == 1 and len(failures) == 1
        failure = failures[0].activity_task_failed_event_attributes
        assert failure.retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
        assert failure.failure.cause.application_failure_info.type == "InsufficientFunds"

        # A resume tries again: still no money, so back on hold with the PM told again.
        await first.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
        again = await wait_until(first, lambda s: s.on_hold, "back on hold")
        assert again.money is not None and again.money.waiting_for_funds
        await assert_eventually(
            lambda: notifications(sessionmaker, again.project_id, "funds_short"),
            "a second funds_short notice",
            until=lambda found: len(found) == 2,
            timeout=30,
        )
        await asyncio.gather(
            *(
                h.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))
                for h in handles
            )
        )
        async with sessionmaker() as s:
            assert await ledger.balance(s, ledger.allocation_account("MEXT")) == 0  # all paid at day 0, none to release
            assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []
