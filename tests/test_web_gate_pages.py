"""The programme manager's gate page over HTTP against the real stack (Temporal in process): from
a freshly started project to an open review round by the pages alone (the evidence package,
prefilled from what the gate requires), the panel's vacancies filled (invite, reassign) and the
deadline extended, the decision (against the panel only with a justification) leading to the
project's page, and a Conditional Go's conditions confirmed. Every refusal re-renders the page
with its status and reason and keeps what was typed; never a 5xx."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from temporalio.client import Client

from domain.handoff import HandoffKind
from storage.models import User
from tests.api_stack import ApiStack, api_stack
from tests.conftest import DEMO_PASSWORD
from tests.support import PM, assert_eventually, handoff_offered, pass_gate, wait_until
from tests.test_api_lifecycle import proposal_body, review_gate, wait_gate_open
from tests.test_handoffs import two_stage
from tests.test_web_handoffs import to_handoffs
from tests.test_web_pages import EN, sign_in, token_of
from workflows.project import workflow_id_for

TITLE = "量子暗号による海洋通信の安全化"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.001) as s:
        yield s


@pytest.fixture
async def pages(stack: ApiStack) -> AsyncIterator[httpx.AsyncClient]:
    """The PM's browser: a cookie session on the pages, in English."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, headers=EN) as http:
        assert (await sign_in(http, PM, DEMO_PASSWORD, EN)).status_code == 303
        yield http


async def post(http: httpx.AsyncClient, path: str, page: str, data: dict[str, str]) -> httpx.Response:
    """Post a form of `page` (its CSRF token) to `path`."""
    return await http.post(path, data={**data, "csrftoken": token_of(await http.get(page))})


async def start(stack: ApiStack, reviewers: list[str]) -> str:
    r = await stack.call("POST", "/projects", PM, json=proposal_body(title=TITLE, reviewers=reviewers))
    assert r.status_code == 201, r.text
    project_id: str = r.json()["id"]
    await wait_gate_open(stack, project_id, 1)
    return project_id


async def gate_view(stack: ApiStack, project_id: str) -> dict[str, object]:
    view: dict[str, object] = (await stack.call("GET", f"/projects/{project_id}/gates/1", PM)).json()
    return view


async def test_from_a_fresh_project_to_an_open_review_and_a_full_panel_by_the_pages(
    stack: ApiStack, pages: httpx.AsyncClient
) -> None:
    project_id = await start(stack, ["rev.ito", "rev.kato"])
    gate = f"/app/projects/{project_id}/gates/1"

    # A gate notice's link: the project's gates lead to the one under review.
    r = await pages.get(f"/app/projects/{project_id}/gates")
    assert r.status_code == 303 and r.headers["location"] == gate

    page = await pages.get(gate)
    assert page.status_code == 200
    required = (await gate_view(stack, project_id))["requirements"]
    assert isinstance(required, dict)
    text = html.unescape(page.text)
    assert "Stage report\nTRL 3 test evidence\nNext-stage plan" in text  # the deliverables prefilled
    assert 'name="claimed_trl"' in page.text and 'value="3"' in page.text
    for c in required["must_meet"]:
        assert f'<label for="evidence_{c["key"]}">{html.escape(c["text"])}</label>' in page.text
    assert 'action="' + gate + '/deadline"' not in page.text  # no deadline before the review opens

    # Evidence missing for a must-meet criterion: refused by the workflow, every value kept.
    first, second = (c["key"] for c in required["must_meet"])
    typed = {"claimed_trl": "3", "deliverables": "Stage report\nTRL 3 test evidence\nNext-stage plan"}
    r = await post(pages, gate + "/evidence", gate, {**typed, f"evidence_{first}": "Chapter 4 of the report"})
    assert r.status_code == 409, r.text
    assert f"evidence missing for must-meet criteria: {second}" in r.text
    assert "Chapter 4 of the report" in r.text
    # A claimed TRL that is no number: 422, the value kept.
    r = await post(pages, gate + "/evidence", gate, {**typed, "claimed_trl": "three"})
    assert r.status_code == 422 and 'value="three"' in r.text

    evidence = {**typed, f"evidence_{first}": "Chapter 4", f"evidence_{second}": "Chapter 5"}
    r = await post(pages, gate + "/evidence", gate, evidence)
    assert r.status_code == 303 and r.headers["location"] == gate + "?acted=evidence"
    view = await gate_view(stack, project_id)
    assert view["phase"] == "reviewing"
    assert view["evidence"] == {  # type: ignore[comparison-overlap]
        **view["evidence"],  # type: ignore[dict-item]
        "claimed_trl": 3,
        "criteria_evidence": {first: "Chapter 4", second: "Chapter 5"},
    }
    page = await pages.get(gate + "?acted=evidence")
    assert "The evidence package is in: the review is open." in page.text
    assert 'action="' + gate + '/evidence"' not in page.text  # done: the form is gone
    r = await post(pages, gate + "/open", gate, {})
    assert r.status_code == 409 and "the review is open already" in r.text

    # A reviewer declines: a vacancy, and the reviewers who may fill it offered.
    tasks = (await stack.call("GET", "/tasks", "rev.kato", params={"status": "invited"})).json()["items"]
    (task,) = [t for t in tasks if t["project_id"] == project_id]
    r = await stack.call("POST", f"/tasks/{task['id']}/respond", "rev.kato", json={"accept": False})
    assert r.status_code == 200, r.text
    page = await pages.get(gate)
    assert "1 panel seat unfilled." in page.text and "Declined or recused: rev.kato" in page.text
    assert '<option value="rev.mori"' in page.text
    for seated in ("rev.ito", "rev.kato", PM):  # on the panel already, or the project's own PM
        assert f'<select id="invite-reviewer" name="reviewer" required>\n    <option value="{seated}"' not in page.text
    r = await post(pages, gate + "/invitations", gate, {"reviewer": "rev.ito"})
    assert r.status_code == 409 and "rev.ito has been on this panel already" in r.text
    r = await post(pages, gate + "/invitations", gate, {"reviewer": "pm.tanaka"})
    assert r.status_code == 422 and "is not a registered reviewer" in r.text
    r = await post(pages, gate + "/invitations", gate, {"reviewer": "rev.mori"})
    assert r.status_code == 303 and r.headers["location"] == gate + "?acted=invited"
    page = await pages.get(gate + "?acted=invited")
    assert "The reviewer is invited." in page.text and "0 panel seats unfilled." in page.text
    assert "<tr><td>rev.mori</td>" in page.text

    # A silent reviewer replaced by a newly registered one.
    async with stack.sessionmaker.begin() as session:
        session.add(User(username="rev.new", full_name="New Reviewer", password_hash="x", roles=["reviewer"]))
    r = await post(pages, gate + "/reassign", gate, {"from_reviewer": "rev.ito", "to_reviewer": "rev.new"})
    assert r.status_code == 303 and r.headers["location"] == gate + "?acted=reassigned"
    members = {m["reviewer"]: m["status"] for m in (await gate_view(stack, project_id))["members"]}  # type: ignore[attr-defined]
    assert members == {"rev.ito": "reassigned", "rev.kato": "declined", "rev.mori": "invited", "rev.new": "invited"}

    # The deadline: a bad number kept, then moved by the days asked for.
    due = datetime.fromisoformat(str((await gate_view(stack, project_id))["due_at"]))
    r = await post(pages, gate + "/deadline", gate, {"extra_days": "0"})
    assert r.status_code == 422 and 'name="extra_days"' in r.text and 'value="0"' in r.text
    r = await post(pages, gate + "/deadline", gate, {"extra_days": "5"})
    assert r.status_code == 303 and r.headers["location"] == gate + "?acted=extended"
    later = datetime.fromisoformat(str((await gate_view(stack, project_id))["due_at"]))
    assert (later - due).total_seconds() == pytest.approx(5 * 0.001, abs=1e-4)

    # No reviews yet: a decision is refused with the quorum's reason, the justification kept.
    r = await post(pages, gate + "/decision", gate, {"decision": "go", "justification": "urgent need"})
    assert r.status_code == 409 and "the quorum is" in r.text and "urgent need" in r.text


async def test_another_pm_is_refused_the_gates_commands(stack: ApiStack) -> None:
    project_id = await start(stack, ["rev.ito"])
    gate = f"/app/projects/{project_id}/gates/1"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, headers=EN) as other:
        assert (await sign_in(other, "pm.tanaka", DEMO_PASSWORD, EN)).status_code == 303
        token = token_of(await other.get("/app/gates"))
        r = await other.post(gate + "/open", data={"csrftoken": token})
        assert r.status_code == 404 and "Not available" in r.text  # the API hides it from him
    assert (await gate_view(stack, project_id))["phase"] == "awaiting_evidence"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, headers=EN) as reviewer:
        assert (await sign_in(reviewer, "rev.ito", DEMO_PASSWORD, EN)).status_code == 303
        assert (await reviewer.get(gate)).status_code == 403


async def test_a_decision_leads_to_the_projects_page_and_conditions_are_confirmed(
    stack: ApiStack, pages: httpx.AsyncClient
) -> None:
    project_id = await start(stack, ["rev.ito", "rev.kato", "rev.mori"])
    await review_gate(stack, project_id, 1)  # the evidence and three reviews recommending Go
    gate = f"/app/projects/{project_id}/gates/1"

    # The reviews came in after the due date (a day is a millisecond here): the PM is told the
    # decision is needed, and the notices lead to the gate.
    async def kinds_told() -> list[str]:
        return [n["kind"] for n in (await stack.call("GET", "/notifications", PM)).json()["items"]]

    # The decision_needed notice comes from the round's timer (an activity after the last review).
    await assert_eventually(kinds_told, "the decision asked for", until=lambda k: "decision_needed" in k)
    notices = await pages.get("/app/notifications")
    assert "every review is in: your decision is needed" in notices.text
    assert "Every review of gate 1 (round 1)" in notices.text  # the panel_complete notice too
    kinds = await kinds_told()
    assert kinds.count("decision_needed") == 1 and kinds.count("panel_complete") == 1, kinds
    assert set(kinds) <= {"decision_needed", "panel_complete", "escalation"}, kinds  # every one the gate's
    assert notices.text.count(f'href="/app/projects/{project_id}/gates"') == len(kinds)
    r = await pages.get(f"/app/projects/{project_id}/gates")
    assert r.status_code == 303 and r.headers["location"] == gate
    page = await pages.get(gate)
    for label in (
        "Justification (required to decide against the panel)",
        "Conditions for a Conditional Go (one per line)",
        "Days to meet the conditions",
        "Recycle: extra days for the stage",
        "Recycle: extra budget in yen",
    ):
        assert f">{label}</label>" in page.text

    # Against the panel without a justification: the API's refusal, the choice kept.
    r = await post(pages, gate + "/decision", gate, {"decision": "kill", "lessons": "what we learnt"})
    assert r.status_code == 409 and "justification" in r.text
    assert 'value="kill" checked' in r.text and "what we learnt" in r.text

    decision = {
        "decision": "conditional_go",
        "conditions": "Sea trial report\nSafety case",
        "conditions_due_days": "3650",
    }
    r = await post(pages, gate + "/decision", gate, decision)
    assert r.status_code == 303 and r.headers["location"] == f"/app/projects/{project_id}"

    conditions = f"/app/projects/{project_id}/conditions"
    page = await pages.get(conditions)
    assert page.status_code == 200 and "The conditions are due by" in page.text
    r = await post(pages, conditions + "/verify", conditions, {"note": "both delivered"})
    assert r.status_code == 303 and r.headers["location"] == f"/app/projects/{project_id}"
    r = await post(pages, conditions + "/verify", conditions, {"note": "again"})
    assert r.status_code == 409 and "verified already" in r.text and "again" in r.text


async def test_the_pm_re_routes_a_declined_hand_off_and_is_told_why_conclusion_must_wait(
    stack: ApiStack, pages: httpx.AsyncClient
) -> None:
    project_id = await to_handoffs(stack)
    handoffs = {h["ministry"]: h for h in (await stack.call("GET", "/handoffs", PM)).json()["items"]}
    mod, mlit = handoffs["MOD"]["id"], handoffs["MLIT"]["id"]
    # Offered and not yet overdue: nothing to re-route.
    page = await pages.get(f"/app/handoffs/{mod}")
    assert page.status_code == 200 and 'action="/app/handoffs/' + mod + '/reroute"' not in page.text
    assert f'href="/app/projects/{project_id}/handoffs"' in page.text
    # A liaison sees no re-route form on a declined one either: only the project's PM does.
    r = await stack.call("POST", f"/handoffs/{mlit}/decline", "liaison.mlit", json={"reason": "not our remit"})
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, headers=EN) as liaison:
        assert (await sign_in(liaison, "liaison.mlit", DEMO_PASSWORD, EN)).status_code == 303
        assert "/reroute" not in (await liaison.get(f"/app/handoffs/{mlit}")).text

    handoff = f"/app/handoffs/{mlit}"
    page = await pages.get(handoff)
    assert '<label for="to_ministry">To the ministry</label>' in page.text
    assert '<option value="JCG">Japan Coast Guard (JCG)</option>' in page.text
    assert '<option value="MLIT"' not in page.text  # not back to the ministry that declined
    r = await post(pages, handoff + "/reroute", handoff, {"to_ministry": "nowhere", "note": "try the coast guard"})
    assert r.status_code == 422 and "try the coast guard" in r.text
    r = await post(pages, handoff + "/reroute", handoff, {"to_ministry": "JCG", "note": "try the coast guard"})
    assert r.status_code == 303 and r.headers["location"] == handoff
    after = (await stack.call("GET", f"/handoffs/{mlit}", PM)).json()
    assert after["status"] == "declined" and after["rerouted_to"] == "JCG"

    # The project's hand-offs: listed, and the two project-level forms refuse with the API's reason.
    listing = f"/app/projects/{project_id}/handoffs"
    await handoff_offered(stack.client, project_id, "JCG")
    page = await pages.get(listing)
    assert page.status_code == 200
    for ministry in ("MOD", "MLIT", "JCG"):
        assert f">{ministry}</a></td>" in page.text
    r = await post(pages, listing + "/conclude", listing, {"note": "done with it"})
    assert r.status_code == 409 and "hand-offs are still open" in r.text and "done with it" in r.text
    r = await post(
        pages, f"/app/projects/{project_id}/demo-handoffs", listing, {"ministry": "NPA", "purpose": "a trial"}
    )
    assert 400 <= r.status_code < 500 and "a trial" in r.text
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, headers=EN) as other:
        assert (await sign_in(other, "pm.tanaka", DEMO_PASSWORD, EN)).status_code == 303
        assert (await other.get(listing)).status_code == 404  # not his project: the API's access


async def test_a_demonstration_hand_off_from_trl_7_on_by_the_pm_s_page(
    stack: ApiStack, pages: httpx.AsyncClient
) -> None:
    p = two_stage(performer="perf.aoki")
    r = await stack.call("POST", "/projects", PM, json=p.model_dump(mode="json", exclude_none=True))
    assert r.status_code == 201, r.text
    listing = f"/app/projects/{p.project_id}/handoffs"
    demo = f"/app/projects/{p.project_id}/demo-handoffs"
    await wait_until(
        stack.client.get_workflow_handle(workflow_id_for(p.project_id)), lambda s: s.phase == "stage", "stage"
    )
    page = await pages.get(listing)
    assert page.status_code == 200 and "Nothing here." in page.text
    typed = {"ministry": "MOD", "purpose": "Fleet exercise", "deliverables": "Prototype\nTest report"}
    r = await post(pages, demo, listing, typed)
    assert r.status_code == 409 and "needs TRL 7" in r.text
    assert (
        "Fleet exercise" in r.text and "Prototype\nTest report" in r.text and '<option value="MOD" selected>' in r.text
    )
    r = await post(pages, demo, listing, {**typed, "ministry": "not a code!"})
    assert r.status_code == 422 and "ministry" in r.text and "Fleet exercise" in r.text

    await pass_gate(stack.client, p, 1)  # TRL 7
    r = await post(pages, demo, listing, typed)
    assert r.status_code == 303 and r.headers["location"] == listing + "?done=demo"
    await handoff_offered(stack.client, p.project_id, "MOD", HandoffKind.DEMONSTRATION)
    page = await pages.get(listing + "?done=demo")
    assert "The demonstration hand-off is offered." in page.text
    assert ">MOD</a></td>\n      <td>Demonstration</td>" in page.text


async def test_the_pm_concludes_the_hand_offs_once_each_has_its_answer(
    stack: ApiStack, pages: httpx.AsyncClient
) -> None:
    project_id = await to_handoffs(stack)
    handoffs = {h["ministry"]: h["id"] for h in (await stack.call("GET", "/handoffs", PM)).json()["items"]}
    r = await stack.call(
        "POST", f"/handoffs/{handoffs['MOD']}/accept", "liaison.mod", json={"receiving_programme": "Fleet"}
    )
    assert r.status_code == 200, r.text
    r = await stack.call("POST", f"/handoffs/{handoffs['MLIT']}/decline", "liaison.mlit", json={"reason": "not ours"})
    assert r.status_code == 200, r.text
    listing = f"/app/projects/{project_id}/handoffs"
    r = await post(pages, listing + "/conclude", listing, {"note": "no re-route"})
    assert r.status_code == 303 and r.headers["location"] == listing + "?done=concluded"
    detail = (await stack.call("GET", f"/projects/{project_id}", PM)).json()
    assert detail["status"] == "completed", detail["status"]
