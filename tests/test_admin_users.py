"""User and ministry administration over the API (services/users_admin.py, services/ministries.py),
on SQLite and PostgreSQL: admin only, paged in SQL, every change audited without a password, a
deactivated user or a reset password ends every session and token issued before."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from unittest import mock

import httpx
import pytest
from sqlalchemy import select

from services import users_admin
from storage.models import AuditEntry, User
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import CHEAP_HASHES
from tests.test_web_admin_pages import CLOSED, CLOSED_TITLE, closed_project


@pytest.fixture(autouse=True)
def cheap_hashes() -> Iterator[None]:
    # The product hashes at argon2's recommended cost; the tests' passwords need not.
    with mock.patch.object(users_admin, "password_hash", CHEAP_HASHES):
        yield


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(db_url) as api:
        yield api


async def token(api: InProcessApi, username: str, password: str) -> httpx.Response:
    return await api.http.post("/auth/token", data={"username": username, "password": password})


def bearer(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def audited(api: InProcessApi, action: str) -> list[AuditEntry]:
    async with api.sessionmaker() as s:
        return list((await s.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


NEW = {
    "username": "liaison.jcg",
    "full_name": "海上保安庁 連絡担当",
    "roles": ["ministry"],
    "ministry": "JCG",
    "clearance_level": "CONFIDENTIAL",
    "compartments": ["QS"],
}


async def test_only_an_administrator_administers_users(api: InProcessApi) -> None:
    for user in ("pm.sato", "ops.kimura", "fin.suzuki"):
        assert (await api.call("GET", "/users", user)).status_code == 403, user
        assert (await api.call("POST", "/users", user, json=NEW)).status_code == 403, user
        assert (await api.call("POST", "/users/rev.ito/deactivate", user)).status_code == 403, user
        assert (await api.call("POST", "/ministries", user, json={"code": "NRA", "name": "x" * 5})).status_code == 403
    assert (await api.http.get("/users")).status_code == 401


async def test_a_user_is_created_with_a_generated_password_shown_once_and_signs_in(api: InProcessApi) -> None:
    created = await api.call("POST", "/users", "admin", json=NEW)
    assert created.status_code == 201, created.text
    body = created.json()
    password = body["generated_password"]
    assert len(password) >= 20
    assert body["user"] == {**NEW, "active": True, "email": None}
    assert (await token(api, "liaison.jcg", password)).status_code == 200
    shown = await api.call("GET", "/users/liaison.jcg", "admin")
    assert shown.status_code == 200 and "password" not in shown.text
    [entry] = await audited(api, "create_user")
    assert entry.actor == "admin" and entry.target == "user:liaison.jcg"
    assert entry.detail["password"] == "generated" and password not in str(entry.detail)
    async with api.sessionmaker() as s:
        row = await s.get(User, "liaison.jcg")
        assert row is not None and password not in row.password_hash  # a hash, not the password
    # The same username again: refused, nothing changed.
    again = await api.call("POST", "/users", "admin", json={**NEW, "full_name": "Someone else"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


async def test_bad_input_is_refused_with_reasons_and_nothing_written(api: InProcessApi) -> None:
    cases = [
        ({**NEW, "username": "Has Spaces"}, "username"),
        ({**NEW, "roles": []}, "roles"),
        ({**NEW, "roles": ["emperor"]}, "roles"),
        ({**NEW, "clearance_level": "ULTRA"}, "clearance_level"),
        ({**NEW, "compartments": ["lower"]}, "compartments"),
        ({**NEW, "password": "short"}, "password"),
        ({**NEW, "full_name": "bell\x07"}, "full_name"),
        ({**NEW, "email": "Jo <jo@example.org>"}, "email"),
        ({**NEW, "email": "jo@example.org\r\nBcc: x@y.z"}, "email"),
    ]
    for body, field in cases:
        answer = await api.call("POST", "/users", "admin", json=body)
        assert answer.status_code == 422, (field, answer.text)
        assert field in str(answer.json()["detail"]), (field, answer.text)
    no_ministry = await api.call("POST", "/users", "admin", json={**NEW, "ministry": None})
    assert no_ministry.status_code == 422 and "needs a ministry" in no_ministry.json()["detail"]
    unknown = await api.call("POST", "/users", "admin", json={**NEW, "ministry": "NOPE"})
    assert unknown.status_code == 422 and "ministry NOPE does not exist" in unknown.json()["detail"]
    async with api.sessionmaker() as s:
        assert await s.get(User, "liaison.jcg") is None
    assert await audited(api, "create_user") == []


async def test_the_list_is_paged_and_searched_in_sql(api: InProcessApi) -> None:
    everyone = (await api.call("GET", "/users?limit=200", "admin")).json()
    total = everyone["total"]
    assert total == len(everyone["items"]) >= 13 and everyone["next"] is None
    first = (await api.call("GET", "/users?limit=5", "admin")).json()
    second = (await api.call("GET", "/users", "admin", params={"limit": 5, "cursor": first["next"]})).json()
    assert first["total"] == total
    names = [u["username"] for u in first["items"] + second["items"]]
    assert names == sorted(names) and len(set(names)) == 10
    found = (await api.call("GET", "/users?q=kato", "admin")).json()
    assert [u["username"] for u in found["items"]] == ["rev.kato"]
    assert (await api.call("GET", "/users?q=100%25", "admin")).json()["total"] == 0  # % is a character
    _, statements = await api.counted("GET", "/users", "admin", params={"limit": 5, "cursor": first["next"]})
    assert statements <= 4  # the user, a COUNT and one page: not a row per user


async def test_deactivating_ends_every_session_and_token_and_sign_in(api: InProcessApi) -> None:
    old = bearer(await token(api, "rev.kato", DEMO_PASSWORD))
    assert (await api.http.get("/me", headers=old)).status_code == 200
    answer = await api.call("POST", "/users/rev.kato/deactivate", "admin")
    assert answer.status_code == 200 and answer.json()["active"] is False
    assert (await api.http.get("/me", headers=old)).status_code == 401
    assert (await token(api, "rev.kato", DEMO_PASSWORD)).status_code == 401
    again = await api.call("POST", "/users/rev.kato/deactivate", "admin")  # idempotent, audited once
    assert again.status_code == 200
    assert [e.target for e in await audited(api, "deactivate_user")] == ["user:rev.kato"]
    back = await api.call("POST", "/users/rev.kato/reactivate", "admin")
    assert back.status_code == 200 and back.json()["active"] is True
    assert (await api.http.get("/me", headers=old)).status_code == 401  # the old token stays dead
    assert (await token(api, "rev.kato", DEMO_PASSWORD)).status_code == 200
    assert [e.target for e in await audited(api, "reactivate_user")] == ["user:rev.kato"]


async def test_an_administrator_cannot_lock_the_programme_out(api: InProcessApi) -> None:
    myself = await api.call("POST", "/users/admin/deactivate", "admin")
    assert myself.status_code == 422 and "yourself" in myself.json()["detail"]
    demote = await api.call("PATCH", "/users/admin", "admin", json={"roles": ["pm"]})
    assert demote.status_code == 422
    second = await api.call("POST", "/users", "admin", json={**NEW, "username": "admin.two", "roles": ["admin"]})
    assert second.status_code == 201
    # admin.two may now demote the first administrator, but not the last one left.
    two = bearer(await token(api, "admin.two", second.json()["generated_password"]))
    assert (await api.http.patch("/users/admin", headers=two, json={"roles": ["pm"]})).status_code == 200
    last = await api.http.patch("/users/admin.two", headers=two, json={"roles": ["pm"]})
    assert last.status_code == 422
    assert (await api.http.get("/me", headers=two)).json()["roles"] == ["admin"]


async def test_a_reset_password_replaces_the_old_one_and_ends_sessions(api: InProcessApi) -> None:
    old = bearer(await token(api, "perf.aoki", DEMO_PASSWORD))
    short = await api.call("POST", "/users/perf.aoki/password", "admin", json={"password": "too-short"})
    assert short.status_code == 422
    assert (await api.http.get("/me", headers=old)).status_code == 200  # nothing changed
    typed = await api.call("POST", "/users/perf.aoki/password", "admin", json={"password": "a-new-long-passphrase"})
    assert typed.status_code == 200 and typed.json()["generated_password"] is None
    assert (await api.http.get("/me", headers=old)).status_code == 401
    assert (await token(api, "perf.aoki", DEMO_PASSWORD)).status_code == 401
    assert (await token(api, "perf.aoki", "a-new-long-passphrase")).status_code == 200
    generated = await api.call("POST", "/users/perf.aoki/password", "admin", json={})
    password = generated.json()["generated_password"]
    assert (await token(api, "perf.aoki", password)).status_code == 200
    entries = await audited(api, "reset_password")
    assert [e.detail["password"] for e in entries] == ["set", "generated"]
    assert all("passphrase" not in str(e.detail) and password not in str(e.detail) for e in entries)
    missing = await api.call("POST", "/users/nobody/password", "admin", json={})
    assert missing.status_code == 404


async def test_an_edit_changes_only_what_it_names_and_audits_before_and_after(api: InProcessApi) -> None:
    edited = await api.call(
        "PATCH", "/users/rev.mori", "admin", json={"clearance_level": "SECRET", "compartments": ["QS", "QS", "AB"]}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json() | {"full_name": ""} == {
        "username": "rev.mori",
        "full_name": "",
        "roles": ["reviewer"],
        "ministry": None,
        "active": True,
        "clearance_level": "SECRET",
        "compartments": ["AB", "QS"],
        "email": "rev.mori@example.test",  # unchanged: the edit did not name it
    }
    [entry] = await audited(api, "edit_user")
    assert entry.detail["changed"] == {
        "clearance_level": {"before": "CONFIDENTIAL", "after": "SECRET"},
        "compartments": {"before": [], "after": ["AB", "QS"]},
    }
    liaison = await api.call("PATCH", "/users/rev.mori", "admin", json={"roles": ["ministry"]})
    assert liaison.status_code == 422 and "needs a ministry" in liaison.json()["detail"]
    ok = await api.call("PATCH", "/users/rev.mori", "admin", json={"roles": ["ministry"], "ministry": "MOD"})
    assert ok.status_code == 200 and ok.json()["ministry"] == "MOD"
    registry = (await api.call("GET", "/ministries", "pm.sato")).json()
    assert "rev.mori" in next(m for m in registry if m["code"] == "MOD")["liaisons"]
    assert (await api.call("PATCH", "/users/nobody", "admin", json={"roles": ["pm"]})).status_code == 404
    # The clearance endpoint is the same rule, audited as before.
    put = await api.call("PUT", "/users/rev.mori/clearance", "admin", json={"level": "TOP_SECRET", "compartments": []})
    assert put.status_code == 200 and put.json()["level"] == "TOP_SECRET"
    assert len(await audited(api, "set_clearance")) == 1


async def test_ministries_are_added_and_renamed_but_never_recoded(api: InProcessApi) -> None:
    added = await api.call("POST", "/ministries", "admin", json={"code": "NRA", "name": "Nuclear Regulation Authority"})
    assert added.status_code == 201 and added.json() == {
        "code": "NRA",
        "name": "Nuclear Regulation Authority",
        "liaisons": [],
        "inactive_liaisons": [],
    }
    again = await api.call("POST", "/ministries", "admin", json={"code": "NRA", "name": "Again"})
    assert again.status_code == 409
    for bad in ({"code": "nra", "name": "lower"}, {"code": "N", "name": "short"}, {"code": "ABC", "name": ""}):
        assert (await api.call("POST", "/ministries", "admin", json=bad)).status_code == 422, bad
    renamed = await api.call("PATCH", "/ministries/MOD", "admin", json={"name": "防衛省"})
    assert renamed.status_code == 200 and renamed.json()["liaisons"] == ["liaison.mod"]
    assert (await api.call("PATCH", "/ministries/XYZ", "admin", json={"name": "Nobody"})).status_code == 404
    assert [e.target for e in await audited(api, "create_ministry")] == ["ministry:NRA"]
    [edit] = await audited(api, "edit_ministry")
    assert edit.detail == {"before": "Ministry of Defense", "after": "防衛省"}


async def test_text_the_database_cannot_hold_is_refused_before_any_query(api: InProcessApi) -> None:
    # PostgreSQL refuses a NUL in text outright: a 422 here, never a 500 from the driver.
    assert (await api.call("GET", "/users?q=a%00b", "admin")).status_code == 422
    assert (await api.call("GET", "/users/a%00b", "admin")).status_code == 422
    assert (await api.call("POST", "/users/a%00b/deactivate", "admin")).status_code == 422
    assert (await api.call("PATCH", "/ministries/a%00b", "admin", json={"name": "x" * 5})).status_code == 422
    assert (await api.call("GET", "/audit?actor=a%00b", "admin")).status_code == 422


async def test_the_audit_log_api_filters_withholds_closed_work_and_reports_the_chain(api: InProcessApi) -> None:
    await closed_project(api.sessionmaker)  # two entries written without the audit key ...
    bearer(await token(api, "admin", DEMO_PASSWORD))  # ... vouched for by the first anchored one
    assert (await api.call("GET", "/audit", "ops.hayashi")).status_code == 403
    for bad in ("0", "20261201", "2026-1-1"):  # a day is YYYY-MM-DD, not a Unix time or another spelling
        assert (await api.call("GET", f"/audit?until={bad}", "admin")).status_code == 422, bad
    log = await api.call("GET", "/audit?limit=500", "admin")
    assert log.status_code == 200, log.text
    body = log.json()
    assert body["chain"]["broken_at"] is None and body["chain"]["verified_to"] >= body["total"] > 0
    assert body["chain"]["anchors_checked"] is True
    assert CLOSED not in log.text and any(e["target"].startswith("handoff:closed-") for e in body["items"])
    assert [e["id"] for e in body["items"]] == sorted((e["id"] for e in body["items"]), reverse=True)
    started = await api.call("GET", "/audit?action=start_project", "admin")
    assert started.json()["total"] == 0  # about a closed project the administrator may not read
    assert (await api.call("GET", f"/audit?project={CLOSED}", "admin")).json()["total"] == 0
    assert (await api.call("GET", "/audit?since=2026-02-01&until=2026-01-01", "admin")).status_code == 422
    assert (await api.call("GET", "/audit?since=yesterday", "admin")).status_code == 422
    granted = await api.call(
        "POST", f"/projects/{CLOSED}/grants", "admin", json={"username": "admin", "reason": "officer"}
    )
    assert granted.status_code == 201, granted.text
    mine = (await api.call("GET", f"/audit?project={CLOSED}", "admin")).json()
    assert [e["action"] for e in mine["items"]] == ["grant_need_to_know", "handoff_accept", "start_project"]
    assert CLOSED_TITLE in mine["items"][-1]["detail"]


async def test_an_administrator_sets_and_clears_a_users_e_mail_address(api: InProcessApi) -> None:
    created = await api.call("POST", "/users", "admin", json={**NEW, "email": "jcg@example.org"})
    assert created.status_code == 201, created.text
    assert created.json()["user"]["email"] == "jcg@example.org"
    moved = await api.call("PATCH", "/users/liaison.jcg", "admin", json={"email": "desk@example.org"})
    assert moved.status_code == 200 and moved.json()["email"] == "desk@example.org"
    [entry] = await audited(api, "edit_user")
    assert entry.detail["changed"] == {"email": {"before": "jcg@example.org", "after": "desk@example.org"}}
    not_a_boolean = await api.call("PATCH", "/users/liaison.jcg", "admin", json={"clear_email": 0})
    assert not_a_boolean.status_code == 422 and "clear_email" in not_a_boolean.text  # 0 is no boolean
    cleared = await api.call("PATCH", "/users/liaison.jcg", "admin", json={"clear_email": True})
    assert cleared.status_code == 200 and cleared.json()["email"] is None
    async with api.sessionmaker() as s:
        user = await s.get(User, "liaison.jcg")
        assert user is not None and user.email is None
