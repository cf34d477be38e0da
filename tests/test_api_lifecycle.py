"""End-to-end through HTTP: real API, real worker, the local Temporal dev server, SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client

from domain.programme import ALLOCATIONS, PROGRAMME_CODE
from domain.project import ProjectSnapshot
from storage import ledger
from storage.models import AuditEntry, Reservation, ReviewTask, Tranche
from tests.api_stack import ApiStack, api_stack
from tests.support import PM, REVIEWERS, assert_eventually, handoff_offered, wait_until

BUDGET = 10_000_000_000


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    # A day lasts a millisecond: ten years of stage timers take ~3.7 s of real time.
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.001) as s:
        yield s


@pytest.fixture
async def stack_any_db(local_client: Client, flow_db_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    """The same stack on SQLite and on PostgreSQL."""
    async with api_stack(local_client, flow_db_url, task_queue, seconds_per_day=0.001) as s:
        yield s


def proposal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Autonomous underwater inspection drones",
        "organisation": "Kobe Maritime Robotics",
        "programme_manager": PM,
        "funding_ministry": "MEXT",
        "research_vision": "Maritime domain awareness and protection of undersea infrastructure",
        "start_trl": 1,
        "target_trl": 9,
        "total_budget": BUDGET,
        "reviewers": REVIEWERS,
        "public_use_ministries": ["MOD", "MLIT"],
    }
    body.update(overrides)
    return body


async def wait_status(
    stack: ApiStack, project_id: str, predicate: Any, what: str, timeout: float = 30
) -> ProjectSnapshot:
    handle = stack.client.get_workflow_handle(f"project-{project_id}")
    return await wait_until(handle, predicate, what, timeout=timeout)


async def wait_gate_open(stack: ApiStack, project_id: str, gate_no: int, timeout: float = 30) -> dict[str, Any]:
    """As a client would: until GET /projects/{id} shows the gate's round open for review."""

    async def open_gates() -> list[dict[str, Any]]:
        detail = (await stack.call("GET", f"/projects/{project_id}", PM)).json()
        return [g for g in detail["gates"] if g["gate_no"] == gate_no and g["status"] == "open" and g["workflow_id"]]

    return dict((await assert_eventually(open_gates, f"gate {gate_no} open", timeout=timeout))[0])


async def review_gate(
    stack: ApiStack, project_id: str, gate_no: int, score: int = 4, exit_trl: int | None = None
) -> None:
    """The PM reads what the gate requires and submits the evidence for it; three reviewers, each
    with their own login, accept, read, review. The gate's exit TRL: the default plan's, or given."""
    required = (await wait_gate_open(stack, project_id, gate_no))["requirements"]
    trl = exit_trl or [3, 5, 7, 9][gate_no - 1]
    assert required["exit_trl"] == trl and f"TRL {trl} reached" in required["question"]
    last = "Hand-off readiness statement" if trl == 9 else "Next-stage plan"
    assert required["deliverables"] == ["Stage report", f"TRL {trl} test evidence", last]
    assert [c["key"] for c in required["must_meet"]] == ["trl_exit_evidence", "protection_measures"]
    assert sum(c["weight"] for c in required["should_meet"]) == 10
    gate_view = (await stack.call("GET", f"/projects/{project_id}/gates/{gate_no}", PM)).json()
    assert gate_view["requirements"] == required
    evidence = {
        "claimed_trl": trl,
        "deliverables": required["deliverables"],
        "criteria_evidence": {c["key"]: "Stage report, chapter 4" for c in required["must_meet"]},
    }
    r = await stack.call("POST", f"/projects/{project_id}/gates/{gate_no}/evidence", PM, json=evidence)
    assert r.status_code == 200, r.text
    for n, reviewer in enumerate(REVIEWERS):
        r = await stack.call("GET", "/tasks", reviewer, params={"status": "invited"})
        assert r.status_code == 200
        listed = r.json()["items"]
        mine = [t for t in listed if t["project_id"] == project_id and t["gate_no"] == gate_no]
        assert len(mine) == 1 and all(t["reviewer"] == reviewer for t in listed)
        task = (await stack.call("GET", f"/tasks/{mine[0]['id']}", reviewer)).json()
        before = (await stack.call("GET", f"/projects/{project_id}/gates/{gate_no}", reviewer)).json()
        assert before["evidence"] is None  # no material before the conflict declaration
        r = await stack.call("POST", f"/tasks/{task['id']}/respond", reviewer, json={"accept": True})
        assert r.status_code == 200, r.text
        view = (await stack.call("GET", f"/projects/{project_id}/gates/{gate_no}", reviewer)).json()
        assert view["evidence"]["deliverables"] == required["deliverables"]
        assert view["requirements"]["must_meet"] == task["must_meet"]
        assert view["reviews"] == []  # independence: nobody else's review before one's own
        review = {
            "must_meet": {c["key"]: True for c in task["must_meet"]},
            "scores": {c["key"]: score for c in task["should_meet"]},
            "comment": "independent review",
        }
        r = await stack.call("POST", f"/tasks/{task['id']}/review", reviewer, json=review)
        assert r.status_code == 200, r.text
        assert len(r.json()["reviews"]) == n + 1  # after submitting, the others' reviews show


async def test_full_lifecycle_trl1_to_9_over_http(stack_any_db: ApiStack) -> None:
    stack = stack_any_db
    r = await stack.call("POST", "/projects", PM, json=proposal_body())
    assert r.status_code == 201, r.text
    project_id = r.json()["id"]

    for gate_no in range(1, 5):
        await review_gate(stack, project_id, gate_no)
        r = await stack.call("POST", f"/projects/{project_id}/gates/{gate_no}/decision", PM, json={"decision": "go"})
        assert r.status_code == 200, r.text
        assert r.json()["trl"] == [3, 5, 7, 9][gate_no - 1]

    await wait_status(stack, project_id, lambda s: len(s.handoffs_pending) == 2, "hand-offs")
    for ministry in ("MOD", "MLIT"):
        await handoff_offered(stack.client, project_id, ministry)
    for liaison in ("liaison.mod", "liaison.mlit"):
        handoffs = (await stack.call("GET", "/handoffs", liaison)).json()["items"]
        assert len(handoffs) == 1  # each liaison sees only their own ministry's hand-off
        doc = await stack.call("GET", f"/documents/{handoffs[0]['document_id']}", liaison)
        assert doc.status_code == 200 and "TRL 9" in doc.text
        r = await stack.call("POST", f"/handoffs/{handoffs[0]['id']}/accept", liaison, json={"note": "adopted"})
        assert r.status_code == 409 and "receiving programme" in r.text  # accepting names who takes it on
        r = await stack.call(
            "POST",
            f"/handoffs/{handoffs[0]['id']}/accept",
            liaison,
            json={"receiving_programme": f"{liaison} field programme"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"

    await wait_status(stack, project_id, lambda s: s.status == "completed", "completed")
    detail = (await stack.call("GET", f"/projects/{project_id}", PM)).json()
    assert detail["status"] == "completed" and detail["current_trl"] == 9
    assert [s["status"] for s in detail["stages"]] == ["passed"] * 4
    assert len(detail["tranches"]) == 10
    assert all(res["status"] == "settled" for res in detail["reservations"])

    fund = (await stack.call("GET", "/fund", "fin.suzuki")).json()
    mext = next(m for m in fund["by_ministry"] if m["ministry"] == "MEXT")
    years = mext.pop("fiscal_years")
    assert mext == {
        "ministry": "MEXT",
        "allocated": ALLOCATIONS["MEXT"],
        "reserved": 0,
        "paid": BUDGET,
        "available": ALLOCATIONS["MEXT"] - BUDGET,
    }
    # Ten years of tranches land in the fiscal years they were paid in (simulated calendar).
    assert sum(y["paid"] for y in years) == BUDGET and all(y["reserved"] == 0 for y in years)
    assert len(years) >= 5 and [y["fiscal_year"] for y in years] == sorted(y["fiscal_year"] for y in years)
    assert fund["invariant_violations"] == []
    async with stack.sessionmaker() as session:
        counts = (
            await session.execute(
                select(Tranche.stage_no, Tranche.tranche_no, func.count()).group_by(
                    Tranche.stage_no, Tranche.tranche_no
                )
            )
        ).all()
        assert len(counts) == 10 and all(n == 1 for *_, n in counts)
        audited = set((await session.scalars(select(AuditEntry.action).where(AuditEntry.outcome == "ok"))).all())
        assert {"start_project", "review", "decide", "accept_handoff"} <= audited


async def test_kill_at_second_gate_leaves_nothing_open(stack: ApiStack) -> None:
    r = await stack.call("POST", "/projects", PM, json=proposal_body())
    project_id = r.json()["id"]
    await review_gate(stack, project_id, 1)
    assert (
        await stack.call("POST", f"/projects/{project_id}/gates/1/decision", PM, json={"decision": "go"})
    ).status_code == 200
    await review_gate(stack, project_id, 2, score=2)  # the panel recommends Kill
    r = await stack.call("POST", f"/projects/{project_id}/gates/2/decision", PM, json={"decision": "kill"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "terminated"

    detail = (await stack.call("GET", f"/projects/{project_id}", PM)).json()
    assert detail["status"] == "terminated" and detail["current_trl"] == 3
    assert f"{project_id}-closeout" in detail["documents"]
    async with stack.sessionmaker() as session:
        assert await ledger.balance(session, ledger.reservation_account(project_id)) == 0
        open_res = await session.scalar(
            select(func.count())
            .select_from(Reservation)
            .where(Reservation.project_id == project_id, Reservation.status == "open")
        )
        assert open_res == 0
        open_tasks = await session.scalar(
            select(func.count())
            .select_from(ReviewTask)
            .where(ReviewTask.project_id == project_id, ReviewTask.status == "open")
        )
        assert open_tasks == 0
        paid = await ledger.balance(session, ledger.paid_account(project_id))
        # A gate ends its stage, so the stage's tranches were all paid before the Kill.
        stage2 = await session.get(Reservation, (project_id, 2, 0))
        assert stage2 is not None and stage2.status == "settled" and stage2.paid == stage2.amount
        summary = {m.ministry: m for m in await ledger.fund_summary(session, PROGRAMME_CODE)}
        assert summary["MEXT"].available == ALLOCATIONS["MEXT"] - paid
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []


async def test_terminate_mid_stage_releases_unpaid_money(
    local_client: Client, sqlite_url: str, task_queue: str
) -> None:
    # A day lasts a second: the second tranche (day 365) is far away when the PM terminates.
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=1.0) as stack:
        project_id = (await stack.call("POST", "/projects", PM, json=proposal_body())).json()["id"]
        await wait_status(stack, project_id, lambda s: "tranche 2" in s.waiting_for, "first tranche paid")
        r = await stack.call("POST", f"/projects/{project_id}/terminate", "rev.ito", json={"reason": "no"})
        assert r.status_code == 403
        lessons = "Secure a second industrial partner before <stage 2>; the first one carried all the risk."
        r = await stack.call(
            "POST",
            f"/projects/{project_id}/terminate",
            PM,
            json={"reason": "Consortium dissolved", "lessons": lessons},
        )
        assert r.status_code == 200, r.text
        stop = r.json()
        stage1_budget = BUDGET * 10 // 100
        first_tranche = stage1_budget - 2 * (stage1_budget // 3)
        assert stop["status"] == "terminated" and stop["released"] == stage1_budget - first_tranche
        assert "Consortium dissolved" in stop["reason"]
        again = await stack.call("POST", f"/projects/{project_id}/terminate", PM, json={"reason": "twice"})
        assert again.status_code == 409 and "already" in again.json()["detail"]
        closeout = await stack.call("GET", f"/documents/{stop['closeout_document_id']}", PM)
        assert closeout.status_code == 200 and "Consortium dissolved" in closeout.text
        assert "before &lt;stage 2&gt;" in closeout.text  # the lessons, escaped, in the report
        # Failure stays searchable for the programme, for those who may see the project.
        found = (await stack.call("GET", "/closed-out", "ops.kimura", params={"q": "industrial partner"})).json()[
            "items"
        ]
        assert [c["project_id"] for c in found] == [project_id]
        [entry] = found
        assert entry["reason"].endswith("Consortium dissolved") and entry["lessons"] == lessons
        assert (entry["trl_reached"], entry["paid"], entry["released"]) == (
            1,
            first_tranche,
            stage1_budget - first_tranche,
        )
        assert entry["closeout_document_id"] == stop["closeout_document_id"] and entry["closed_at"]
        assert (await stack.call("GET", "/closed-out", "ops.kimura", params={"q": "no such words"})).json()[
            "items"
        ] == []
        assert (await stack.call("GET", "/closed-out", "pm.tanaka")).json()["items"] == []  # not their project
        async with stack.sessionmaker() as session:
            res = await session.get(Reservation, (project_id, 1, 0))
            assert res is not None and res.status == "released" and res.paid == first_tranche
            assert await ledger.balance(session, ledger.reservation_account(project_id)) == 0
            assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []
