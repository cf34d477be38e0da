"""Finance's four-eyes pages over HTTP in this process (no Temporal: a stand-in client answers the
signatures): who may see them, what waits (from the database's approval rows and the workflow's
notices to the finance group), paging, closed work, the signatures' refusals shown on the page,
the notice's link and the header's link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.notices import store_notice
from domain.programme import PROGRAMME_CODE
from domain.roles import Role, group
from domain.security import Level
from storage.models import AuditEntry, NeedToKnowGrant, Notification, Reservation, Tranche, TrancheApproval
from telemetry.gauges import Waiting, read_snapshot
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import ledger_project
from tests.test_web_pages import EN, JA, sign_in, token_of

B = 1_000_000_000
LIST = "/app/finance/approvals"


class FakeTemporal:
    """Answers each signature with `answer` (an exception is raised); the live view is not there."""

    def __init__(self) -> None:
        self.answer: Exception | None = None
        self.sent: list[Any] = []

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeTemporal:
        return self

    async def query(self, *_: Any, **__: Any) -> Any:
        raise RPCError("not here", RPCStatusCode.NOT_FOUND, b"")

    async def execute_update(self, update: Any, arg: Any) -> Any:
        self.sent.append(arg)
        if self.answer is not None:
            raise self.answer
        return None  # the page shows the tranche from the database, not the update's answer


@pytest.fixture
async def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
async def api(sqlite_url: str, temporal: FakeTemporal) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=temporal) as api:
        yield api


@pytest.fixture
async def api_both(db_url: str, temporal: FakeTemporal) -> AsyncIterator[InProcessApi]:
    """On SQLite and on PostgreSQL: the list's SQL takes the notice's key apart in the database."""
    async with inprocess_api(db_url, temporal=temporal) as api:
        yield api


async def _project(
    api: InProcessApi, pid: str, *, stage_no: int = 1, status: str = "active", closed: bool = False
) -> None:
    """A project in `stage_no` whose reservation plans three tranches of 1, 2 and 3 億円."""
    async with api.sessionmaker.begin() as s:
        project = ledger_project(pid, PROGRAMME_CODE, "MEXT", 6 * B)
        project.title = f"Title of {pid}"
        project.stage_no = stage_no
        project.status = status  # type: ignore[assignment]
        if closed:
            project.classification = "closed"
            project.label_level = int(Level.SECRET)
            project.label_compartments = ["QS"]
        s.add(project)
        await s.flush()
        s.add(
            Reservation(
                project_id=pid,
                stage_no=stage_no,
                part=0,
                ministry="MEXT",
                amount=6 * B,
                status="open",
                schedule=[{"tranche_no": n, "fiscal_year": 2026, "amount": n * B} for n in (1, 2, 3)],
            )
        )


async def _due(api: InProcessApi, pid: str, stage_no: int, tranche_no: int, at: datetime) -> None:
    """The workflow's notice that the tranche is due, stored for each finance user as it fans out."""
    key = f"project-{pid}-approval-s{stage_no}-t{tranche_no}"
    async with api.sessionmaker.begin() as s:
        await store_notice(s, key, pid, group(Role.FINANCE), "tranche_approval", f"Tranche {tranche_no} is due", at)


async def _requested(
    api: InProcessApi, pid: str, stage_no: int, tranche_no: int, by: str, approved_by: str = ""
) -> None:
    async with api.sessionmaker.begin() as s:
        s.add(
            TrancheApproval(
                project_id=pid,
                stage_no=stage_no,
                tranche_no=tranche_no,
                amount=tranche_no * B,
                requested_by=by,
                requested_at=datetime.now(UTC),
                approved_by=approved_by or None,
                approved_at=datetime.now(UTC) if approved_by else None,
            )
        )


@asynccontextmanager
async def _client(api: InProcessApi, user: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own, signed in as `user`."""
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, user, DEMO_PASSWORD)).status_code == 303
        yield http


async def test_only_finance_and_admin_open_the_approvals(api: InProcessApi) -> None:
    await _project(api, "KP-F1")
    await _due(api, "KP-F1", 1, 1, datetime.now(UTC))
    for user in ("pm.sato", "rev.ito", "ops.kimura", "perf.aoki"):
        async with _client(api, user) as http:
            listing = await http.get(LIST, headers=EN)
            assert listing.status_code == 403 and "KP-F1" not in listing.text, user
            assert (await http.get(f"{LIST}/KP-F1/1/1", headers=EN)).status_code == 403, user
            assert ">Finance<" not in listing.text, user  # no header link either
    for user in ("fin.suzuki", "admin"):
        async with _client(api, user) as http:
            listing = await http.get(LIST, headers=EN)
            assert listing.status_code == 200 and "KP-F1" in listing.text, user
            assert f'href="{LIST}">Finance</a>' in listing.text, user


async def test_the_list_holds_what_waits_for_a_request_or_a_second_approval(api_both: InProcessApi) -> None:
    api = api_both
    now = datetime.now(UTC)
    await _project(api, "KP-DUE")
    await _due(api, "KP-DUE", 1, 1, now - timedelta(days=30))  # due a month ago: overdue
    await _project(api, "KP-REQ")
    await _due(api, "KP-REQ", 1, 2, now - timedelta(days=1))
    await _requested(api, "KP-REQ", 1, 2, "fin.suzuki")
    await _requested(api, "KP-REQ", 1, 3, "pm.sato")  # requested ahead of its due date
    # Gone: approved; paid; an earlier stage's notice; a finished project.
    await _project(api, "KP-DONE")
    await _due(api, "KP-DONE", 1, 1, now)
    await _requested(api, "KP-DONE", 1, 1, "fin.suzuki", approved_by="fin.yamada")
    await _project(api, "KP-PAID", stage_no=2)
    await _due(api, "KP-PAID", 1, 3, now)  # stage 1's, the project is in stage 2 now
    await _requested(api, "KP-PAID", 1, 2, "fin.suzuki")
    await _due(api, "KP-PAID", 2, 1, now)
    async with api.sessionmaker.begin() as s:
        s.add(Tranche(project_id="KP-PAID", stage_no=2, tranche_no=1, amount=B, transaction_id=1, due_at=now))
    await _project(api, "KP-STOP", status="terminated")
    await _due(api, "KP-STOP", 1, 1, now)

    async with _client(api, "fin.yamada") as http:
        en = await http.get(LIST, headers=EN)
        ja = await http.get(LIST, headers=JA)
    assert en.status_code == 200
    assert "3 tranches wait for four-eyes approval." in en.text
    # Ops' gauges count the same tranches by the same rule: one to request, two to approve.
    async with api.sessionmaker() as s:
        waiting = (await read_snapshot(s)).tranches_waiting
    assert (waiting[Waiting.FOUR_EYES_REQUEST], waiting[Waiting.FOUR_EYES_APPROVAL]) == (1, 2)
    rows = en.text.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert [r.split('<span class="muted">')[1].split("<")[0] for r in rows] == ["KP-DUE", "KP-REQ", "KP-REQ"]
    due, requested, ahead = rows
    # Longest due first; one row for a notice however many finance users it reached.
    assert "Stage 1, tranche 1" in due and "¥1,000,000,000" in due and "10 × 100M JPY" in due
    assert "Overdue" in due and "A request" in due
    assert "fin.suzuki" in requested and "A second approver" in requested and "Overdue" not in requested
    assert "Stage 1, tranche 3" in ahead and "Not yet due" in ahead and "pm.sato" in ahead
    assert "¥3,000,000,000" in ahead
    assert f'href="{LIST}/KP-DUE/1/1"' in due
    waiting = en.text.split('<table id="approvals">')[1].split("</table>")[0]
    for gone in ("KP-DONE", "KP-PAID", "KP-STOP"):
        assert gone not in waiting
    # The approved one is listed apart, naming both people.
    approved = en.text.split('<table id="approved"')[1].split("</table>")[0]
    assert "KP-DONE" in approved and "fin.suzuki" in approved and "fin.yamada" in approved
    assert (
        ja.status_code == 200
        and "10億円" in ja.text
        and "ダブルチェックの承認を待つ分割支払いが 3 件あります。" in ja.text
    )

    async with _client(api, "fin.yamada") as http:
        by_project = await http.get(f"{LIST}?sort=project", headers=EN)
        assert by_project.status_code == 200 and 'value="project" selected' in by_project.text
        nonsense = await http.get(f"{LIST}?sort=nonsense", headers=EN)
        # A page's bad address: an HTML page with the reason, not the API's JSON.
        assert nonsense.status_code == 422 and nonsense.headers["content-type"].startswith("text/html")
        assert "sort: Input should be" in nonsense.text and "Not available" in nonsense.text


async def test_the_list_is_paged_and_counted_in_sql(api: InProcessApi) -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    for n in range(27):
        pid = f"KP-P{n:02d}"
        await _project(api, pid)
        await _due(api, pid, 1, 1, start + timedelta(minutes=n))
    async with _client(api, "fin.suzuki") as http:
        first = await http.get(LIST, headers=EN)
        second = await http.get(f"{LIST}?page=2", headers=EN)
        beyond = await http.get(f"{LIST}?page=9", headers=EN)
    assert "27 tranches wait" in first.text and first.text.count(f'href="{LIST}/KP-P') == 25
    assert "KP-P00" in first.text and "KP-P25" not in first.text
    assert "Page 1 of 2" in first.text and f'href="{LIST}?sort=due&amp;page=2"' in first.text
    assert second.text.count(f'href="{LIST}/KP-P') == 2 and "KP-P25" in second.text and "KP-P26" in second.text
    assert beyond.status_code == 200 and "Page 2 of 2" in beyond.text  # past the end: the last page


async def test_closed_work_is_listed_only_for_cleared_and_granted_users(api_both: InProcessApi) -> None:
    api = api_both
    await _project(api, "KP-SECRET", closed=True)
    await _due(api, "KP-SECRET", 1, 1, datetime.now(UTC))
    async with api.sessionmaker() as s:
        reached = {n.recipient for n in (await s.scalars(Notification.__table__.select())).all()}
    assert reached == set()  # the uncleared finance users are not even told (activities/notices.py)
    # A request made before the clearance went (rows only): still not listed for them.
    await _requested(api, "KP-SECRET", 1, 2, "pm.sato")
    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id="KP-SECRET", username="fin.suzuki", granted_by="admin"))
    async with _client(api, "fin.suzuki") as http:
        page = await http.get(LIST, headers=EN)
        assert page.status_code == 200 and "KP-SECRET" not in page.text and "Nothing here." in page.text
        assert (await http.get(f"{LIST}/KP-SECRET/1/2", headers=EN)).status_code == 403
    async with _client(api, "admin") as http:
        assert "KP-SECRET" not in (await http.get(LIST, headers=EN)).text  # cleared, but no grant yet
        async with api.sessionmaker.begin() as s:
            s.add(NeedToKnowGrant(project_id="KP-SECRET", username="admin", granted_by="admin"))
        assert "KP-SECRET" in (await http.get(LIST, headers=EN)).text
    async with api.sessionmaker() as s:
        audited = (await s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("list_closed:%")))).all()
    assert "list_closed:approvals" in audited  # what closed work the list showed is audited


async def test_signatures_go_through_the_api_and_its_refusals_show_on_the_page(
    api: InProcessApi, temporal: FakeTemporal
) -> None:
    await _project(api, "KP-SIGN")
    await _due(api, "KP-SIGN", 1, 1, datetime.now(UTC))
    page_url = f"{LIST}/KP-SIGN/1/1"
    async with _client(api, "fin.suzuki") as http:
        page = await http.get(page_url, headers=EN)
        assert page.status_code == 200 and "Request payment" in page.text and "¥1,000,000,000" in page.text
        assert "Not paid yet" in page.text
        done = await http.post(f"{page_url}/request", data={"csrftoken": token_of(page)}, headers=EN)
        assert done.status_code == 303 and done.headers["location"] == f"{page_url}?done=request"
        assert [(a.action, a.signer, a.stage_no, a.tranche_no) for a in temporal.sent] == [
            ("request", "fin.suzuki", 1, 1)
        ]
        # The workflow's refusal (here: the four-eyes rule) is the page's, with its status.
        temporal.answer = WorkflowUpdateFailedError(
            ApplicationError("four eyes: the approver must be someone other than the requester (fin.suzuki)")
        )
        await _requested(api, "KP-SIGN", 1, 1, "fin.suzuki")
        page = await http.get(page_url, headers=EN)
        assert "Approve payment" in page.text and "Request payment" not in page.text
        refused = await http.post(f"{page_url}/approve", data={"csrftoken": token_of(page)}, headers=EN)
        assert refused.status_code == 409 and "four eyes: the approver must be someone other" in refused.text
        assert 'role="alert"' in refused.text and "Approve payment" in refused.text
        # Without the CSRF token nothing is sent.
        sent = len(temporal.sent)
        assert (await http.post(f"{page_url}/approve", data={}, headers=EN)).status_code == 403
        assert len(temporal.sent) == sent
        missing = await http.post(f"{page_url}/pay-twice", data={"csrftoken": token_of(page)}, headers=EN)
        assert missing.status_code == 404
    # The admin sees the page; the API lets only finance approve, and says so.
    async with _client(api, "admin") as http:
        page = await http.get(page_url, headers=EN)
        refused = await http.post(f"{page_url}/approve", data={"csrftoken": token_of(page)}, headers=EN)
        assert refused.status_code == 403 and "the second approver must be from finance" in refused.text
    # A PM may request through the API, but the finance pages are not theirs.
    async with _client(api, "pm.sato") as http:
        inbox = await http.get("/app/inbox", headers=EN)
        refused = await http.post(f"{page_url}/approve", data={"csrftoken": token_of(inbox)}, headers=EN)
        assert refused.status_code == 403 and "this needs one of the roles: finance, admin" in refused.text
    assert len(temporal.sent) == sent


async def test_a_paid_tranche_shows_paid_and_no_buttons(api: InProcessApi) -> None:
    await _project(api, "KP-PAY")
    now = datetime.now(UTC)
    await _requested(api, "KP-PAY", 1, 1, "fin.suzuki", approved_by="fin.yamada")
    async with _client(api, "fin.yamada") as http:
        approved = await http.get(f"{LIST}/KP-PAY/1/1", headers=EN)
        assert "Not paid yet" in approved.text and "fin.yamada on" in approved.text
        assert "Approve payment" not in approved.text
        async with api.sessionmaker.begin() as s:
            s.add(Tranche(project_id="KP-PAY", stage_no=1, tranche_no=1, amount=B, transaction_id=1, due_at=now))
        paid = await http.get(f"{LIST}/KP-PAY/1/1", headers=EN)
        assert paid.status_code == 200 and "<strong>Paid</strong>" in paid.text
        assert "Request payment" not in paid.text and "Approve payment" not in paid.text
        assert (await http.get(f"{LIST}/KP-NONE/1/1", headers=EN)).status_code == 404


async def test_every_finance_user_gets_the_notice_with_a_link_to_the_approvals(api: InProcessApi) -> None:
    await _project(api, "KP-NOTE")
    await _due(api, "KP-NOTE", 1, 1, datetime.now(UTC))
    async with api.sessionmaker() as s:
        rows = (await s.scalars(Notification.__table__.select().with_only_columns(Notification.recipient))).all()
    assert sorted(rows) == ["fin.suzuki", "fin.yamada"]
    for user in ("fin.suzuki", "fin.yamada"):
        async with _client(api, user) as http:
            centre = await http.get("/app/notifications", headers=EN)
            assert "Tranche 1 is due" in centre.text and f'href="{LIST}"' in centre.text, user
