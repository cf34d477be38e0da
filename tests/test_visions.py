"""Research visions and technology areas over the API (in this process, both databases): who may
read and write the registries, the refusals, retiring; a proposal naming its vision by id; and the
portfolio summary (GET /portfolio/summary) counted in SQL as the portfolio list counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from domain.handoff import HandoffStatus
from domain.programme import PROGRAMME_CODE
from domain.project import ProjectStatus
from services.portfolio import Filters, portfolio
from storage.models import AuditEntry, Document, Gate, Handoff, Project, User
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.support import proposal
from tests.test_web_project_pages import FakeTemporal

NOW = datetime.now(UTC)
PM, ADMIN = "pm.sato", "admin"


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
async def api(db_url: str, temporal: FakeTemporal) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(db_url, temporal=temporal) as api:
        yield api


async def _register(api: InProcessApi, kind: str, title: str, ministry: str = "MEXT", user: str = PM) -> int:
    r = await api.call("POST", f"/{kind}", user, json={"title": title, "ministry": ministry, "description": "d"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_pms_and_admins_write_the_registries_everyone_signed_in_reads_them(api: InProcessApi) -> None:
    quantum = await _register(api, "visions", "Quantum sensing for navigation")
    ai = await _register(api, "areas", "AI", ministry="METI", user=ADMIN)
    for user in ("rev.mori", "perf.aoki", "liaison.mlit", "fin.suzuki"):
        listed = await api.call("GET", "/visions", user)
        assert listed.status_code == 200 and [v["title"] for v in listed.json()] == ["Quantum sensing for navigation"]
        one = await api.call("GET", f"/areas/{ai}", user)
        assert one.status_code == 200 and (one.json()["title"], one.json()["ministry"]) == ("AI", "METI")
        refused = await api.call("POST", "/visions", user, json={"title": "Mine", "ministry": "MEXT"})
        assert refused.status_code == 403 and "programme managers and administrators" in refused.json()["detail"]
        assert (await api.call("POST", f"/visions/{quantum}/retire", user)).status_code == 403
    assert (await api.http.get("/visions")).status_code == 401
    async with api.sessionmaker() as s:
        actions = set((await s.scalars(select(AuditEntry.action).where(AuditEntry.outcome == "ok"))).all())
    assert {"create_visions", "create_areas"} <= actions


async def test_bad_entries_are_refused_with_their_reasons_and_nothing_is_written(api: InProcessApi) -> None:
    await _register(api, "visions", "Marine domain awareness")
    unknown = await api.call("POST", "/visions", PM, json={"title": "Space debris", "ministry": "XYZ"})
    assert unknown.status_code == 422 and "ministry 'XYZ' is not in the ministry registry" in unknown.json()["detail"]
    twice = await api.call("POST", "/visions", PM, json={"title": "marine DOMAIN awareness", "ministry": "MEXT"})
    assert twice.status_code == 422 and "has the title" in twice.json()["detail"]
    short = await api.call("POST", "/visions", PM, json={"title": "ab", "ministry": "MEXT"})
    assert short.status_code == 422 and "3 characters at least" in short.json()["detail"]  # an area's may be "AI"
    control = await api.call("POST", "/areas", PM, json={"title": "AI\u202e", "ministry": "MEXT"})
    assert control.status_code == 422
    assert (await api.call("GET", "/visions/99999", PM)).status_code == 404
    assert (await api.call("GET", f"/visions/{2**40}", PM)).status_code == 422  # past INTEGER: refused, no 500
    listed = await api.call("GET", "/visions", PM)
    assert [v["title"] for v in listed.json()] == ["Marine domain awareness"]
    async with api.sessionmaker() as s:
        rejected = (await s.scalars(select(AuditEntry.action).where(AuditEntry.outcome == "rejected"))).all()
    assert rejected.count("create_visions") == 3  # the database's refusals are audited


async def test_editing_and_retiring_keep_a_retired_entry_readable_but_unchoosable(api: InProcessApi) -> None:
    space = await _register(api, "visions", "Space situational awareness")
    edited = await api.call(
        "PUT", f"/visions/{space}", PM, json={"title": "Space domain awareness", "ministry": "METI"}
    )
    assert edited.status_code == 200 and (edited.json()["title"], edited.json()["ministry"]) == (
        "Space domain awareness",
        "METI",
    )
    retired = await api.call("POST", f"/visions/{space}/retire", ADMIN)
    assert retired.status_code == 200 and retired.json()["retired_at"] and retired.json()["retired_by"] == ADMIN
    assert (await api.call("POST", f"/visions/{space}/retire", ADMIN)).status_code == 409
    again = await api.call("PUT", f"/visions/{space}", PM, json={"title": "Other", "ministry": "METI"})
    assert again.status_code == 409
    assert (await api.call("GET", f"/visions/{space}", "rev.ito")).status_code == 200  # still readable
    everything = await api.call("GET", "/visions", PM)
    active = await api.call("GET", "/visions", PM, params={"active": "true"})
    assert [v["id"] for v in everything.json()] == [space] and active.json() == []


def _body(**overrides: Any) -> dict[str, Any]:
    data = proposal(**overrides).model_dump(mode="json", exclude_none=True)
    data.pop("stages")  # the default plan, filled again by the API
    return data


async def test_a_proposal_names_its_vision_and_area_by_id(api: InProcessApi, temporal: FakeTemporal) -> None:
    vision = await _register(api, "visions", "Autonomous undersea inspection")
    area = await _register(api, "areas", "Marine")
    body = _body(vision_id=vision, area_id=area)
    del body["research_vision"]
    started = await api.call("POST", "/projects", PM, json=body)
    assert started.status_code == 201, started.text
    [sent] = temporal.started
    # The workflow's payload carries the vision's title as the text it always carried, and its id.
    assert (sent.proposal.research_vision, sent.proposal.vision_id, sent.proposal.area_id) == (
        "Autonomous undersea inspection",
        vision,
        area,
    )
    assert (started.json()["vision_id"], started.json()["area_id"]) == (vision, area)
    async with api.sessionmaker() as s:
        row = await s.get(Project, started.json()["id"])
    assert row is not None and (row.vision_id, row.area_id, row.research_vision) == (
        vision,
        area,
        "Autonomous undersea inspection",
    )


async def test_an_unknown_or_retired_vision_or_area_is_refused_and_nothing_starts(
    api: InProcessApi, temporal: FakeTemporal
) -> None:
    old = await _register(api, "visions", "Retired vision")
    old_area = await _register(api, "areas", "Retired area")
    assert (await api.call("POST", f"/visions/{old}/retire", PM)).status_code == 200
    assert (await api.call("POST", f"/areas/{old_area}/retire", PM)).status_code == 200
    for overrides, reason in (
        ({"vision_id": 424242}, "research vision 424242 is not registered"),
        ({"vision_id": old}, f"research vision {old} (Retired vision) is retired: choose an active one"),
        ({"area_id": old_area}, f"technology area {old_area} (Retired area) is retired"),
        ({"area_id": 77777}, "technology area 77777 is not registered"),
    ):
        r = await api.call("POST", "/projects", PM, json=_body(**overrides))
        assert r.status_code == 422 and reason in r.json()["detail"], (overrides, r.text)
    nothing = _body()
    del nothing["research_vision"]
    r = await api.call("POST", "/projects", PM, json=nothing)
    assert r.status_code == 422 and "name the research vision" in r.text
    assert temporal.started == []
    async with api.sessionmaker() as s:
        assert (await s.scalars(select(Project.id))).all() == []


async def test_an_old_clients_text_names_the_active_vision_of_that_title(
    api: InProcessApi, temporal: FakeTemporal
) -> None:
    vision = await _register(api, "visions", "Secure communications for maritime domain awareness")
    r = await api.call("POST", "/projects", PM, json=_body())  # research_vision as text, no id
    assert r.status_code == 201, r.text
    other = await api.call("POST", "/projects", PM, json=_body(research_vision="A vision nobody registered"))
    assert other.status_code == 201, other.text
    assert [s.proposal.vision_id for s in temporal.started] == [vision, None]


# --- the portfolio summary --------------------------------------------------------------------------


def _row(n: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "id": f"KP-D{n:04d}",
        "programme_code": PROGRAMME_CODE,
        "workflow_id": f"project-KP-D{n:04d}",
        "title": f"Dashboard project {n}",
        "organisation": "Test",
        "programme_manager": PM,
        "funding_ministry": "MEXT",
        "research_vision": "text",
        "classification": "open",
        "start_trl": 1,
        "target_trl": 9,
        "current_trl": 1,
        "stage_no": 1,
        "status": "active",
        "total_budget": 1_000_000_000,
        "reviewers": ["rev.mori"],
        "public_use_ministries": ["MOD"],
        "created_at": NOW + timedelta(seconds=n),
    }
    row.update(overrides)
    return row


def _gate(project_id: str, due: datetime) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "gate_no": 1,
        "status": "open",
        "round": 1,
        "due_at": due,
        "workflow_id": "g",
        "definition": {},
        "opened_at": NOW,
    }


@pytest.fixture
async def portfolio_rows(api: InProcessApi) -> dict[str, int]:
    ids = {
        "quantum": await _register(api, "visions", "Quantum technologies"),
        "marine": await _register(api, "visions", "Marine security"),
        "ai": await _register(api, "areas", "AI"),
        "space": await _register(api, "areas", "Space"),
    }
    rows = [
        _row(0, vision_id=ids["quantum"], area_id=ids["ai"], current_trl=3, stage_no=1),
        _row(1, vision_id=ids["quantum"], area_id=ids["ai"], current_trl=5, stage_no=2, status="on_hold"),
        _row(2, vision_id=ids["quantum"], area_id=ids["space"], current_trl=5, stage_no=3, funding_ministry="METI"),
        _row(3, vision_id=ids["marine"], current_trl=9, stage_no=4, status="completed", public_use_achieved=True),
        _row(
            4,
            vision_id=ids["marine"],
            current_trl=4,
            stage_no=2,
            status="terminated",
            stop_reason="Kill at gate 1",
            lessons="Test the sensor at sea earlier",
            closed_at=NOW,
        ),
        _row(5, current_trl=2),  # free text from before the registry: no vision
        # Closed work (SECRET) on the quantum vision: only a cleared, granted reader counts it.
        _row(
            6,
            vision_id=ids["quantum"],
            classification="closed",
            label_level=2,
            label_compartments=["QS"],
            title="秘匿",
            current_trl=7,
            stage_no=3,
        ),
        _row(7, programme_manager="pm.tanaka", vision_id=ids["marine"]),  # not pm.sato's
    ]
    async with api.sessionmaker.begin() as s:
        await s.execute(insert(Project), rows)
        await s.execute(
            insert(Gate), [_gate("KP-D0000", NOW + timedelta(days=5)), _gate("KP-D0002", NOW - timedelta(days=1))]
        )
        await s.execute(
            insert(Document),
            [
                {
                    "id": "doc-3",
                    "project_id": "KP-D0003",
                    "kind": "handoff_package",
                    "template": "t",
                    "content": "c",
                    "sha256": "0" * 64,
                }
            ],
        )
        await s.execute(
            insert(Handoff),
            [
                {
                    "id": "KP-D0003-h-MOD",
                    "project_id": "KP-D0003",
                    "ministry": "MOD",
                    "status": "accepted",
                    "document_id": "doc-3",
                },
                {
                    "id": "KP-D0003-h-MLIT",
                    "project_id": "KP-D0003",
                    "ministry": "MLIT",
                    "status": "accepted",
                    "document_id": "doc-3",
                },
            ],
        )
    return ids


async def test_the_summary_counts_what_the_portfolio_list_shows(
    api: InProcessApi, portfolio_rows: dict[str, int]
) -> None:
    ids = portfolio_rows
    r, statements = await api.counted("GET", "/portfolio/summary", PM)
    assert r.status_code == 200, r.text
    s = r.json()
    # pm.sato's open projects (0-5): the closed one has no grant, pm.tanaka's is not theirs.
    assert s["total"] == 6 and s["total_budget"] == 6_000_000_000
    assert {b["label"]: b["count"] for b in s["by_vision"]} == {
        "Quantum technologies": 3,
        "Marine security": 2,
        "(no registered vision)": 1,
    }
    assert {b["label"]: b["count"] for b in s["by_area"]} == {"AI": 2, "Space": 1, "(no technology area)": 3}
    assert [(b["key"], b["count"]) for b in s["by_stage"]] == [(1, 2), (2, 2), (3, 1), (4, 1)]
    assert [b["count"] for b in s["by_trl"]] == [0, 1, 1, 1, 2, 0, 0, 0, 1]
    assert {b["key"]: b["count"] for b in s["by_ministry"]} == {"MEXT": 5, "METI": 1}
    assert (s["gates_due"], s["gates_overdue"], s["on_hold"], s["stopped"], s["public_use"]) == (1, 1, 1, 1, 1)
    assert {b["key"]: b["count"] for b in s["handoffs"]}["accepted"] == 1  # one project, two hand-offs
    [lesson] = s["lessons"]
    assert (lesson["project_id"], lesson["lessons"]) == ("KP-D0004", "Test the sensor at sea earlier")
    assert statements <= 20  # GROUP BYs, not a query per project

    # Each figure is the size of the list behind its link (the same conditions in SQL).
    async with api.sessionmaker() as session:
        user = await session.get(User, PM)
        assert user is not None
        for filters, figure in (
            (Filters(vision=ids["quantum"]), 3),
            (Filters(vision=0), 1),
            (Filters(area=ids["ai"]), 2),
            (Filters(trl=5), 2),
            (Filters(stage=2), 2),
            (Filters(overdue_gates=True), 1),
            (Filters(due_gates=True), 1),
            (Filters(handoff=HandoffStatus.ACCEPTED), 1),
            (Filters(public_use=True), 1),
            (Filters(status=ProjectStatus.TERMINATED), 1),
        ):
            assert (await portfolio(session, user, filters, per_page=100)).total == figure, filters

    narrowed = (await api.call("GET", "/portfolio/summary", PM, params={"vision": ids["quantum"], "trl": 5})).json()
    assert narrowed["total"] == 2 and {b["key"]: b["count"] for b in narrowed["by_stage"]} == {2: 1, 3: 1}
    # Every filter at once, the hand-off one inside the query over hand-offs too.
    every = {"area": 0, "ministry": "MEXT", "status": "active", "stage": 1, "overdue": "true", "due": "true"}
    r = await api.call("GET", "/portfolio/summary", PM, params={**every, "handoff": "pending", "public_use": "true"})
    assert r.status_code == 200 and r.json()["total"] == 0, r.text
    accepted = await api.call("GET", "/portfolio/summary", PM, params={"handoff": "accepted"})
    assert {b["key"]: b["count"] for b in accepted.json()["handoffs"]}["accepted"] == 1
    bad = await api.call("GET", "/portfolio/summary", PM, params={"trl": 12})
    assert bad.status_code == 422


async def test_closed_work_counts_only_for_a_cleared_and_granted_reader(
    api: InProcessApi, portfolio_rows: dict[str, int]
) -> None:
    quantum = portfolio_rows["quantum"]
    ops = (await api.call("GET", "/portfolio/summary", "ops.kimura", params={"vision": quantum})).json()
    assert ops["total"] == 3 and 7 not in [b["key"] for b in ops["by_trl"] if b["count"]]  # uncleared: left out
    from storage.models import NeedToKnowGrant

    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id="KP-D0006", username="ops.hayashi", granted_by=ADMIN))
    cleared = (await api.call("GET", "/portfolio/summary", "ops.hayashi", params={"vision": quantum})).json()
    assert cleared["total"] == 4 and {b["key"]: b["count"] for b in cleared["by_trl"]}[7] == 1
    hayashi_uncleared = (await api.call("GET", "/portfolio/summary", "ops.kimura")).json()
    assert hayashi_uncleared["total"] == 7  # every open project, none closed
