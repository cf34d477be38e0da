"""The liaison's hand-off pages over HTTP in this process (no Temporal): the inbox of the
liaison's ministry paged in SQL with Japanese titles and overdue marks, the package with its
SHA-256, the answer forms refusing missing input beside the field, and closed work hidden from an
uncleared liaison in the list and on the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain.programme import PROGRAMME_CODE
from domain.security import Level
from services.handoffs import handoff_inbox
from storage.models import AuditEntry, Document, Handoff, NeedToKnowGrant, User
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import PM, ledger_project
from tests.test_web_pages import JA, sign_in, token_of

TITLE = "量子暗号による海洋通信の安全化"
PACKAGE = "<!doctype html><html><body><h1>Hand-off package</h1><p>Results summary: TRL 9 reached</p></body></html>"


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


async def add_handoff(
    api: InProcessApi, n: int, ministry: str = "MOD", *, closed: bool = False, days_left: int = 30
) -> str:
    """A project with a hand-off offered to `ministry` (its package stored), `n` days ago."""
    pid = f"KP-H{n:03d}"
    p = ledger_project(pid, PROGRAMME_CODE, "MEXT", 1_000_000)
    p.title, p.public_use_ministries = f"{TITLE} {n}", [ministry]
    if closed:
        p.classification, p.label_level, p.label_compartments = "closed", int(Level.SECRET), ["QS"]
    now = datetime.now(UTC)
    async with api.sessionmaker.begin() as session:
        session.add(p)
        await session.flush()
        if closed:  # both liaisons hold a grant: clearance alone decides
            for username in ("liaison.mod", "liaison.mlit"):
                session.add(NeedToKnowGrant(project_id=pid, username=username, granted_by="admin", reason="test"))
        doc = Document(
            id=f"{pid}-h-{ministry}-package",
            project_id=pid,
            kind="handoff_package",
            template="t",
            content=PACKAGE,
            sha256=f"{n:064x}",
        )
        session.add(doc)
        await session.flush()
        session.add(
            Handoff(
                id=f"{pid}-h-{ministry}",
                project_id=pid,
                ministry=ministry,
                status="pending",
                document_id=doc.id,
                workflow_id=f"handoff-{pid}-{ministry}",
                created_at=(now - timedelta(days=n)).replace(tzinfo=None),
                deadline_at=(now + timedelta(days=days_left)).replace(tzinfo=None),
            )
        )
    return f"{pid}-h-{ministry}"


async def test_the_inbox_lists_the_ministrys_hand_offs_newest_first_paged_in_sql(api: InProcessApi) -> None:
    for n in range(1, 28):
        await add_handoff(api, n, days_left=-1 if n == 2 else 30)
    await add_handoff(api, 40, "MLIT")
    assert (await sign_in(api.http, "liaison.mod", DEMO_PASSWORD)).status_code == 303
    first = await api.http.get("/app/handoffs", headers=JA)
    assert first.status_code == 200
    assert "貴省庁に提示された移管（27 件）" in first.text and "2 ページ中 1 ページ" in first.text
    assert first.text.index(f"{TITLE} 1<") < first.text.index(f"{TITLE} 2<")  # newest first
    assert f"{TITLE} 40" not in first.text  # another ministry's
    assert first.text.count('class="overdue"') == 1 and "期限超過" in first.text
    assert "提示済み" in first.text and "最終（公的利用）" in first.text
    second = await api.http.get("/app/handoffs?page=2", headers=JA)
    assert f"{TITLE} 26<" in second.text and f"{TITLE} 27<" in second.text and f"{TITLE} 25<" not in second.text
    async with api.sessionmaker() as session:
        user = await session.get(User, "liaison.mod")
        assert user is not None
        page = await handoff_inbox(session, user, 2)
    assert (page.total, page.pages, [r.project_id for r in page.rows]) == (27, 2, ["KP-H026", "KP-H027"])
    # The API lists the same hand-offs (one rule).
    listed = (await api.call("GET", "/handoffs", "liaison.mod")).json()["items"]
    assert len(listed) == 27 and all(h["ministry"] == "MOD" for h in listed)


async def test_the_page_shows_the_package_and_refuses_missing_answers_beside_the_field(api: InProcessApi) -> None:
    hid = await add_handoff(api, 1)
    await sign_in(api.http, "liaison.mod", DEMO_PASSWORD)
    page = await api.http.get(f"/app/handoffs/{hid}", headers=JA)
    assert page.status_code == 200
    assert f"{1:064x}" in page.text and "Results summary: TRL 9 reached" in page.text
    assert 'action="/app/handoffs/' + hid + '/accept"' in page.text
    token = token_of(page)
    empty = await api.http.post(
        f"/app/handoffs/{hid}/accept",
        data={"csrftoken": token, "receiving_programme": " ", "note": "検討済み"},
        headers=JA,
    )
    assert empty.status_code == 422
    assert 'id="err-receiving_programme"' in empty.text and 'aria-describedby="err-receiving_programme"' in empty.text
    assert "成果を引き継ぐ事業または用途を入力してください。" in empty.text and "検討済み" in empty.text
    no_reason = await api.http.post(f"/app/handoffs/{hid}/decline", data={"csrftoken": token, "reason": ""}, headers=JA)
    assert no_reason.status_code == 422 and "辞退の理由を入力してください。" in no_reason.text
    short = await api.http.post(f"/app/handoffs/{hid}/decline", data={"csrftoken": token, "reason": "no"}, headers=JA)
    assert short.status_code == 422 and 'id="err-reason"' in short.text and "at least 3" in short.text
    assert 'value="no"' not in short.text and ">no</textarea>" in short.text  # what was typed is kept
    # Without Temporal the command is refused by the API's own code (503), shown beside the forms.
    down = await api.http.post(
        f"/app/handoffs/{hid}/accept", data={"csrftoken": token, "receiving_programme": "JMSDF"}, headers=JA
    )
    assert down.status_code == 503 and 'role="alert"' in down.text and 'value="JMSDF"' in down.text


async def test_only_the_ministrys_liaison_answers(api: InProcessApi) -> None:
    hid = await add_handoff(api, 1)
    await sign_in(api.http, "liaison.mlit", DEMO_PASSWORD)
    assert (await api.http.get(f"/app/handoffs/{hid}")).status_code == 404  # another ministry's
    pm = await api.http.post("/app/sign-out", data={"csrftoken": token_of(await api.http.get("/app/handoffs"))})
    assert pm.status_code == 303
    await sign_in(api.http, PM, DEMO_PASSWORD)
    page = await api.http.get(f"/app/handoffs/{hid}", headers=JA)
    assert page.status_code == 200 and "/accept" not in page.text  # the PM reads it, no answer forms
    r = await api.http.post(
        f"/app/handoffs/{hid}/accept", data={"csrftoken": token_of(page), "receiving_programme": "x"}, headers=JA
    )
    assert r.status_code == 403 and "ministry" in r.text  # the API's role check


async def test_a_closed_projects_hand_off_is_hidden_from_an_uncleared_liaison(api: InProcessApi) -> None:
    hid = await add_handoff(api, 1, "MLIT", closed=True)
    await add_handoff(api, 2, "MLIT")
    await sign_in(api.http, "liaison.mlit", DEMO_PASSWORD)
    listed = await api.http.get("/app/handoffs", headers=JA)
    assert f"{TITLE} 2<" in listed.text and f"{TITLE} 1<" not in listed.text
    page = await api.http.get(f"/app/handoffs/{hid}", headers=JA)
    assert page.status_code == 403 and f"{1:064x}" not in page.text and PACKAGE not in page.text
    assert [h["id"] for h in (await api.call("GET", "/handoffs", "liaison.mlit")).json()["items"]] == ["KP-H002-h-MLIT"]
    async with api.sessionmaker() as session:
        actions = set((await session.scalars(select(AuditEntry.action))).all())
    assert "list_closed:handoffs" in actions  # the withheld row is audited
