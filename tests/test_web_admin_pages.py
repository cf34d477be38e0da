"""The administrator's pages over HTTP in this process (no Temporal): who may open them, the user
list's paging, the create and edit forms (422 with the reasons beside the fields and what was typed
kept), deactivation and password resets ending the user's page session, need-to-know grants,
the audit log viewer (filters in the address, closed work withheld, the chain's state) and the
ministry registry. Every change is audited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from unittest import mock

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.programme import PROGRAMME_CODE
from domain.security import Level
from services import users_admin
from storage.audit import audit
from storage.models import AuditEntry, NeedToKnowGrant, User
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import CHEAP_HASHES, ledger_project
from tests.test_audit_chain import tamper
from tests.test_web_pages import EN, JA, sign_in, token_of

CLOSED = "KP-ADM-CLOSED"
CLOSED_TITLE = "Quantum gravimeter for submarine detection"


@pytest.fixture(autouse=True)
def cheap_hashes() -> Iterator[None]:
    # The product hashes at argon2's recommended cost; the tests' passwords need not.
    with mock.patch.object(users_admin, "password_hash", CHEAP_HASHES):
        yield


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


@asynccontextmanager
async def browser_of(api: InProcessApi, user: str, password: str = DEMO_PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, user, password)).status_code == 303
        yield http


async def post_form(http: httpx.AsyncClient, page: str, action: str, data: dict[str, object]) -> httpx.Response:
    """Post a form the way the browser does: with the CSRF token of the page it is on."""
    shown = await http.get(page, headers=EN)
    return await http.post(action, data={**data, "csrftoken": token_of(shown)}, headers=EN)


async def closed_project(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A SECRET project in compartment QS with two cleared reviewers, and two entries about it."""
    async with sessionmaker.begin() as s:
        project = ledger_project(CLOSED, PROGRAMME_CODE, "MEXT", 10**9)
        project.title = CLOSED_TITLE
        project.classification = "closed"
        project.label_level = int(Level.SECRET)
        project.label_compartments = ["QS"]
        project.reviewers = ["rev.ito", "rev.kato"]
        s.add(project)
        await s.flush()
        audit(s, "pm.sato", "start_project", f"project:{CLOSED}", title=CLOSED_TITLE)
        audit(s, "liaison.mod", "handoff_accept", f"handoff:{CLOSED}-h-MOD")


async def entries(api: InProcessApi, action: str) -> list[AuditEntry]:
    async with api.sessionmaker() as s:
        return list((await s.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


PAGES = ("/app/admin/users", "/app/admin/users/new", "/app/admin/users/rev.ito", "/app/admin/grants")
PAGES += ("/app/admin/audit", "/app/admin/ministries")


async def test_only_an_administrator_opens_the_admin_pages(api: InProcessApi) -> None:
    for user in ("pm.sato", "ops.hayashi", "fin.suzuki", "liaison.mod"):
        async with browser_of(api, user) as http:
            for page in PAGES:
                answer = await http.get(page, headers=EN)
                assert answer.status_code == 403 and "Full name" not in answer.text, (user, page)
            assert ">Administration<" not in answer.text
            refused = await post_form(http, "/app/projects", "/app/admin/users/rev.ito/active", {"active": "0"})
            assert refused.status_code == 403
    async with api.sessionmaker() as s:
        assert (await s.get(User, "rev.ito")).active  # type: ignore[union-attr]
    async with browser_of(api, "admin") as http:
        for page in PAGES:
            assert (await http.get(page, headers=EN)).status_code == 200, page
        home = await http.get("/app/admin", headers=EN)
        assert home.status_code == 303 and home.headers["location"] == "/app/admin/users"
        users = await http.get("/app/admin/users", headers=JA)
        assert 'href="/app/admin/users">管理</a>' in users.text and "ユーザーを作成" in users.text


async def test_the_user_list_is_paged_and_searched(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        for n in range(20):
            s.add(User(username=f"temp.{n:02d}", full_name=f"Temporary {n}", password_hash="x", roles=["reviewer"]))
    async with browser_of(api, "admin") as http:
        first = await http.get("/app/admin/users", headers=EN)
        assert "33 users." in first.text and "Page 1 of 2" in first.text
        assert 'href="/app/admin/users?page=2"' in first.text
        second = await http.get("/app/admin/users?page=2", headers=EN)
        rows = re.findall(r'<td><a href="/app/admin/users/([^"]+)">', second.text)
        assert len(rows) == 8 and rows == sorted(rows)
        found = await http.get("/app/admin/users?q=Temporary+1", headers=EN)
        assert "11 users." in found.text and 'href="/app/admin/users?q=Temporary+1&amp;page=2"' not in found.text
        bad = await http.get("/app/admin/users?page=0", headers=EN)
        assert bad.status_code == 422 and "page" in bad.text
        assert (await http.get("/app/admin/users?q=a%00b", headers=EN)).status_code == 422
        assert (await http.get("/app/admin/users/a%00b", headers=EN)).status_code == 422


async def test_creating_a_user_keeps_what_was_typed_on_refusal_and_shows_a_generated_password_once(
    api: InProcessApi,
) -> None:
    async with browser_of(api, "admin") as http:
        typed = {
            "username": "Bad Name",
            "full_name": "海上保安庁 連絡担当",
            "roles": ["ministry", "reviewer"],
            "ministry": "JCG",
            "clearance_level": "SECRET",
            "compartments": "qs, ab",
            "password": "short",
        }
        refused = await post_form(http, "/app/admin/users/new", "/app/admin/users/new", typed)
        assert refused.status_code == 422
        assert 'id="username-error"' in refused.text and 'id="password-error"' in refused.text
        assert 'value="Bad Name"' in refused.text and 'value="海上保安庁 連絡担当"' in refused.text
        assert 'value="QS, AB"' not in refused.text and 'value="qs, ab"' in refused.text
        assert re.search(r'value="ministry"\s+checked', refused.text) and re.search(
            r'value="JCG"\s+selected', refused.text
        )
        assert "short" not in refused.text.replace("shortly", "")  # the password never comes back
        no_ministry = await post_form(
            http,
            "/app/admin/users/new",
            "/app/admin/users/new",
            {**typed, "username": "liaison.jcg", "ministry": "", "password": ""},
        )
        assert no_ministry.status_code == 422 and 'id="ministry-error"' in no_ministry.text
        assert "a ministry liaison needs a ministry" in no_ministry.text
        created = await post_form(
            http, "/app/admin/users/new", "/app/admin/users/new", {**typed, "username": "liaison.jcg", "password": ""}
        )
        assert created.status_code == 201 and "The user was created." in created.text
        found = re.search(r'<code id="generated-password">([^<]+)</code>', created.text)
        assert found
        again = await http.get("/app/admin/users/liaison.jcg", headers=EN)
        assert found.group(1) not in again.text and "generated-password" not in again.text
        assert "Secret" in again.text and 'value="AB, QS"' in again.text
    async with browser_of(api, "liaison.jcg", found.group(1)) as http:
        assert (await http.get("/app/handoffs", headers=EN)).status_code == 200
    [entry] = await entries(api, "create_user")
    assert entry.actor == "admin" and found.group(1) not in str(entry.detail)


async def test_an_edit_is_saved_or_refused_beside_its_field(api: InProcessApi) -> None:
    page = "/app/admin/users/rev.mori"
    async with browser_of(api, "admin") as http:
        form = {
            "full_name": "Mori Aoi",
            "email": "mori@example.org",
            "roles": ["reviewer"],
            "ministry": "",
            "clearance_level": "SECRET",
        }
        saved = await post_form(http, page, page, {**form, "compartments": "QS"})
        assert saved.status_code == 303 and saved.headers["location"] == f"{page}?done=saved"
        shown = await http.get(saved.headers["location"], headers=JA)
        assert "変更を保存しました。" in shown.text and "極秘" in shown.text
        refused = await post_form(http, page, page, {**form, "roles": ["ministry"], "full_name": "Mori (typed)"})
        assert refused.status_code == 422 and 'id="ministry-error"' in refused.text
        assert 'value="Mori (typed)"' in refused.text
        empty = await post_form(http, page, page, {**form, "roles": []})
        assert empty.status_code == 422 and 'id="roles-error"' in empty.text
        bad_address = await post_form(http, page, page, {**form, "email": "Mori <mori@example.org>"})
        assert bad_address.status_code == 422 and 'id="email-error"' in bad_address.text
        missing = await http.get("/app/admin/users/nobody", headers=EN)
        assert missing.status_code == 404
    async with api.sessionmaker() as s:
        user = await s.get(User, "rev.mori")
        assert user is not None and user.clearance_level == Level.SECRET and user.roles == ["reviewer"]
        assert user.email == "mori@example.org"
    assert len(await entries(api, "edit_user")) == 1


async def test_deactivating_and_resetting_a_password_end_the_users_page_session(api: InProcessApi) -> None:
    page = "/app/admin/users/rev.kato"
    async with browser_of(api, "rev.kato") as victim, browser_of(api, "admin") as http:
        assert (await victim.get("/app/inbox", headers=EN)).status_code == 200
        off = await post_form(http, page, f"{page}/active", {"active": "0"})
        assert off.status_code == 303 and off.headers["location"] == f"{page}?done=deactivated"
        assert (await victim.get("/app/inbox", headers=EN)).status_code == 303  # back to sign-in
        assert (await sign_in(victim, "rev.kato", DEMO_PASSWORD)).status_code == 401
        on = await post_form(http, page, f"{page}/active", {"active": "1"})
        assert on.status_code == 303
        assert (await sign_in(victim, "rev.kato", DEMO_PASSWORD)).status_code == 303
        assert (await victim.get("/app/inbox", headers=EN)).status_code == 200
        myself = await post_form(http, "/app/admin/users/admin", "/app/admin/users/admin/active", {"active": "0"})
        assert myself.status_code == 422 and "you cannot deactivate yourself" in myself.text
        short = await post_form(http, page, f"{page}/password", {"password": "short"})
        assert short.status_code == 422 and 'id="password-error"' in short.text
        reset = await post_form(http, page, f"{page}/password", {"password": ""})
        assert reset.status_code == 200
        found = re.search(r'<code id="generated-password">([^<]+)</code>', reset.text)
        assert found and "sessions have ended" in reset.text
        assert (await victim.get("/app/inbox", headers=EN)).status_code == 303
        assert (await sign_in(victim, "rev.kato", DEMO_PASSWORD)).status_code == 401
        assert (await sign_in(victim, "rev.kato", found.group(1))).status_code == 303
    assert [e.action for e in await entries(api, "deactivate_user")] == ["deactivate_user"]
    assert len(await entries(api, "reset_password")) == 1


async def test_need_to_know_is_granted_with_a_reason_and_revoked_on_the_grants_page(api: InProcessApi) -> None:
    await closed_project(api.sessionmaker)
    page = f"/app/admin/grants/{CLOSED}"
    async with browser_of(api, "admin") as http:
        listing = await http.get("/app/admin/grants", headers=EN)
        assert CLOSED in listing.text and "Secret · QS" in listing.text
        assert CLOSED_TITLE not in listing.text  # the admin holds no grant: the id and label only
        uncleared = await post_form(http, page, page, {"username": "rev.mori", "reason": "panel member"})
        assert uncleared.status_code == 422 and "clearance does not cover" in uncleared.text
        assert 'value="rev.mori"' in uncleared.text and "panel member</textarea>" in uncleared.text
        short = await post_form(http, page, page, {"username": "rev.ito", "reason": "x"})
        assert short.status_code == 422 and 'id="reason-error"' in short.text
        granted = await post_form(http, page, page, {"username": "rev.ito", "reason": "審査パネルの委員"})
        assert granted.status_code == 303 and granted.headers["location"] == f"{page}?done=granted"
        shown = await http.get(granted.headers["location"], headers=EN)
        assert "The grant was recorded." in shown.text and "審査パネルの委員" in shown.text
        twice = await post_form(http, page, page, {"username": "rev.ito", "reason": "again"})
        assert twice.status_code == 409 and "holds a grant" in twice.text
        revoked = await post_form(http, page, f"{page}/rev.ito/revoke", {})
        assert revoked.status_code == 303
        after = await http.get(f"{page}?done=revoked", headers=EN)
        assert "Nobody holds a grant for this project." in after.text and "Revoked grants" in after.text
        assert (await http.get("/app/admin/grants/KP-NONE", headers=EN)).status_code == 404
    async with api.sessionmaker() as s:
        row = await s.get(NeedToKnowGrant, (CLOSED, "rev.ito"))
        assert row is not None and row.revoked_by == "admin"
    assert len(await entries(api, "grant_need_to_know")) == 1
    assert len(await entries(api, "revoke_need_to_know")) == 1


async def test_the_audit_log_filters_by_address_and_withholds_closed_work(api: InProcessApi) -> None:
    await closed_project(api.sessionmaker)
    async with browser_of(api, "admin") as http:
        log = await http.get("/app/admin/audit", headers=EN)
        assert log.status_code == 200 and "Intact: verified up to entry" in log.text
        assert CLOSED not in log.text and CLOSED_TITLE not in log.text  # project:<id> left out, the rest pseudonymised
        assert "handoff:closed-" in log.text
        logins = await http.get("/app/admin/audit?action=login&actor=admin", headers=EN)
        assert (
            "1 entry." in logins.text
            and "<td>login</td>" in logins.text
            and "<td>start_project</td>" not in logins.text
        )
        by_project = await http.get(f"/app/admin/audit?project={CLOSED}", headers=EN)
        assert "No entry matches." in by_project.text
        dated = await http.get("/app/admin/audit?since=2000-01-01&until=2000-01-31", headers=EN)
        assert "No entry matches." in dated.text
        bad = await http.get("/app/admin/audit?since=2026-13-01&until=2020-01-01&actor=pm.sato", headers=EN)
        assert bad.status_code == 422 and "a date is written YYYY-MM-DD" in bad.text
        assert 'value="2026-13-01"' in bad.text and 'value="pm.sato"' in bad.text
        control = await http.get("/app/admin/audit?actor=a%00b", headers=EN)
        assert control.status_code == 422 and 'id="actor-error"' in control.text
        backwards = await http.get("/app/admin/audit?since=2026-02-01&until=2026-01-01", headers=EN)
        assert backwards.status_code == 422 and "ends before it begins" in backwards.text
    # Granted, the administrator sees the closed project's entries.
    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id=CLOSED, username="admin", granted_by="admin", reason="security officer"))
    async with browser_of(api, "admin") as http:
        granted = await http.get(f"/app/admin/audit?project={CLOSED}", headers=EN)
        assert "2 entries." in granted.text and CLOSED_TITLE in granted.text


async def test_the_audit_log_says_where_its_chain_is_broken(api: InProcessApi) -> None:
    async with browser_of(api, "admin") as http, browser_of(api, "rev.ito"):
        # Two sign-ins: the admin's (the victim below) and rev.ito's, the newest entry verified.
        intact = await http.get("/app/admin/audit", headers=EN)
        assert "Intact: verified up to entry" in intact.text and "Anchors checked with the audit key." in intact.text
        async with api.sessionmaker() as s:
            victim = await s.scalar(select(AuditEntry.id).where(AuditEntry.action == "login").limit(1))
        await tamper(api.sessionmaker, "UPDATE audit_log SET actor = 'someone-else' WHERE id = :i", i=victim)
        # A view walks only the entries since the last one verified (whose own hash it checks);
        # the whole chain on demand, and at least every ten minutes.
        assert "Intact" in (await http.get("/app/admin/audit", headers=EN)).text
        broken = await http.get("/app/admin/audit?verify=full", headers=EN)
        assert f"Broken at entry {victim}." in broken.text and "was changed after it was written" in broken.text
        assert "Intact" not in (await http.get("/app/admin/audit", headers=EN)).text  # and stays broken


async def test_ministries_are_listed_with_their_liaisons_added_and_renamed(api: InProcessApi) -> None:
    page = "/app/admin/ministries"
    async with browser_of(api, "admin") as http:
        listing = await http.get(page, headers=EN)
        assert re.search(r'id="ministry-MOD".*?liaison\.mod', listing.text, re.S)
        bad = await post_form(http, page, page, {"code": "n", "name": "Nuclear Regulation Authority"})
        assert (
            bad.status_code == 422
            and 'id="code-error"' in bad.text
            and 'value="Nuclear Regulation Authority"' in bad.text
        )
        added = await post_form(http, page, page, {"code": "nra", "name": "Nuclear Regulation Authority"})
        assert added.status_code == 303 and "done=created" in added.headers["location"]
        twice = await post_form(http, page, page, {"code": "NRA", "name": "Again"})
        assert twice.status_code == 409 and "already exists" in twice.text
        renamed = await post_form(http, page, f"{page}/MOD", {"name": "防衛省"})
        assert renamed.status_code == 303
        empty = await post_form(http, page, f"{page}/MOD", {"name": ""})
        assert empty.status_code == 422 and 'id="name-MOD-error"' in empty.text
        shown = await http.get(page, headers=EN)
        assert "防衛省" in shown.text and "Nuclear Regulation Authority" in shown.text
    assert len(await entries(api, "create_ministry")) == 1 and len(await entries(api, "edit_ministry")) == 1


async def test_a_form_posted_without_its_csrf_token_is_refused(api: InProcessApi) -> None:
    async with browser_of(api, "admin") as http:
        refused = await http.post("/app/admin/users/rev.ito/active", data={"active": "0"}, headers=EN)
        assert refused.status_code == 403
    async with api.sessionmaker() as s:
        assert (await s.get(User, "rev.ito")).active  # type: ignore[union-attr]
