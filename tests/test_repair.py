"""The daily repair on a real worker and the dev server: a project whose workflow was terminated
in Temporal (no clean stop) is closed out once however often the repair runs; drift it cannot
repair is reported and left alone; the worker's schedule is created once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, ScheduleOverlapPolicy, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.repair import (
    REASON,
    SCHEDULE_ID,
    RepairedProject,
    RepairRequest,
    RepairResult,
    ensure_repair_schedule,
)
from domain.handoff import HandoffKind, handoff_workflow_id
from domain.programme import PROGRAMME_CODE
from domain.project import Phase
from domain.proposal import Proposal
from storage import ledger, repair_runs
from storage.db import make_engine, make_sessionmaker
from storage.models import (
    AuditEntry,
    Document,
    Handoff,
    LedgerTransaction,
    Notification,
    Project,
    RepairRun,
    Reservation,
)
from tests.api_inprocess import inprocess_api
from tests.cli import trlgate
from tests.conftest import DEMO_PASSWORD
from tests.support import (
    assert_eventually,
    handoff_offered,
    ledger_project,
    pass_gate,
    start_project,
    wait_until,
)
from tests.test_stop_paths import DAY, stoppable
from tests.test_web_operations_pages import CLOSED_ID, OPEN_ID, UI, _NoWorkflows, _page, _section, seed
from tests.test_web_pages import JA, sign_in
from worker import build_worker
from workflows.project import workflow_id_for
from workflows.repair import RepairWorkflow

RUNNING = WorkflowExecutionStatus.RUNNING


async def run_repair(client: Client, task_queue: str) -> RepairResult:
    result: RepairResult = await client.execute_workflow(
        RepairWorkflow.run,
        RepairRequest(ran_by="test"),
        id=f"repair-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        result_type=RepairResult,
    )
    return result


async def count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def in_handoff(client: Client, task_queue: str) -> Proposal:
    """A project through both gates, its result offered to MOD and MLIT (whose hand-off workflows
    outlive it: ParentClosePolicy.ABANDON)."""
    p = stoppable(demo_days=40)
    assert p.project_id is not None
    await start_project(client, task_queue, p, seconds_per_day=DAY)
    await pass_gate(client, p, 1)
    await pass_gate(client, p, 2)
    for ministry in p.public_use_ministries:
        await handoff_offered(client, p.project_id, ministry)
    return p


@pytest.fixture
async def flow_sessionmaker(flow_db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """SQLite in the suite; PostgreSQL too in the deep tier (row locks instead of the write lock)."""
    engine = make_engine(flow_db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_a_terminated_project_is_repaired_once_however_often_the_repair_runs(
    local_env: WorkflowEnvironment, flow_sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    sessionmaker = flow_sessionmaker
    client = local_env.client
    p = stoppable()  # stage 1: 300,000,000 reserved; 100,000,000 paid at once, the rest on day 20
    pid = p.project_id
    assert pid is not None
    async with build_worker(client, task_queue, sessionmaker):
        handle = await start_project(client, task_queue, p, seconds_per_day=3600.0)  # day 20 never comes
        handing_off = asyncio.create_task(in_handoff(client, task_queue))
        await wait_until(
            handle,
            lambda s: s.phase == Phase.STAGE and s.money is not None and s.money.tranches_paid == [1],
            "stage 1 reserved and its first tranche paid",
        )
        h = await handing_off
        assert h.project_id is not None
        for terminated in (pid, h.project_id):  # as the Temporal UI does: no clean stop runs
            await client.get_workflow_handle(workflow_id_for(terminated)).terminate("by hand in the Temporal UI")
        # Two at once (the schedule's and `trlgate repair`) and then one more: each change once.
        first, twin = await asyncio.gather(run_repair(client, task_queue), run_repair(client, task_queue))
        second = await run_repair(client, task_queue)
        for ministry in h.public_use_ministries:  # withdrawn: nobody is reminded after the stop
            offer = client.get_workflow_handle(handoff_workflow_id(h.project_id, ministry, HandoffKind.FINAL))
            await assert_eventually(
                offer.describe, f"the hand-off to {ministry} withdrawn", until=lambda d: d.status != RUNNING
            )

    expected = {  # stage 2 was paid in full before its hand-offs: nothing left to release
        x: RepairedProject(project_id=x, released=released, document_id=f"{x}-closeout")
        for x, released in ((pid, 200_000_000), (h.project_id, 0))
    }
    both = first.repaired + twin.repaired  # a project both runs found is reported by both, done once
    assert {r.project_id for r in both} == set(expected) and all(r == expected[r.project_id] for r in both)
    assert first.drift == twin.drift == [], (first.drift, twin.drift)  # they agree with their closed workflows
    assert second == RepairResult(), second  # nothing left to repair, nothing drifts
    async with sessionmaker() as s:
        project = await s.get(Project, pid)
        assert project is not None and project.status == "terminated" and project.stop_reason == REASON
        [reservation] = (await s.scalars(select(Reservation).where(Reservation.project_id == pid))).all()
        assert (reservation.status, reservation.paid, reservation.released) == ("released", 100_000_000, 200_000_000)
        assert await ledger.balance(s, ledger.paid_account(pid)) == 100_000_000
        assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []
        releases = LedgerTransaction.project_id == pid, LedgerTransaction.kind == "release"
        assert await count(s, LedgerTransaction, *releases) == 1
        report = await s.get(Document, f"{pid}-closeout")
        assert report is not None and REASON in report.content
        closed_out = AuditEntry.action == "project_closed_out", AuditEntry.target == f"project:{pid}"
        assert await count(s, AuditEntry, *closed_out) == 1
        notices = (
            await s.scalars(
                select(Notification).where(Notification.project_id == pid, Notification.kind == "project_repaired")
            )
        ).all()
        assert [(n.recipient, n.key) for n in notices] == [(p.programme_manager, f"{pid}-repaired")]
        assert "200,000,000 yen" in notices[0].message
        stopped = Notification.project_id == pid, Notification.kind == "project_stopped"
        assert await count(s, Notification, *stopped) == len({p.programme_manager, *p.reviewers, "perf.aoki"}) + 2
        # The one in hand-off: its offers withdrawn in the database too, and its liaisons told.
        assert await count(s, Handoff, Handoff.project_id == h.project_id, Handoff.status != "cancelled") == 0
        told = await s.scalars(
            select(Notification.recipient).where(
                Notification.project_id == h.project_id, Notification.kind == "project_stopped"
            )
        )
        assert {"liaison.mod", "liaison.mlit"} <= set(told.all())
        latest = await repair_runs.latest(s)
        assert latest is not None and latest.ran_by == "test" and latest.repaired == [] and latest.drift == []
        assert len((await s.scalars(select(RepairRun))).all()) == 3


async def test_drift_the_repair_cannot_repair_is_reported_and_left_alone(
    local_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], sqlite_url: str, task_queue: str
) -> None:
    orphan = f"KP-{uuid.uuid4().hex[:10]}"
    async with sessionmaker.begin() as s:  # a project row whose workflow never started
        s.add(ledger_project(orphan, PROGRAMME_CODE, "MEXT", 1_000_000))
    env = {
        "TRLGATE_TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
        "TRLGATE_TASK_QUEUE": task_queue,
    }
    async with build_worker(local_env.client, task_queue, sessionmaker):
        ran = await asyncio.to_thread(trlgate, sqlite_url, "repair", env=env)  # as the runbook runs it
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert f"{orphan}: no workflow project-{orphan} exists" in ran.stdout
    assert "repaired 0 project(s), released 0 yen, 1 drift item(s) left for people" in ran.stdout
    async with sessionmaker() as s:
        project = await s.get(Project, orphan)
        assert project is not None and project.status == "active" and project.closed_at is None
        assert await s.get(Document, f"{orphan}-closeout") is None
        latest = await repair_runs.latest(s)
        assert latest is not None and latest.ran_by == "cli:repair" and latest.repaired == []
        assert [(d["project_id"], d["kind"]) for d in latest.drift] == [(orphan, "no_workflow")]


async def test_the_worker_creates_the_repair_schedule_once(local_env: WorkflowEnvironment, task_queue: str) -> None:
    client = local_env.client
    try:
        # The first answer is not asserted: a create retried under load rightly answers "exists".
        await ensure_repair_schedule(client, task_queue, timedelta(days=1))
        assert not await ensure_repair_schedule(client, task_queue, timedelta(hours=1))
        described = await client.get_schedule_handle(SCHEDULE_ID).describe()
        [interval] = described.schedule.spec.intervals
        assert interval.every == timedelta(days=1)  # the second call left the first one as it was
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert described.schedule.action.workflow == "RepairWorkflow"  # type: ignore[attr-defined]
    finally:
        await client.get_schedule_handle(SCHEDULE_ID).delete()


async def test_the_operations_page_shows_the_last_run_and_withholds_closed_work(sqlite_url: str) -> None:
    async with inprocess_api(sqlite_url, temporal=_NoWorkflows(), temporal_ui_url=UI) as api:
        await seed(api.sessionmaker)
        before = _section((await _page(api, "ops.kimura")).text, "ops-repair")
        assert "The repair has not run yet." in before
        async with api.sessionmaker.begin() as s:
            await repair_runs.record(
                s,
                key="trlgate-repair-test",
                ran_by="schedule",
                repaired=[{"project_id": OPEN_ID, "released": 200_000_000, "document_id": f"{OPEN_ID}-closeout"}],
                drift=[{"project_id": CLOSED_ID, "kind": "no_workflow", "problem": f"no workflow project-{CLOSED_ID}"}],
            )
        section = _section((await _page(api, "ops.kimura")).text, "ops-repair")  # uncleared for the closed one
        async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
            await sign_in(http, "ops.kimura", DEMO_PASSWORD, JA)
            ja = _section((await http.get("/app/operations", headers=JA)).text, "ops-repair")
    assert "1 project was repaired; ¥200,000,000 went back to the fund." in section
    assert f"{OPEN_ID}-closeout" in section and "(schedule)" in section
    assert "1 drift the repair could not repair, left for people." in section
    assert CLOSED_ID not in section and "Closed work, withheld" in section
    assert "日次の修復" in ja and "1 件のプロジェクトを修復し、200,000,000円 を基金に戻しました。" in ja
