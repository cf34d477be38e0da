"""The notification centre: the service (counts, paging, marking read only one's own, on SQLite
and PostgreSQL), the API's /notifications (unread_only, POST /notifications/read), and the pages
(the unread count in every page's header, marking one or all read, CSRF)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.programme import PROGRAMME_CODE
from services import notifications
from storage.db import make_engine, make_sessionmaker
from storage.models import Notification
from storage.projects import insert_project
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import proposal

T0 = datetime(2027, 4, 1, 9, 0, tzinfo=UTC)
ME, OTHER = "rev.ito", "rev.kato"
JA = {"Accept-Language": "ja-JP,ja;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


async def seed(
    sm: async_sessionmaker[AsyncSession], mine: int, others: int = 2, kind: str = "reminder"
) -> tuple[str, list[str]]:
    """A project, `mine` notices to ME an hour apart (key n-0 the oldest) and `others` to OTHER."""
    p = proposal()
    assert p.project_id is not None
    async with sm.begin() as s:
        assert await insert_project(s, PROGRAMME_CODE, f"project-{p.project_id}", p)
        for n in range(mine):
            s.add(
                Notification(
                    key=f"n-{n}",
                    project_id=p.project_id,
                    recipient=ME,
                    kind=kind,
                    message=f"notice {n}",
                    at=T0 + timedelta(hours=n),
                )
            )
        for n in range(others):
            s.add(
                Notification(
                    key=f"o-{n}",
                    project_id=p.project_id,
                    recipient=OTHER,
                    kind=kind,
                    message=f"theirs {n}",
                    at=T0 + timedelta(hours=n),
                )
            )
    return p.project_id, [f"n-{n}" for n in range(mine)]


async def read_at(sm: async_sessionmaker[AsyncSession]) -> dict[str, datetime | None]:
    async with sm() as s:
        return {n.key: n.read_at for n in (await s.scalars(select(Notification))).all()}


# --- the service, on both databases --------------------------------------------------------------


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_pages_are_newest_first_counted_in_sql_and_never_show_anothers(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sm, mine=5, others=3)
    async with sm() as s:
        first = await notifications.page(s, ME, 1, per_page=2)
        assert [n.key for n in first.rows] == ["n-4", "n-3"]
        assert (first.page, first.pages, first.total, first.unread) == (1, 3, 5, 5)
        last = await notifications.page(s, ME, 3, per_page=2)
        assert [n.key for n in last.rows] == ["n-0"]
        past = await notifications.page(s, ME, 99, per_page=2)  # past the end: the last page
        assert past.page == 3 and [n.key for n in past.rows] == ["n-0"]
        assert await notifications.unread_count(s, ME) == 5
        assert await notifications.unread_count(s, OTHER) == 3
        assert await notifications.unread_count(s, "nobody") == 0
        theirs = await notifications.page(s, OTHER, 1, per_page=10)
        assert {n.recipient for n in theirs.rows} == {OTHER}
        assert (await notifications.page(s, ME, 1, kind="escalation")).total == 0


async def test_marking_read_touches_only_ones_own_rows_and_is_idempotent(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sm, mine=3, others=2)
    first = datetime(2027, 5, 1, tzinfo=UTC)
    async with sm.begin() as s:
        # Another's key and an unknown key are ignored: never marked, never an error.
        assert await notifications.mark_read(s, ME, ["n-1", "o-0", "no-such"], now=first) == 1
    async with sm.begin() as s:
        assert await notifications.mark_read(s, ME, ["n-1"], now=first + timedelta(days=1)) == 0  # again
        assert await notifications.mark_read(s, ME, []) == 0
    state = await read_at(sm)
    assert state["n-1"] == first  # the first read_at is kept
    assert state["o-0"] is None and state["n-0"] is None
    async with sm() as s:
        assert await notifications.unread_count(s, ME) == 2
        unread = await notifications.page(s, ME, 1, unread_only=True)
        assert [n.key for n in unread.rows] == ["n-2", "n-0"] and unread.total == 2
        everything = await notifications.page(s, ME, 1)
        assert everything.total == 3 and everything.unread == 2
    async with sm.begin() as s:
        assert await notifications.mark_all_read(s, ME, now=first) == 2
        assert await notifications.mark_all_read(s, ME) == 0
    state = await read_at(sm)
    assert all(state[k] is not None for k in ("n-0", "n-1", "n-2"))
    assert state["o-0"] is None and state["o-1"] is None  # the other user's stay unread
    async with sm() as s:
        assert await notifications.unread_count(s, ME) == 0
        assert await notifications.unread_count(s, OTHER) == 2


# --- the API and the pages, in this process ------------------------------------------------------


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


async def test_the_api_lists_unread_only_and_marks_only_the_callers_own(api: InProcessApi) -> None:
    await seed(api.sessionmaker, mine=3, others=2)
    assert (await api.http.post("/notifications/read", json={"keys": ["n-0"]})).status_code == 401
    assert (await api.http.get("/notifications")).status_code == 401
    listed = await api.call("GET", "/notifications", ME)
    assert listed.status_code == 200
    assert [n["key"] for n in listed.json()["items"]] == ["n-2", "n-1", "n-0"]
    assert all(n["read_at"] is None for n in listed.json()["items"])
    assert [n["key"] for n in (await api.call("GET", "/notifications?limit=1", ME)).json()["items"]] == ["n-2"]

    r = await api.call("POST", "/notifications/read", ME, json={"keys": ["n-0", "o-0", "o-1"]})
    assert r.status_code == 200 and r.json() == {"marked": 1, "unread": 2}
    again = await api.call("POST", "/notifications/read", ME, json={"keys": ["n-0"]})
    assert again.json() == {"marked": 0, "unread": 2}
    state = await read_at(api.sessionmaker)
    assert state["n-0"] is not None and state["o-0"] is None and state["o-1"] is None
    unread = await api.call("GET", "/notifications?unread_only=true", ME)
    assert [n["key"] for n in unread.json()["items"]] == ["n-2", "n-1"]
    assert [n["read_at"] is None for n in (await api.call("GET", "/notifications", ME)).json()["items"]] == [
        True,
        True,
        False,
    ]

    everything = await api.call("POST", "/notifications/read", ME, json={"all": True})
    assert everything.json() == {"marked": 2, "unread": 0}
    assert (await api.call("GET", "/notifications?unread_only=true", OTHER)).json()["items"][0]["key"] == "o-1"
    spec = (await api.http.get("/openapi.json")).json()
    assert {"401", "403", "422"} <= set(spec["paths"]["/notifications/read"]["post"]["responses"])
    assert "unread_only" in {p["name"] for p in spec["paths"]["/notifications"]["get"]["parameters"]}
    assert "read_at" in spec["components"]["schemas"]["NotificationOut"]["properties"]
    bad = await api.call("POST", "/notifications/read", ME, json={"keys": "n-1"})
    assert bad.status_code == 422
    assert (await api.call("POST", "/notifications/read", ME, json={"keys": [], "extra": 1})).status_code == 422


def token_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, username: str) -> None:
    form = await http.get("/app/sign-in", headers=EN)
    r = await http.post(
        "/app/sign-in",
        data={"username": username, "password": DEMO_PASSWORD, "csrftoken": token_of(form), "next": "/app/inbox"},
    )
    assert r.status_code == 303, r.text


def header_count(page: httpx.Response) -> int:
    found = re.search(
        r'href="/app/notifications" aria-label="Notifications, (\d+) unread">Notifications \((\d+)\)', page.text
    )
    assert found, page.text
    assert found.group(1) == found.group(2)
    return int(found.group(1))


async def test_every_page_shows_the_unread_count_in_its_header(api: InProcessApi) -> None:
    await seed(api.sessionmaker, mine=3, others=5)
    await sign_in(api.http, ME)
    inbox = await api.http.get("/app/inbox", headers=EN)
    assert inbox.status_code == 200 and header_count(inbox) == 3
    ja = await api.http.get("/app/inbox", headers=JA)
    assert 'aria-label="通知（未読 3 件）">通知 (3)</a>' in ja.text
    refused = await api.http.get("/app/tasks/no-such-task", headers=EN)  # any page with a viewer
    assert refused.status_code == 404 and header_count(refused) == 3
    centre = await api.http.get("/app/notifications", headers=EN)
    assert header_count(centre) == 3
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as stranger:
        assert "/app/notifications" not in (await stranger.get("/app/sign-in", headers=EN)).text


async def test_the_count_is_one_query(api: InProcessApi) -> None:
    await seed(api.sessionmaker, mine=3)
    await sign_in(api.http, ME)
    api.statements.clear()
    await api.http.get("/app/inbox", headers=EN)
    counts = [s for s in api.statements if "FROM notifications" in s]
    assert len(counts) == 1 and "count(" in counts[0].lower()


async def test_the_centre_lists_newest_first_marks_unread_and_links_to_the_work(api: InProcessApi) -> None:
    project_id, _ = await seed(api.sessionmaker, mine=2, others=1)
    async with api.sessionmaker.begin() as s:
        s.add(
            Notification(
                key="h-0",
                project_id=project_id,
                recipient=ME,
                kind="handoff_reminder",
                message="answer the hand-off",
                at=T0 + timedelta(days=1),
            )
        )
        s.add(
            Notification(
                key="x-0",
                project_id=project_id,
                recipient=ME,
                kind="report_overdue",
                message="the report is late",
                at=T0 - timedelta(days=1),
            )
        )
    assert (await api.http.get("/app/notifications")).headers["location"] == "/app/sign-in?next=/app/notifications"
    await sign_in(api.http, ME)
    page = await api.http.get("/app/notifications", headers=EN)
    assert page.status_code == 200
    text = page.text
    order = [text.index(m) for m in ("answer the hand-off", "notice 1", "notice 0", "the report is late")]
    assert order == sorted(order)
    assert "theirs 0" not in text
    assert text.count('<strong class="unread-mark">Unread</strong>') == 4
    assert "<td>2 Apr 2027, 18:00 JST</td>" in text  # 09:00 UTC on 2 April, in JST (jst_datetime)
    assert project_id in text
    assert '<a href="/app/handoffs">Go to the work</a>' in text
    assert text.count('<a href="/app/inbox">Go to the work</a>') == 2
    # The overdue report's key names no fiscal year: it opens the list of the reports.
    assert '<a href="/app/reports">Go to the work</a>' in text
    assert text.count("Go to the work") == 4
    assert "<caption>" in text and '<th scope="col">' in text


async def test_marking_one_read_and_then_all_posts_and_redirects_back(api: InProcessApi) -> None:
    await seed(api.sessionmaker, mine=3, others=2)
    await sign_in(api.http, ME)
    page = await api.http.get("/app/notifications", headers=EN)
    token = token_of(page)
    # Another's key is not marked, and no error says whether it exists.
    r = await api.http.post("/app/notifications/read", data={"csrftoken": token, "key": "o-0"})
    assert r.status_code == 303 and r.headers["location"] == "/app/notifications"
    r = await api.http.post("/app/notifications/read", data={"csrftoken": token, "key": "n-1", "page": "2"})
    assert r.status_code == 303 and r.headers["location"] == "/app/notifications?page=2"
    state = await read_at(api.sessionmaker)
    assert state["n-1"] is not None and state["o-0"] is None
    after = await api.http.get("/app/notifications", headers=EN)
    assert header_count(after) == 2 and after.text.count('class="unread-mark"') == 2
    unread_only = await api.http.get("/app/notifications?unread=1", headers=EN)
    assert "notice 1" not in unread_only.text and "notice 2" in unread_only.text
    r = await api.http.post("/app/notifications/read", data={"csrftoken": token, "all": "true", "unread": "true"})
    assert r.status_code == 303 and r.headers["location"] == "/app/notifications?unread=1"
    done = await api.http.get("/app/notifications", headers=EN)
    assert header_count(done) == 0 and 'class="unread-mark"' not in done.text
    assert "Mark all as read" not in done.text
    state = await read_at(api.sessionmaker)
    assert state["o-0"] is None and state["o-1"] is None


async def test_a_post_without_the_csrf_token_is_refused(api: InProcessApi) -> None:
    await seed(api.sessionmaker, mine=2)
    await sign_in(api.http, ME)
    assert (await api.http.post("/app/notifications/read", data={"key": "n-0"})).status_code == 403
    assert (await api.http.post("/app/notifications/read", data={"all": "true"})).status_code == 403
    state = await read_at(api.sessionmaker)
    assert state["n-0"] is None and state["n-1"] is None


async def test_paging_in_the_centre(api: InProcessApi) -> None:
    await seed(api.sessionmaker, mine=45, others=0)
    await sign_in(api.http, ME)
    first = await api.http.get("/app/notifications", headers=EN)
    assert "Page 1 of 3" in first.text and "notice 44" in first.text and "notice 24" not in first.text
    assert '<a href="/app/notifications?page=2">Next</a>' in first.text
    last = await api.http.get("/app/notifications?page=3", headers=EN)
    assert "Page 3 of 3" in last.text and "<td>notice 0\n" in last.text and "<td>notice 5\n" not in last.text
    assert '<a href="/app/notifications?page=2">Previous</a>' in last.text
