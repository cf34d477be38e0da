"""Authentication, roles, data-level visibility and clear refusals, through real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.gate_review import TaskStatus
from storage.models import AuditEntry, Project, Review
from tests.api_stack import ApiStack, api_stack
from tests.support import PM, assert_eventually, short_first_stage
from tests.test_api_lifecycle import BUDGET, proposal_body, wait_gate_open


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.0) as s:
        yield s


async def test_login_and_tokens(stack: ApiStack) -> None:
    bad = await stack.http.post("/auth/token", data={"username": PM, "password": "wrong"})
    assert bad.status_code == 401 and bad.json()["detail"] == "incorrect username or password"
    assert (await stack.call("GET", "/projects")).status_code == 401
    forged = await stack.http.get("/projects", headers={"Authorization": "Bearer not.a.jwt"})
    assert forged.status_code == 401
    me = await stack.call("GET", "/me", PM)
    assert me.json()["roles"] == ["pm"]
    async with stack.sessionmaker() as session:
        outcomes = (await session.scalars(select(AuditEntry.outcome).where(AuditEntry.action == "login"))).all()
        assert "rejected" in outcomes and "ok" in outcomes


@pytest.mark.parametrize(
    ("user", "method", "path", "code"),
    [
        ("rev.ito", "POST", "/projects", 403),
        ("fin.suzuki", "POST", "/projects", 403),
        ("liaison.mod", "GET", "/fund", 403),
        ("rev.ito", "GET", "/fund", 403),
        ("fin.suzuki", "GET", "/fund", 200),
        ("ops.kimura", "GET", "/fund", 200),
        ("pm.sato", "POST", "/handoffs/x/accept", 403),
        ("pm.sato", "POST", "/tasks/x/review", 403),
        ("rev.ito", "POST", "/projects/x/terminate", 403),
        ("liaison.mod", "POST", "/projects/x/gates/1/decision", 403),
    ],
)
async def test_roles_are_enforced(stack: ApiStack, user: str, method: str, path: str, code: int) -> None:
    r = await stack.call(method, path, user, json=proposal_body() if path == "/projects" else {"reason": "xyz"})
    assert r.status_code == code, r.text


async def test_bad_proposals_get_422_and_nothing_starts(stack: ApiStack) -> None:
    cases = [
        (proposal_body(start_trl=7, target_trl=3), "start_trl 7 must be below target_trl 3"),
        (proposal_body(reviewers=["rev.ito", "nobody"]), "reviewer 'nobody' is not a registered reviewer"),
        (proposal_body(reviewers=["fin.suzuki"]), "reviewer 'fin.suzuki' is not a registered reviewer"),
        (proposal_body(public_use_ministries=["XYZ"]), "public-use ministry 'XYZ' is not in the ministry registry"),
        (proposal_body(total_budget=200_000_000_000), "the MEXT allocation has 125000000000 yen available"),
        (proposal_body(total_budget="lots"), "valid integer"),
    ]
    for n, (body, reason) in enumerate(cases):
        body["project_id"] = f"KP-BAD-{n}"
        r = await stack.call("POST", "/projects", PM, json=body)
        assert r.status_code == 422, (r.status_code, r.text)
        assert reason in r.text
    r = await stack.call("POST", "/projects", "pm.tanaka", json=proposal_body())
    assert r.status_code == 403 and "only their own projects" in r.text
    async with stack.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Project)) == 0
    for n in range(len(cases)):
        with pytest.raises(RPCError) as err:
            await stack.client.get_workflow_handle(f"project-KP-BAD-{n}").describe()
        assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_starting_the_same_project_twice_is_refused(stack: ApiStack) -> None:
    body = proposal_body(project_id="KP-TWICE-1")
    assert (await stack.call("POST", "/projects", PM, json=body)).status_code == 201
    r = await stack.call("POST", "/projects", PM, json=body)
    assert r.status_code == 409 and "KP-TWICE-1" in r.json()["detail"]


async def test_reviewers_see_only_their_tasks_and_projects(stack: ApiStack) -> None:
    mine = (await stack.call("POST", "/projects", PM, json=proposal_body(reviewers=["rev.ito", "rev.kato"]))).json()
    other = (await stack.call("POST", "/projects", PM, json=proposal_body(reviewers=["rev.mori"]))).json()
    await wait_gate_open(stack, mine["id"], 1)
    await wait_gate_open(stack, other["id"], 1)
    tasks = (await stack.call("GET", "/tasks", "rev.mori")).json()["items"]
    assert {t["project_id"] for t in tasks} == {other["id"]} and {t["reviewer"] for t in tasks} == {"rev.mori"}
    foreign = f"{mine['id']}-g1-r1-rev.ito"
    assert (await stack.call("GET", f"/tasks/{foreign}", "rev.mori")).status_code == 404
    r = await stack.call("POST", f"/tasks/{foreign}/review", "rev.mori", json={"must_meet": {}, "scores": {}})
    assert r.status_code == 404
    assert (await stack.call("GET", f"/projects/{mine['id']}", "rev.mori")).status_code == 404
    visible = {p["id"] for p in (await stack.call("GET", "/projects", "rev.mori")).json()["items"]}
    assert visible == {other["id"]}
    pm_tasks = (await stack.call("GET", "/tasks", PM)).json()["items"]
    assert len(pm_tasks) == 3
    assert (await stack.call("GET", "/projects", "pm.tanaka")).json()["items"] == []


async def test_review_and_decision_refusals_are_clear(stack: ApiStack) -> None:
    project = (await stack.call("POST", "/projects", PM, json=proposal_body())).json()
    pid = project["id"]
    await wait_gate_open(stack, pid, 1)
    task_id = f"{pid}-g1-r1-rev.ito"
    task = (await stack.call("GET", f"/tasks/{task_id}", "rev.ito")).json()
    good = {
        "must_meet": {c["key"]: True for c in task["must_meet"]},
        "scores": {c["key"]: 4 for c in task["should_meet"]},
    }
    out_of_range = {**good, "scores": {**good["scores"], "team": 9}}
    r = await stack.call("POST", f"/tasks/{task_id}/review", "rev.ito", json=out_of_range)
    assert r.status_code == 422 and "score for team is 9, outside 1..5" in r.json()["detail"]
    r = await stack.call("POST", f"/projects/{pid}/gates/1/decision", PM, json={"decision": "go"})
    assert r.status_code == 409 and "the evidence package has not come in" in r.json()["detail"]
    r = await stack.call(
        "POST",
        f"/projects/{pid}/gates/1/evidence",
        PM,
        json={"claimed_trl": 3, "deliverables": ["report"], "criteria_evidence": {"trl_exit_evidence": "report"}},
    )
    assert r.status_code == 409 and "evidence missing for must-meet criteria: protection_measures" in r.json()["detail"]
    assert (await stack.call("POST", f"/projects/{pid}/gates/1/open", PM)).status_code == 200
    r = await stack.call("POST", f"/tasks/{task_id}/review", "rev.ito", json=good)
    assert r.status_code == 409 and "must accept the invitation" in r.json()["detail"]
    assert (await stack.call("POST", f"/tasks/{task_id}/respond", "rev.ito", json={"accept": True})).status_code == 200
    r = await stack.call("POST", f"/tasks/{task_id}/review", "rev.ito", json=good, headers={"Idempotency-Key": "a b"})
    assert r.status_code == 422 and "Idempotency-Key" in r.text
    key = {"Idempotency-Key": "3f2c9a1e-review"}
    first = await stack.call("POST", f"/tasks/{task_id}/review", "rev.ito", json=good, headers=key)
    assert first.status_code == 200
    # A client's retry with the same key (its answer was lost) gets the first answer, not a refusal.
    again = await stack.call("POST", f"/tasks/{task_id}/review", "rev.ito", json=good, headers=key)
    assert again.status_code == 200 and again.json() == first.json()
    r = await stack.call("POST", f"/tasks/{task_id}/review", "rev.ito", json=good)
    assert r.status_code == 409 and "already reviewed" in r.json()["detail"]
    second = {**good, "comment": "second thoughts"}
    for _ in range(2):  # the same amendment retried: amended once (the key is the command's, per action)
        amended = await stack.call("PUT", f"/tasks/{task_id}/review", "rev.ito", json=second, headers=key)
        assert amended.status_code == 200 and amended.json()["reviews"][0]["comment"] == "second thoughts"
    r = await stack.call("POST", f"/projects/{pid}/gates/1/decision", PM, json={"decision": "go"})
    assert r.status_code == 409 and "1 reviews are in and the quorum is 3" in r.json()["detail"]
    r = await stack.call("POST", f"/projects/{pid}/gates/1/decision", PM, json={"decision": "maybe"})
    assert r.status_code == 422
    r = await stack.call("POST", f"/projects/{pid}/gates/1/decision", "pm.tanaka", json={"decision": "go"})
    assert r.status_code == 404  # not tanaka's project: not even visible
    r = await stack.call("POST", f"/projects/{pid}/gates/1/invitations", PM, json={"reviewer": "fin.suzuki"})
    assert r.status_code == 422 and "not a registered reviewer" in r.json()["detail"]
    r = await stack.call("POST", f"/projects/{pid}/resume", PM, json={})
    assert r.status_code == 409 and "is not on hold" in r.json()["detail"]
    async with stack.sessionmaker() as session:
        rejected = (await session.scalars(select(AuditEntry.action).where(AuditEntry.outcome == "rejected"))).all()
        assert rejected.count("review") == 3 and rejected.count("decide") == 2
        done = (await session.scalars(select(AuditEntry.action).where(AuditEntry.target == f"task:{task_id}"))).all()
        assert done.count("review") == 4 and done.count("amend_review") == 1  # 3 refused, each accepted one once
        stored = await session.get(Review, task_id)
        assert stored is not None and (stored.version, stored.comment) == (2, "second thoughts")
        assert stored.amended_at is not None and stored.submitted_at < stored.amended_at


async def test_health_and_openapi(stack: ApiStack) -> None:
    assert (await stack.call("GET", "/health")).json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    spec = (await stack.call("GET", "/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            codes = set(op["responses"])
            if path not in ("/health", "/health/live", "/health/ready", "/auth/token"):
                assert "401" in codes, (method, path)
            if method == "post" and path != "/auth/token":
                assert {"401", "403"} <= codes, (method, path, codes)
                if "requestBody" in op or op.get("parameters"):  # input that can be invalid
                    assert "422" in codes, (method, path, codes)
    # The task statuses a filter may ask for are the stored ones, documented exactly.
    [status_param] = [p for p in spec["paths"]["/tasks"]["get"]["parameters"] if p["name"] == "status"]
    enum = spec["components"]["schemas"][status_param["schema"]["anyOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert enum == [s.value for s in TaskStatus]
    assert {"invited", "accepted", "submitted", "cancelled"} <= set(enum)
    assert (await stack.call("GET", "/tasks", PM, params={"status": "invited"})).status_code == 200
    refused = await stack.call("GET", "/tasks", PM, params={"status": "done"})
    assert refused.status_code == 422 and "invited" in refused.text


async def test_concurrent_project_starts_do_not_deadlock(stack: ApiStack) -> None:
    responses = await asyncio.gather(*(stack.call("POST", "/projects", PM, json=proposal_body()) for _ in range(8)))
    assert [r.status_code for r in responses] == [201] * 8


async def test_reminders_reach_each_reviewer_and_escalations_the_pm(
    local_client: Client, sqlite_url: str, task_queue: str
) -> None:
    # A day is 10 ms: the 60-day review is due after 0.6 s, with reminders 14 and 3 days before.
    stages = [s.model_dump() for s in short_first_stage(7, 8, BUDGET)]
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.01) as stack:
        pid = (
            await stack.call("POST", "/projects", PM, json=proposal_body(start_trl=7, target_trl=8, stages=stages))
        ).json()["id"]
        await wait_gate_open(stack, pid, 1, timeout=60)
        assert (await stack.call("POST", f"/projects/{pid}/gates/1/open", PM)).status_code == 200

        async def escalations() -> Any:
            return (await stack.call("GET", "/notifications", PM, params={"kind": "escalation"})).json()["items"]

        await assert_eventually(escalations, "an escalation reaching the programme manager", interval=0.1)
        notices = (await stack.call("GET", "/notifications", "rev.kato")).json()["items"]
        reminders = [n for n in notices if n["kind"] == "reminder"]
        # The invitation that asked them to act, then the two reminders: nothing else.
        assert sorted(n["kind"] for n in notices) == ["invitation", "reminder", "reminder"]
        assert all(n["project_id"] == pid for n in notices) and len(reminders) == 2
        assert (await stack.call("GET", "/notifications", "fin.suzuki")).json()["items"] == []
        view = (await stack.call("GET", f"/projects/{pid}/gates/1", PM)).json()
        assert view["overdue"] is True and view["pending"] == ["rev.ito", "rev.kato", "rev.mori"]
        await stack.call("POST", f"/projects/{pid}/terminate", PM, json={"reason": "test over"})
