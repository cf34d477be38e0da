"""The operations page over HTTP in this process (rows only, a stand-in Temporal client for the
reconciliation): each section lists its stuck work, most overdue first, paged; every row links
into the Temporal UI with the right visibility query; closed work is withheld from an uncleared
operator; other roles are refused."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode

from domain.programme import PROGRAMME_CODE
from domain.security import Level
from storage.models import (
    AuditEntry,
    Document,
    Gate,
    Handoff,
    LedgerEntry,
    LedgerTransaction,
    NeedToKnowGrant,
    PaymentInstruction,
    Project,
    Tranche,
    TrancheApproval,
)
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_web_pages import EN, JA, sign_in

UI = "http://temporal-ui.test:8233"
OPEN_ID = "KP-OPS-OPEN"
CLOSED_ID = "KP-OPS-CLOSED"
CLOSED_TITLE = "Secret sensing array"


class _NoWorkflows:
    """A Temporal client that knows no workflow: the reconciliation reports each project's drift."""

    async def list_workflows(self, query: str, **_: Any) -> AsyncIterator[Any]:
        return
        yield  # visibility knows none of them: each project is then described

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> Any:
        class Handle:
            async def describe(self) -> None:
                raise RPCError(f"workflow {workflow_id} not found", RPCStatusCode.NOT_FOUND, b"")

        return Handle()


@pytest.fixture
async def api_any_db(db_url: str) -> AsyncIterator[InProcessApi]:
    # Both backends for the tests of the sections' SQL (a UNION, a correlated audit lookup, paging).
    async with inprocess_api(db_url, temporal=_NoWorkflows(), temporal_ui_url=UI) as api:
        await seed(api.sessionmaker)
        yield api


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=_NoWorkflows(), temporal_ui_url=UI) as api:
        await seed(api.sessionmaker)
        yield api


def _project(pid: str, title: str, closed: bool = False, status: str = "active") -> Project:
    return Project(
        id=pid,
        programme_code=PROGRAMME_CODE,
        workflow_id=f"project-{pid}",
        title=title,
        organisation="Lab",
        programme_manager="pm.sato",
        funding_ministry="METI",
        research_vision="v",
        classification="closed" if closed else "open",
        label_level=int(Level.SECRET) if closed else 0,
        label_compartments=["QS"] if closed else [],
        start_trl=1,
        target_trl=9,
        current_trl=1,
        status=status,
        total_budget=1_000_000_000,
        reviewers=["rev.ito"],
        public_use_ministries=["MOD"],
    )


async def seed(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """An open and a closed project, each with work stuck in every section."""
    now = datetime.now(UTC)
    async with sessionmaker.begin() as s:
        s.add(_project(OPEN_ID, "Open optics", status="on_hold"))
        s.add(_project(CLOSED_ID, CLOSED_TITLE, closed=True, status="on_hold"))
        await s.flush()
        for days, pid in ((3, OPEN_ID), (9, CLOSED_ID)):
            s.add(
                Gate(
                    project_id=pid,
                    gate_no=1,
                    status="open",
                    round=1,
                    due_at=now - timedelta(days=days),
                    workflow_id=f"project-{pid}-gate-1-r1",
                    definition={},
                    opened_at=now - timedelta(days=60),
                )
            )
            s.add(
                AuditEntry(
                    actor="system",
                    action="project_on_hold",
                    outcome="ok",
                    target=f"project:{pid}",
                    at=now - timedelta(days=days),
                    detail={"reason": f"hold reason of {pid}"},
                )
            )
            s.add(
                Document(
                    id=f"doc-{pid}", project_id=pid, kind="handoff_package", template="t", content="c", sha256="0" * 64
                )
            )
            await s.flush()
            s.add(
                Handoff(
                    id=f"{pid}-h-MOD",
                    project_id=pid,
                    ministry="MOD",
                    status="pending",
                    document_id=f"doc-{pid}",
                    deadline_at=now - timedelta(days=days),
                )
            )
            s.add(
                TrancheApproval(
                    project_id=pid,
                    stage_no=1,
                    tranche_no=2,
                    amount=6_000_000_000,
                    requested_by="fin.suzuki",
                    requested_at=now - timedelta(days=days),
                )
            )
        # Paid in the ledger, its instruction still in the outbox (the bank has not got it).
        pay = LedgerTransaction(business_key=f"pay:{OPEN_ID}:1:1", kind="pay", project_id=OPEN_ID, legs=2)
        s.add(pay)
        await s.flush()
        s.add(
            LedgerEntry(
                transaction_id=pay.id, account=f"reservation:{OPEN_ID}", ministry="METI", amount=-7, fiscal_year=2026
            )
        )
        s.add(
            LedgerEntry(transaction_id=pay.id, account=f"paid:{OPEN_ID}", ministry="METI", amount=7, fiscal_year=2026)
        )
        s.add(Tranche(project_id=OPEN_ID, stage_no=1, tranche_no=1, amount=7_000, transaction_id=pay.id, due_at=now))
        s.add(PaymentInstruction(key=f"pay:{OPEN_ID}:1:1", transaction_id=pay.id, project_id=OPEN_ID, payee="Lab",
                                 amount=7_000, kind="pay", status="pending", created_at=now - timedelta(days=1)))  # fmt: skip
        # Not stuck: a gate due later, an answered hand-off, an approved tranche.
        s.add(Gate(project_id=OPEN_ID, gate_no=2, status="open", due_at=now + timedelta(days=5),
                   workflow_id="later", definition={}, opened_at=now))  # fmt: skip
        s.add(TrancheApproval(project_id=OPEN_ID, stage_no=1, tranche_no=1, amount=1, requested_by="fin.suzuki",
                              requested_at=now, approved_by="fin.yamada", approved_at=now))  # fmt: skip


async def _page(api: InProcessApi, user: str, path: str = "/app/operations") -> httpx.Response:
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, user, DEMO_PASSWORD, EN)).status_code == 303
        return await http.get(path, headers=EN)


def _section(text: str, heading_id: str) -> str:
    start = text.index(f'id="{heading_id}"')
    end = text.find("<section", start)
    return text[start : end if end != -1 else len(text)]


def _ui(query: str) -> str:
    return html.escape(f"{UI}/namespaces/default/workflows?query={quote(query, safe='')}")


async def test_each_section_lists_its_stuck_work_with_temporal_ui_links(api_any_db: InProcessApi) -> None:
    api = api_any_db
    page = await _page(api, "ops.kimura")
    assert page.status_code == 200
    text = page.text
    assert 'href="/app/operations">Operations</a>' in text  # in the navigation for ops
    gates = _section(text, "ops-gates")
    assert "Open optics" in gates and "Gate 1, round 1" in gates and "3 days overdue" in gates
    assert "KP-OPS-OPEN</span>" in gates and "gate 2" not in gates.lower().replace("gate 1", "")
    assert _ui('GateOverdue=true AND ExecutionStatus="Running"') in gates
    assert _ui(f'ProjectId="{OPEN_ID}"') in gates
    holds = _section(text, "ops-holds")
    assert "Open optics" in holds and f"hold reason of {OPEN_ID}" in holds and "days left" in holds
    assert _ui('ProjectStatus="on_hold" AND ExecutionStatus="Running"') in holds
    handoffs = _section(text, "ops-handoffs")
    assert "Open optics" in handoffs and "MOD" in handoffs and "3 days overdue" in handoffs
    four_eyes = _section(text, "ops-four-eyes")  # finance's list, as finance's pages show it
    assert "Open optics" in four_eyes and "Stage 1, tranche 2" in four_eyes and "Not yet due" in four_eyes
    assert "Stage 1, tranche 1" not in four_eyes  # approved (and paid): not waiting
    payments = _section(text, "ops-payments")
    assert "Open optics" in payments and "Stage 1, tranche 1" in payments and "¥7,000" in payments
    assert "1 paid tranche is not yet with the bank." in payments
    drift = _section(text, "ops-drift")
    assert f"no workflow project-{OPEN_ID} exists for this project" in drift
    assert _ui(f'ProjectId="{OPEN_ID}"') in drift
    saved = _section(text, "ops-saved-queries")  # the daily questions (README "Operations")
    for query in (
        "GateOverdue=true",
        'ProjectStatus="on_hold"',
        "AwaitingFourEyes=true",
        "HandoffOverdue=true",
        'FundingMinistry="MEXT"',
        'FundingMinistry="METI"',
        "TRL=1",
        "TRL=9",
    ):
        assert _ui(f'{query} AND ExecutionStatus="Running"') in saved, query


async def test_most_overdue_first(api_any_db: InProcessApi) -> None:
    api = api_any_db
    text = (await _page(api, "ops.hayashi")).text  # cleared, but no grant yet: the closed one withheld
    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id=CLOSED_ID, username="ops.hayashi", granted_by="admin"))
    text = (await _page(api, "ops.hayashi")).text
    for section in ("ops-gates", "ops-holds", "ops-handoffs", "ops-four-eyes"):
        part = _section(text, section)
        assert part.index(CLOSED_TITLE) < part.index("Open optics"), section  # nine days before three


async def test_closed_work_is_withheld_from_an_uncleared_operator(api: InProcessApi) -> None:
    text = (await _page(api, "ops.kimura")).text
    assert CLOSED_TITLE not in text and CLOSED_ID not in text
    assert f"hold reason of {CLOSED_ID}" not in text
    # It still counts, under its pseudonym, with no link into Temporal (that would name it).
    assert "2 open review rounds are past their due date." in text
    assert text.count("Closed work, withheld") == 4  # gates, holds, hand-offs, drift
    # Finance's four-eyes list shows closed work only where granted, as on finance's pages.
    assert "1 tranche waits for four-eyes approval." in _section(text, "ops-four-eyes")
    async with api.sessionmaker() as s:
        audited = (
            await s.scalars(select(AuditEntry.detail).where(AuditEntry.action == "list_closed:operations"))
        ).all()
    assert any(CLOSED_ID in d["withheld"] for d in audited)
    # Cleared and granted: shown.
    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id=CLOSED_ID, username="ops.hayashi", granted_by="admin"))
    cleared = (await _page(api, "ops.hayashi")).text
    assert CLOSED_TITLE in cleared and _ui(f'ProjectId="{CLOSED_ID}"') in cleared
    assert "Closed work, withheld" not in cleared


async def test_other_roles_are_refused(api: InProcessApi) -> None:
    for user in ("rev.ito", "pm.sato", "fin.suzuki"):
        page = await _page(api, user)
        assert page.status_code == 403, user
        assert "this needs one of the roles: ops, admin" in page.text
        assert 'href="/app/operations"' not in page.text
    assert (await _page(api, "admin")).status_code == 200
    assert (await api.http.get("/app/operations")).headers["location"] == "/app/sign-in?next=/app/operations"


async def test_each_section_pages(api_any_db: InProcessApi) -> None:
    api = api_any_db
    now = datetime.now(UTC)
    async with api.sessionmaker.begin() as s:
        for n in range(30):
            pid = f"KP-OPS-P{n:02}"
            s.add(_project(pid, f"Paged {n:02}"))
            await s.flush()
            s.add(Gate(project_id=pid, gate_no=1, status="open", due_at=now - timedelta(hours=n + 1),
                       workflow_id=f"w-{pid}", definition={}, opened_at=now))  # fmt: skip
    first = _section((await _page(api, "ops.kimura")).text, "ops-gates")
    assert "32 open review rounds are past their due date." in first and "Page 1 of 2" in first
    assert "Paged 00" not in first  # the least overdue is on the second page
    second = _section((await _page(api, "ops.kimura", "/app/operations?gates_page=2&holds_page=1")).text, "ops-gates")
    assert "Page 2 of 2" in second and "Paged 00" in second and "Paged 29" not in second
    assert 'href="/app/operations?gates_page=1"' in second


async def test_the_page_stands_when_temporal_is_out_of_reach(sqlite_url: str) -> None:
    async with inprocess_api(sqlite_url) as api:
        await seed(api.sessionmaker)
        page = await _page(api, "ops.kimura")
    assert page.status_code == 200
    drift = _section(page.text, "ops-drift")
    assert "The reconciliation could not run: Temporal is not connected" in drift
    assert "Open optics" in _section(page.text, "ops-gates")


async def test_japanese(api: InProcessApi) -> None:
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, "ops.kimura", DEMO_PASSWORD)).status_code == 303
        page = await http.get("/app/operations", headers=JA)
    assert page.status_code == 200 and "<h1>運用</h1>" in page.text
    assert "期限を過ぎた審査ラウンドが 2 件あります。" in page.text and "秘匿案件（非表示）" in page.text
    assert "Temporal UI の保存済みクエリ" in page.text and "資金拠出府省別：" in page.text
