"""No effect without its audit entry, and no pool exhaustion under concurrent commands.

Each accepted command is audited by the write that carries it out (in the same transaction, once
per Update however often that write is retried), not by the API after the Update returns; the API
hands its read connection back to the pool before it waits on Temporal."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.money import MoneyActivities, ReleaseInput
from api.app import create_app
from api.security import create_access_token
from config import Settings
from domain.command import Command
from domain.gate_review import InvitationResponse
from domain.project import ProjectWorkflowInput, StopResult, TerminateInput
from storage.audit import verify_chain
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry, GateEvent, Project
from tests.api_stack import ApiStack, api_stack
from tests.support import PM, REVIEWERS, proposal, review_for, sized, wait_until
from worker import build_worker
from workflows.gate_review import GateReviewWorkflow
from workflows.project import ProjectWorkflow, workflow_id_for

# Each project gets a terminate and a gate decision at once: 2 x PROJECTS concurrent commands (16 in
# the suite, 50 in the deep tier), more than the API's SQLite connection pool holds (5 + 10).
PROJECTS = sized(suite=8, deep=25)


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    # Timers off: a project reaches its first gate as soon as its first stage is paid. The stages'
    # payments are set-up, not the subject: ten at a time (within the connection pool), so that
    # on a busy machine they don't queue for connections past their 10 s timeout and retry forever.
    options = {"max_concurrent_activities": 10}
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.0, worker_options=options) as s:
        yield s


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """SQLite and PostgreSQL (the key's unique index is made by the migration on both)."""
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def _small_proposal(n: int) -> dict[str, Any]:
    return {
        "project_id": f"KP-LOAD-{n:02d}",
        "title": f"Load test project {n}",
        "organisation": "Concurrency Lab",
        "programme_manager": PM,
        "funding_ministry": "MEXT",
        "research_vision": "Many programme managers at once",
        "start_trl": 1,
        "target_trl": 9,
        "total_budget": 1_000_000_000,
        "reviewers": REVIEWERS,
        "public_use_ministries": ["MOD"],
        "policy": {"require_evidence": False, "quorum": 1},
    }


async def _ready_for_decision(stack: ApiStack, body: dict[str, Any]) -> None:
    """Started over HTTP; one reviewer's review (the quorum) sent straight to the round."""
    r = await stack.call("POST", "/projects", PM, json=body)
    assert r.status_code == 201, r.text
    p = proposal(**body)
    assert p.project_id is not None
    # Twenty-five projects pay their tranches on one SQLite file at once: on a busy machine (the
    # suite runs in parallel) that takes longer than the usual 30 s, and the test is about what
    # comes after.
    snap = await wait_until(
        stack.client.get_workflow_handle(workflow_id_for(p.project_id)),
        lambda s: s.open_gate == 1 and s.gate_workflow_id is not None,
        "gate 1 opening",
        timeout=120,
    )
    assert snap.gate_workflow_id is not None
    gate = stack.client.get_workflow_handle(snap.gate_workflow_id)
    reviewer = REVIEWERS[0]
    await gate.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer=reviewer, accept=True))
    await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, reviewer))


async def _rows(session: AsyncSession, action: str, target: str, outcome: str) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                AuditEntry.action == action, AuditEntry.target == target, AuditEntry.outcome == outcome
            )
        )
        or 0
    )


@pytest.mark.stress
async def test_concurrent_stops_and_decisions(stack: ApiStack) -> None:
    await stack.login(PM)
    bodies = [_small_proposal(n) for n in range(PROJECTS)]
    await asyncio.gather(*(_ready_for_decision(stack, b) for b in bodies))

    async def terminate(pid: str) -> httpx.Response:
        return await stack.call("POST", f"/projects/{pid}/terminate", PM, json={"reason": "stopped under load"})

    async def decide(pid: str) -> httpx.Response:
        return await stack.call("POST", f"/projects/{pid}/gates/1/decision", PM, json={"decision": "go"})

    ids = [b["project_id"] for b in bodies]
    answers = await asyncio.gather(*(f(pid) for pid in ids for f in (terminate, decide)))

    statuses = Counter(r.status_code for r in answers)
    assert all(200 <= s < 500 for s in statuses), f"server errors: {statuses}; " + "; ".join(
        r.text for r in answers if r.status_code >= 500
    )
    async with stack.sessionmaker() as session:
        for i, pid in enumerate(ids):
            stopped, decided = answers[2 * i], answers[2 * i + 1]
            project = await session.get(Project, pid)
            assert project is not None
            # The effects in the database, each against its audit entries.
            terminated = project.status == "terminated" and (project.stop_reason or "").startswith("Terminated by")
            closed = await session.scalar(
                select(func.count()).where(GateEvent.project_id == pid, GateEvent.kind == "closed")
            )
            assert await _rows(session, "start_project", f"project:{pid}", "ok") == 1, pid  # API or worker
            assert await _rows(session, "terminate", f"project:{pid}", "ok") == int(terminated), pid
            assert await _rows(session, "decide", f"gate:{pid}/1", "ok") == closed, pid
            # A refusal changed nothing and is audited once, by the API.
            assert await _rows(session, "terminate", f"project:{pid}", "rejected") == int(stopped.status_code == 409)
            assert await _rows(session, "decide", f"gate:{pid}/1", "rejected") == int(decided.status_code == 409)
            if stopped.status_code == 200:
                assert terminated, pid
            if decided.status_code == 200:
                assert closed == 1, pid
        assert (await verify_chain(session)).broken_at is None


async def test_a_command_sent_past_the_api_is_audited_by_its_write(
    local_client: Client, task_queue: str, db: async_sessionmaker[AsyncSession]
) -> None:
    """The API is not needed for the audit entries: a start and an Update sent straight to the
    workflow (as if the API had died after sending them) find their entries written with the
    project's first row and with the stop's release of money."""
    p = proposal()
    assert p.project_id is not None
    target = f"project:{p.project_id}"
    wid = workflow_id_for(p.project_id)
    started = Command(actor=PM, action="start_project", target=target, key=f"start:{wid}")
    async with build_worker(local_client, task_queue, db):
        handle = await local_client.start_workflow(
            ProjectWorkflow.run,
            ProjectWorkflowInput(proposal=p, seconds_per_day=0, progress_reports=False, command=started),
            id=wid,
            task_queue=task_queue,
        )
        await wait_until(handle, lambda s: s.phase.value in ("stage", "gate"), "first stage")
        command = Command(actor=PM, action="terminate", target=target, detail={"reason": "past the API"})
        stop = TerminateInput(requested_by=PM, reason="past the API", command=command)
        result: StopResult = await handle.execute_update(ProjectWorkflow.terminate, stop, id="stop-once")
    assert result.status.value == "terminated"
    async with db() as session:
        rows = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "terminate", AuditEntry.target == target)
            )
        ).all()
        assert [(r.actor, r.outcome, r.command_key) for r in rows] == [(PM, "ok", f"{wid}/stop-once")]
        assert rows[0].detail["released"] == result.released
        start = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "start_project"))).all()
        assert [(r.actor, r.target, r.command_key) for r in start] == [(PM, target, f"start:{wid}")]


async def test_a_retried_write_audits_its_command_once(db: async_sessionmaker[AsyncSession]) -> None:
    """The activity may run again after its commit (a worker dies before reporting): the entry is
    keyed by the Update, so the second run adds none."""
    activities = MoneyActivities(db)
    command = Command(actor=PM, action="terminate", target="project:KP-NONE", key="project-KP-NONE/u1")
    for _ in range(2):
        await activities.release_reservations(ReleaseInput(project_id="KP-NONE", command=command))
    async with db() as session:
        keys = (await session.scalars(select(AuditEntry.command_key).where(AuditEntry.action == "terminate"))).all()
        assert keys == ["project-KP-NONE/u1"]


async def test_an_exhausted_pool_is_a_503_with_retry_after(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url, jwt_secret="test-secret-of-at-least-thirty-two-bytes!")
    app = create_app(settings)
    engine = make_engine(sqlite_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    app.state.settings = settings
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.read_sessionmaker = make_sessionmaker(engine, read_only=True)
    app.state.jwt_secret = settings.resolved_jwt_secret()
    app.state.temporal = None
    token = create_access_token(app.state.jwt_secret, PM, ["pm"], timedelta(minutes=5))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with engine.connect() as held, httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await held.execute(text("SELECT 1"))  # the pool's only connection, kept busy
            r = await http.get("/projects", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"].isdigit() and "busy" in r.json()["detail"]
    finally:
        await engine.dispose()
