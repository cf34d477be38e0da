"""Every API list pages by keyset with its total, on both databases: paging in small pages yields
each row once, in order, while rows are added between the fetches (those added before the
cursor stay out, those after it come), filters combine with paging, the total is the filtered
count, a reader without access sees neither the rows nor their count, and a bad cursor is a 422."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from domain.programme import PROGRAMME_CODE
from domain.security import Level
from services.list_sql import LISTS, list_sql
from services.portfolio import Filters, Sort
from storage.audit import audit
from storage.models import (
    AuditEntry,
    Document,
    Handoff,
    LedgerEntry,
    LedgerTransaction,
    NeedToKnowGrant,
    Notification,
    Project,
    ReviewTask,
    User,
)
from tests.api_inprocess import InProcessApi, inprocess_api

T0 = datetime(2026, 6, 1, tzinfo=UTC)
PM = "pm.sato"


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(db_url, temporal=object()) as a:
        yield a


def project_row(n: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"KP-L{n:04d}",
        "programme_code": PROGRAMME_CODE,
        "workflow_id": f"project-KP-L{n:04d}",
        "title": f"List test {n:04d}",
        "organisation": "Test",
        "programme_manager": PM,
        "funding_ministry": "MEXT" if n % 3 else "METI",
        "research_vision": "test",
        "classification": "open",
        "start_trl": 1,
        "target_trl": 9,
        "current_trl": 1 + n % 3,
        "stage_no": 1,
        "status": "active",
        "total_budget": 1_000_000 * (1 + n % 4),
        "reviewers": ["rev.ito"],
        "public_use_ministries": ["MOD"],
        "created_at": T0 + timedelta(minutes=n),
    }
    return row | overrides


async def add_projects(api: InProcessApi, numbers: range, **overrides: Any) -> None:
    async with api.sessionmaker.begin() as s:
        await s.execute(insert(Project), [project_row(n, **overrides) for n in numbers])


async def page_through(
    api: InProcessApi,
    path: str,
    user: str,
    limit: int,
    between: Callable[[int], Awaitable[None]] | None = None,
    key: str = "id",
    **params: Any,
) -> tuple[list[Any], list[int]]:
    """Every page of the list (calling `between(n)` after page n); the rows' `key`s and each
    page's total."""
    found: list[Any] = []
    totals: list[int] = []
    cursor: str | None = None
    for n in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await api.call("GET", path, user, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) >= {"items", "total", "next"}
        assert len(body["items"]) <= limit
        found += [item[key] for item in body["items"]]
        totals.append(body["total"])
        cursor = body["next"]
        if cursor is None:
            return found, totals
        if between is not None:
            await between(n)
    raise AssertionError("the list never ended")


@dataclass(frozen=True)
class Growing:
    """A list and how to add rows to it that sort before the first page's rows and after them."""

    path: str
    user: str
    key: str
    add: Callable[[InProcessApi, range, datetime], Awaitable[None]]
    newest_first: bool = True


async def _projects(api: InProcessApi, numbers: range, at: datetime) -> None:
    async with api.sessionmaker.begin() as s:
        await s.execute(
            insert(Project), [project_row(n, created_at=at + timedelta(seconds=i)) for i, n in enumerate(numbers)]
        )


async def _closed_out(api: InProcessApi, numbers: range, at: datetime) -> None:
    async with api.sessionmaker.begin() as s:
        await s.execute(
            insert(Project),
            [
                project_row(n, status="terminated", stop_reason="killed", closed_at=at + timedelta(seconds=i))
                for i, n in enumerate(numbers)
            ],
        )


async def _insert_for_projects(
    api: InProcessApi, model: Any, numbers: range, row: Callable[[int, int], dict[str, Any]]
) -> None:
    """A project each, and a row of `model` (`row(n, i)`) on it."""
    await add_projects(api, numbers)
    async with api.sessionmaker.begin() as s:
        await s.execute(insert(model), [row(n, i) for i, n in enumerate(numbers)])


async def _tasks(api: InProcessApi, numbers: range, at: datetime) -> None:
    def task(n: int, i: int) -> dict[str, Any]:
        pid = f"KP-L{n:04d}"
        return {"id": f"{pid}-g1-rev.ito", "project_id": pid, "gate_no": 1, "reviewer": "rev.ito"} | {
            "status": "invited",
            "created_at": at + timedelta(seconds=i),
        }

    await _insert_for_projects(api, ReviewTask, numbers, task)


async def _handoffs(api: InProcessApi, numbers: range, at: datetime) -> None:
    await add_projects(api, numbers)
    async with api.sessionmaker.begin() as s:
        await s.execute(
            insert(Document),
            [
                {"id": f"KP-L{n:04d}-pkg", "project_id": f"KP-L{n:04d}", "kind": "handoff_package"}
                | {"template": "t", "content": "<p/>", "sha256": "0" * 64}
                for n in numbers
            ],
        )
        await s.execute(
            insert(Handoff),
            [
                {
                    "id": f"KP-L{n:04d}-h-MOD",
                    "project_id": f"KP-L{n:04d}",
                    "ministry": "MOD",
                    "status": "pending" if n % 2 else "accepted",
                    "document_id": f"KP-L{n:04d}-pkg",
                    "created_at": at + timedelta(seconds=i),
                }
                for i, n in enumerate(numbers)
            ],
        )


async def _notifications(api: InProcessApi, numbers: range, at: datetime) -> None:
    def note(n: int, i: int) -> dict[str, Any]:
        kind = "reminder" if n % 2 else "escalation"
        # Pairs at the same time, stored at once: the key breaks the tie.
        when = {"at": at + timedelta(seconds=i // 2), "created_at": T0}
        return {"key": f"note-{n}", "project_id": f"KP-L{n:04d}", "recipient": PM, "kind": kind, "message": "m"} | when

    await _insert_for_projects(api, Notification, numbers, note)


GROWING = {
    "projects": Growing("/projects", PM, "id", _projects),
    "closed-out": Growing("/closed-out", PM, "project_id", _closed_out),
    "tasks (reviewer)": Growing("/tasks", "rev.ito", "project_id", _tasks),
    "tasks (PM)": Growing("/tasks", PM, "project_id", _tasks),
    "handoffs (liaison)": Growing("/handoffs", "liaison.mod", "project_id", _handoffs),
    "handoffs (PM)": Growing("/handoffs", PM, "project_id", _handoffs),
    "notifications": Growing("/notifications", PM, "project_id", _notifications),
}


@pytest.mark.parametrize("name", sorted(GROWING))
async def test_paging_while_rows_are_added_yields_each_row_once_in_order(api: InProcessApi, name: str) -> None:
    lst = GROWING[name]
    await lst.add(api, range(0, 9), T0)
    # Rows sorting before every row listed (newer, when newest first) and after all of them
    # (older, each pair older than the last).
    sign = 1 if lst.newest_first else -1

    async def between(n: int) -> None:
        await lst.add(api, range(100 + 2 * n, 102 + 2 * n), T0 + sign * timedelta(days=1 + n))  # never listed
        await lst.add(api, range(200 + 2 * n, 202 + 2 * n), T0 - sign * timedelta(days=1 + n))  # listed, once

    listed, totals = await page_through(api, lst.path, lst.user, 4, between, key=lst.key)
    assert len(listed) == len(set(listed)), listed  # no duplicates
    before = {f"KP-L{n:04d}" for n in range(100, 120)}
    assert not before & set(listed)
    everything, _ = await page_through(api, lst.path, lst.user, 500, key=lst.key)
    # No gaps: what was listed is the whole list now but for the rows added before the cursor.
    assert listed == [row for row in everything if row not in before]
    assert totals[-1] == len(everything)
    assert any(f"KP-L{n:04d}" in listed for n in range(200, 220))


async def test_projects_filters_and_sorts_combine_with_paging_and_the_total(api: InProcessApi) -> None:
    await add_projects(api, range(20))
    meti = [f"KP-L{n:04d}" for n in range(20) if n % 3 == 0]
    listed, totals = await page_through(api, "/projects", "admin", 2, ministry="METI", sort="title")
    assert listed == sorted(meti) and set(totals) == {len(meti)}
    by_budget, _ = await page_through(api, "/projects", "admin", 3, key="total_budget", sort="budget", trl=2)
    assert by_budget == sorted(by_budget, reverse=True)
    assert len(by_budget) == len([n for n in range(20) if n % 3 == 1])
    r = await api.call("GET", "/projects", "admin", params={"status": "no-such-status"})
    assert r.status_code == 422


async def test_tasks_and_handoffs_filter_by_status_with_paging(api: InProcessApi) -> None:
    await _tasks(api, range(0, 3), T0)
    await _handoffs(api, range(3, 10), T0)
    async with api.sessionmaker.begin() as s:
        (await s.get(ReviewTask, "KP-L0001-g1-rev.ito")).status = "submitted"  # type: ignore[union-attr]
    invited, totals = await page_through(api, "/tasks", "rev.ito", 1, key="project_id", status="invited")
    assert invited == ["KP-L0002", "KP-L0000"] and set(totals) == {2}
    pending, totals = await page_through(api, "/handoffs", "liaison.mod", 2, key="project_id", status="pending")
    assert pending == ["KP-L0009", "KP-L0007", "KP-L0005", "KP-L0003"] and set(totals) == {4}
    assert (await api.call("GET", "/handoffs", "liaison.mlit")).json()["total"] == 0  # not their ministry
    assert (await api.call("GET", "/tasks", "rev.kato")).json()["total"] == 0  # not their tasks


async def test_notifications_filter_by_kind_and_unread_with_paging(api: InProcessApi) -> None:
    await _notifications(api, range(7), T0)
    reminders, totals = await page_through(api, "/notifications", PM, 2, key="project_id", kind="reminder")
    assert reminders == ["KP-L0005", "KP-L0003", "KP-L0001"] and set(totals) == {3}
    r = await api.call("POST", "/notifications/read", PM, json={"keys": ["note-5", "note-6"]})
    assert r.json()["marked"] == 2
    unread, totals = await page_through(api, "/notifications", PM, 2, key="key", unread_only="true")
    assert unread == ["note-4", "note-3", "note-2", "note-1", "note-0"] and set(totals) == {5}
    assert (await api.call("GET", "/notifications", "pm.tanaka")).json()["total"] == 0  # only one's own


async def test_a_reader_without_access_sees_neither_rows_nor_their_count(api: InProcessApi) -> None:
    await add_projects(api, range(6))
    await add_projects(
        api, range(6, 8), classification="closed", label_level=int(Level.SECRET), label_compartments=["QS"]
    )
    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id="KP-L0006", username=PM, granted_by="admin"))
    others = await api.call("GET", "/projects", "pm.tanaka")
    assert others.json() == {"items": [], "total": 0, "next": None}
    listed, totals = await page_through(api, "/projects", PM, 3)
    assert "KP-L0006" in listed and "KP-L0007" not in listed and set(totals) == {7}  # granted one only
    uncleared, totals = await page_through(api, "/projects", "ops.kimura", 3)
    assert not {"KP-L0006", "KP-L0007"} & set(uncleared) and set(totals) == {6}
    async with api.sessionmaker() as s:
        audited = select(AuditEntry).where(AuditEntry.action == "list_closed:projects")
        entries = (await s.scalars(audited)).all()
    shown = {pid for e in entries if e.actor == PM for pid in e.detail["shown"]}
    withheld = {pid for e in entries if e.actor == "ops.kimura" for pid in e.detail["withheld"]}
    assert shown == {"KP-L0006"} and withheld == {"KP-L0006", "KP-L0007"}  # what each list held back, audited


def _forged(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        "AAAA",
        _forged("projects.newest", "2026-01-01T00:00:00+00:00"),  # one key short
        _forged("projects.newest", 12, "KP-1"),  # a number where a time belongs
        _forged("projects.newest", "2026-01-01T00:00:00", "KP-1"),  # no offset
        _forged("closed-out", None, "KP-1"),  # another list's cursor
        _forged("projects.newest", "2026-01-01T00:00:00+00:00", ["KP-1"]),
    ],
)
async def test_a_malformed_or_tampered_cursor_is_a_422_with_the_reason(api: InProcessApi, cursor: str) -> None:
    r = await api.call("GET", "/projects", PM, params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert "cursor" in str(r.json()["detail"])


async def test_the_audit_log_pages_newest_first_and_new_entries_stay_out_of_a_paging_in_progress(
    api: InProcessApi,
) -> None:
    async def write(n: int, action: str = "list_test") -> None:
        async with api.sessionmaker.begin() as s:
            for i in range(n):
                audit(s, PM, action, f"test:{i}")

    await write(7)
    await write(2, "other_action")
    snapshot, _ = await page_through(api, "/audit", "admin", 500, action="list_test")
    listed, totals = await page_through(api, "/audit", "admin", 3, lambda n: write(2), action="list_test")
    assert listed == snapshot and len(snapshot) == 7 and listed == sorted(listed, reverse=True)
    assert totals[0] == 7 and totals[-1] == 7 + 2 * (len(totals) - 1)  # the total counts what is there now
    r = await api.call("GET", "/audit", "admin", params={"cursor": _forged("audit", "7")})
    assert r.status_code == 422 and "cursor" in r.json()["detail"]


async def _post(api: InProcessApi, n: int, project_id: str) -> None:
    """A balanced two-leg reservation of n yen."""
    async with api.sessionmaker.begin() as s:
        txn = LedgerTransaction(business_key=f"list-test:{n}", kind="reserve", project_id=project_id, legs=2)
        s.add(txn)
        await s.flush()
        legs = (("allocation:MEXT", -n), (f"reservation:{project_id}", n))
        s.add_all(
            LedgerEntry(transaction_id=txn.id, account=a, ministry="MEXT", amount=x, fiscal_year=2026) for a, x in legs
        )


async def test_the_ledger_pages_oldest_first_and_entries_posted_meanwhile_come_at_the_end(api: InProcessApi) -> None:
    await add_projects(api, range(2))
    for n in range(1, 5):
        await _post(api, n, f"KP-L{n % 2:04d}")
    before, _ = await page_through(api, "/fund/ledger", "fin.suzuki", 500, key="entry_id")
    posted = iter(range(10, 20))

    async def between(_: int) -> None:
        await _post(api, next(posted), "KP-L0001")

    listed, totals = await page_through(api, "/fund/ledger", "fin.suzuki", 3, between, key="entry_id")
    after, _ = await page_through(api, "/fund/ledger", "fin.suzuki", 500, key="entry_id")
    assert listed == after and listed[: len(before)] == before and listed == sorted(set(listed))
    assert totals[-1] == len(after) > len(before)
    csv_rows = (await api.call("GET", "/fund/ledger.csv", "fin.suzuki")).text.strip().splitlines()
    assert len(csv_rows) - 1 == len(after)  # the same entries as the CSV export
    one, totals = await page_through(api, "/fund/ledger", "fin.suzuki", 2, key="amount", project_id="KP-L0000")
    assert sorted(one) == [-4, -2, 2, 4] and set(totals) == {4}
    assert (await api.call("GET", "/fund/ledger", PM)).status_code == 403  # finance's


@pytest.mark.postgres
async def test_each_lists_compiled_sql_runs_under_explain_and_lists_what_the_api_lists(postgres_url: str) -> None:
    """services/list_sql gives the benchmark the SQL the lists run, with its values inlined."""
    async with inprocess_api(postgres_url, temporal=object()) as api:
        await add_projects(api, range(5))
        await _tasks(api, range(5, 7), T0)
        async with api.sessionmaker() as s:
            for username in ("admin", PM, "rev.ito", "liaison.mod", "fin.suzuki"):
                user = await s.get(User, username)
                assert user is not None
                for name in LISTS:
                    found = await list_sql(s, user, name, Filters(sort=Sort.TITLE, ministry="MEXT"))
                    for sql in (found.page, found.count):
                        plan = (await s.execute(text(f"EXPLAIN {sql}"))).scalars().all()
                        assert plan, (name, username)
            admin = await s.get(User, "admin")
            assert admin is not None
            first = await list_sql(s, admin, "projects", Filters(sort=Sort.TITLE), limit=3)
            ids = [row.id for row in (await s.execute(text(first.page))).all()]
        listed = (await api.call("GET", "/projects", "admin", params={"sort": "title", "limit": 4})).json()["items"]
        assert ids == [p["id"] for p in listed]  # limit 3 asks for 4 rows: one more, to know a next page exists


async def test_a_nullable_sort_key_pages_its_nulls_once_first_when_descending(api: InProcessApi) -> None:
    """Closed-out orders by closed_at, newest first: a stopped project without one (as a row of
    an older design could be) comes first, as PostgreSQL's index order has NULLs, on both databases."""
    await _closed_out(api, range(5), T0)
    async with api.sessionmaker.begin() as s:
        await s.execute(insert(Project), [project_row(n, status="terminated", closed_at=None) for n in range(5, 8)])
    listed, totals = await page_through(api, "/closed-out", PM, 2, key="project_id")
    assert listed == ["KP-L0007", "KP-L0006", "KP-L0005", "KP-L0004", "KP-L0003", "KP-L0002", "KP-L0001", "KP-L0000"]
    assert set(totals) == {8}


async def test_reviewers_and_liaisons_see_the_projects_whose_lists_name_them(api: InProcessApi) -> None:
    """Membership of a project's JSON lists, in SQL: JSONB containment on PostgreSQL, the quoted
    token in the text on SQLite; a name that is a prefix of another, or holds LIKE's wildcards,
    matches only itself."""
    await add_projects(api, range(4))
    await add_projects(api, range(4, 6), reviewers=["rev.itoh", "rev_ito"], public_use_ministries=["MODX"])
    for user, expected in (("rev.ito", 4), ("rev.mori", 0), ("liaison.mod", 4), ("liaison.mlit", 0)):
        listed, totals = await page_through(api, "/projects", user, 3)
        assert len(listed) == expected and set(totals) == {expected}, user
