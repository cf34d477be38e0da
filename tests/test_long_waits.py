"""A tranche held for years for a missing progress report must not grow one endless history: the
wait continues as new when Temporal suggests it, and reminds and pays exactly as before."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.programme import PROGRAMME_CODE
from domain.project import TerminateInput
from storage import ledger
from storage.models import Tranche
from tests.histories.long_waits import (
    SUGGEST_AFTER_EVENTS,
    eager_server,
    file_reports_until_paid,
    held_proposal,
    hold_for_reminders,
    reminders,
)
from tests.support import PM, run_histories
from worker import build_worker
from workflows.project import ProjectWorkflow


async def test_a_tranche_held_for_a_report_continues_as_new_and_is_paid_once(
    sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    p = held_proposal("long-report-wait")
    pid = str(p.project_id)
    async with eager_server() as client, build_worker(client, task_queue, sessionmaker):
        handle = await hold_for_reminders(client, task_queue, sessionmaker, p, 8)
        await asyncio.wait_for(file_reports_until_paid(handle, 2), 60)
        await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))
        await handle.result()
        first_run = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
        runs = await run_histories(client, handle.id, first_run)

    # Before the patch one run held the whole wait (a reminder each month, for years).
    assert len(runs) >= 3, [len(r.events) for r in runs]
    # Each run begun in the wait ends soon after the server suggests it (a reminder's events past
    # it), not years of reminders later; the first also holds the stage's start and first tranche,
    # the last the payment and the stop.
    assert all(len(r.events) < SUGGEST_AFTER_EVENTS + 30 for r in runs[1:-1]), [len(r.events) for r in runs]
    # The count of each year's reminders travels with the state: numbered on, none skipped.
    by_year: dict[str, list[int]] = defaultdict(list)
    for key in await reminders(sessionmaker, pid):
        year, number = key.rsplit("-report-", 1)[1].split("-reminder-")
        by_year[year].append(int(number))
    assert all(sorted(n) == list(range(1, len(n) + 1)) for n in by_year.values()), by_year
    assert len(by_year["FY2026"]) >= 8, by_year
    async with sessionmaker() as s:
        paid = (await s.scalars(select(Tranche.tranche_no).where(Tranche.project_id == pid))).all()
        assert sorted(paid) == [1, 2]
        assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []
