"""Hand-offs and the performer's withdrawal over HTTP: decline with a reason, re-route by the PM,
an early demonstration hand-off, the ministry registry, and clear refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import Client

from domain.gate_review import GateDecisionInput
from domain.handoff import HandoffKind, handoff_id
from domain.project import Decision
from domain.roles import Role
from storage.models import Handoff, Project
from storage.seed import add_user
from tests.api_stack import DEMO_PASSWORD, ApiStack, api_stack
from tests.support import PM, decide_gate, handoff_offered, pass_gate, review_round, wait_until
from tests.test_handoffs import two_stage
from workflows.project import workflow_id_for


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.05) as s:
        async with s.sessionmaker.begin() as session:
            await add_user(session, "liaison.npa", "NPA liaison", DEMO_PASSWORD, [Role.MINISTRY], "NPA")
        yield s


async def start(stack: ApiStack, **overrides: Any) -> Any:
    p = two_stage(performer="perf.aoki", **overrides)
    r = await stack.call("POST", "/projects", PM, json=p.model_dump(mode="json", exclude_none=True))
    assert r.status_code == 201, r.text
    return p


async def test_decline_reroute_and_demonstration_over_http(stack: ApiStack) -> None:
    p = await start(stack, policy={"handoff": {"reroute_days": 400}})
    pid = p.project_id
    ministries = {m["code"]: m["liaisons"] for m in (await stack.call("GET", "/ministries", PM)).json()}
    assert ministries["MOD"] == ["liaison.mod"] and ministries["NPA"] == ["liaison.npa"]

    await wait_until(stack.client.get_workflow_handle(workflow_id_for(pid)), lambda s: s.phase == "stage", "stage")
    demo = {"ministry": "MOD", "brief": {"purpose": "Fleet exercise"}}
    r = await stack.call("POST", f"/projects/{pid}/demo-handoffs", PM, json=demo)
    assert r.status_code == 409 and "needs TRL 7" in r.text
    await pass_gate(stack.client, p, 1)
    r = await stack.call("POST", f"/projects/{pid}/demo-handoffs", PM, json={"ministry": "XYZ"})
    assert r.status_code == 422 and "not in the ministry registry" in r.text
    r = await stack.call("POST", f"/projects/{pid}/demo-handoffs", "pm.tanaka", json=demo)
    assert r.status_code == 404  # not their project
    r = await stack.call("POST", f"/projects/{pid}/demo-handoffs", PM, json=demo)
    assert r.status_code == 200 and r.json()["kind"] == "demonstration", r.text
    await handoff_offered(stack.client, pid, "MOD", HandoffKind.DEMONSTRATION)
    demo_id = handoff_id(pid, "MOD", HandoffKind.DEMONSTRATION)
    r = await stack.call(
        "POST", f"/handoffs/{demo_id}/accept", "liaison.mod", json={"receiving_programme": "JMSDF exercise"}
    )
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text

    gate = await review_round(stack.client, p, 2)
    await decide_gate(stack.client, p, gate, GateDecisionInput(decided_by=PM, decision=Decision.GO))
    for m in ("MOD", "MLIT"):
        await handoff_offered(stack.client, pid, m)
    mlit = handoff_id(pid, "MLIT")
    r = await stack.call("POST", f"/handoffs/{mlit}/decline", "liaison.mod", json={"reason": "Not ours"})
    assert r.status_code == 404  # another ministry's hand-off
    r = await stack.call("POST", f"/handoffs/{mlit}/decline", "liaison.mlit", json={"reason": ""})
    assert r.status_code == 422
    r = await stack.call("POST", f"/handoffs/{mlit}/decline", "liaison.mlit", json={"reason": "Not our remit"})
    assert r.status_code == 200 and r.json()["status"] == "declined", r.text
    r = await stack.call("POST", f"/handoffs/{mlit}/decline", "liaison.mlit", json={"reason": "Twice"})
    assert r.status_code == 409 and "already declined" in r.text
    r = await stack.call("POST", f"/handoffs/{mlit}/reroute", "pm.tanaka", json={"to_ministry": "NPA"})
    assert r.status_code in (403, 404)
    r = await stack.call("POST", f"/handoffs/{mlit}/reroute", PM, json={"to_ministry": "MLIT"})
    assert r.status_code == 409 and "already went to MLIT" in r.text
    r = await stack.call("POST", f"/handoffs/{mlit}/reroute", PM, json={"to_ministry": "NPA"})
    assert r.status_code == 200 and r.json()["ministry"] == "NPA", r.text
    await handoff_offered(stack.client, pid, "NPA")
    for ministry, liaison in (("MOD", "liaison.mod"), ("NPA", "liaison.npa")):
        r = await stack.call(
            "POST", f"/handoffs/{handoff_id(pid, ministry)}/accept", liaison, json={"receiving_programme": "Trials"}
        )
        assert r.status_code == 200, r.text
    outcome = await stack.client.get_workflow_handle(workflow_id_for(pid)).result()
    assert outcome["status"] == "completed" and outcome["public_use_achieved"] is True
    listed = {h["id"]: h for h in (await stack.call("GET", "/handoffs", PM)).json()["items"]}
    assert listed[mlit]["rerouted_to"] == "NPA" and listed[mlit]["reason"] == "Not our remit"
    assert listed[handoff_id(pid, "NPA")]["rerouted_from"] == mlit
    detail = (await stack.call("GET", f"/projects/{pid}", PM)).json()
    assert detail["status"] == "completed" and detail["public_use_achieved"] is True
    async with stack.sessionmaker() as session:
        project = await session.get(Project, pid)
        assert project is not None and project.public_use_achieved is True
        kinds = {h.kind for h in (await session.scalars(select(Handoff).where(Handoff.project_id == pid))).all()}
        assert kinds == {"final", "demonstration"}


async def test_the_performer_withdraws_over_http(stack: ApiStack) -> None:
    p = await start(stack)
    pid = p.project_id
    await wait_until(stack.client.get_workflow_handle(workflow_id_for(pid)), lambda s: s.phase == "stage", "stage")
    body = {"reason": "The consortium dissolved", "lessons": "Check partners' finances yearly"}
    assert (await stack.call("POST", f"/projects/{pid}/withdraw", PM, json=body)).status_code == 403  # not a performer
    r = await stack.call("POST", f"/projects/{pid}/withdraw", "perf.aoki", json={"reason": ""})
    assert r.status_code == 422
    r = await stack.call("POST", f"/projects/{pid}/withdraw", "perf.aoki", json=body)
    assert r.status_code == 200 and r.json()["status"] == "terminated", r.text
    assert "Withdrawn by the performer (perf.aoki)" in r.json()["reason"]
    r = await stack.call("POST", f"/projects/{pid}/withdraw", "perf.aoki", json=body)
    assert r.status_code == 409
    assert (await stack.call("GET", f"/projects/{pid}", PM)).json()["public_use_achieved"] is None  # never completed
    closed = {c["project_id"]: c for c in (await stack.call("GET", "/closed-out", PM)).json()["items"]}
    assert closed[pid]["lessons"] == "Check partners' finances yearly"


async def test_the_pm_concludes_after_a_decline_instead_of_waiting_out_the_reroute_window(stack: ApiStack) -> None:
    p = await start(stack, public_use_ministries=["MLIT"], policy={"handoff": {"reroute_days": 3000}})
    pid = p.project_id
    await pass_gate(stack.client, p, 1)
    gate = await review_round(stack.client, p, 2)
    await decide_gate(stack.client, p, gate, GateDecisionInput(decided_by=PM, decision=Decision.GO))
    await handoff_offered(stack.client, pid, "MLIT")
    r = await stack.call("POST", f"/projects/{pid}/handoffs/conclude", PM, json={})
    assert r.status_code == 409 and "still open: MLIT" in r.text
    r = await stack.call(
        "POST", f"/handoffs/{handoff_id(pid, 'MLIT')}/decline", "liaison.mlit", json={"reason": "No budget"}
    )
    assert r.status_code == 200, r.text
    handle = stack.client.get_workflow_handle(workflow_id_for(pid))
    await wait_until(handle, lambda s: not s.handoffs_pending, "decline recorded")
    assert (await handle.describe()).status.name == "RUNNING"  # the re-route window (3000 days) is open
    assert (await stack.call("POST", f"/projects/{pid}/handoffs/conclude", "pm.tanaka", json={})).status_code == 404
    r = await stack.call("POST", f"/projects/{pid}/handoffs/conclude", PM, json={"note": "No other taker"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["public_use_achieved"] is False
    assert r.json()["handoffs"] == {"MLIT": "declined"}
    detail = (await stack.call("GET", f"/projects/{pid}", PM)).json()
    assert detail["status"] == "completed" and detail["public_use_achieved"] is False
    async with stack.sessionmaker() as session:
        project = await session.get(Project, pid)
        assert project is not None and project.status == "completed" and project.public_use_achieved is False
