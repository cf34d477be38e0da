"""The portfolio list: who sees which projects, filters, sort, totals and paging, all in SQL,
and the page that shows it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from domain.programme import PROGRAMME_CODE
from domain.project import ProjectStatus
from domain.security import Level
from services.portfolio import Filters, Sort, portfolio
from storage.models import Gate, NeedToKnowGrant, Project, User
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_web_pages import JA, sign_in

NOW = datetime.now(UTC)


def _project(n: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "id": f"KP-T{n:04d}",
        "programme_code": PROGRAMME_CODE,
        "workflow_id": f"project-KP-T{n:04d}",
        "title": f"海洋観測 {n:04d}",
        "organisation": "Test",
        "programme_manager": "pm.sato",
        "funding_ministry": "MEXT",
        "research_vision": "test",
        "classification": "open",
        "start_trl": 1,
        "target_trl": 9,
        "current_trl": 1 + n % 9,
        "stage_no": 1 + n % 4,
        "status": "active",
        "total_budget": 1_000_000_000 * (1 + n % 5),
        "reviewers": ["rev.ito", "rev.kato"] if n % 2 else ["rev.mori"],
        "public_use_ministries": ["MOD"],
        "created_at": NOW + timedelta(seconds=n),
    }
    row.update(overrides)
    return row


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        rows = [_project(n) for n in range(30)]
        rows += [_project(30, programme_manager="pm.tanaka", status="on_hold", funding_ministry="METI")]
        rows += [_project(31, classification="closed", label_level=2, title="秘匿")]
        async with api.sessionmaker.begin() as s:
            await s.execute(insert(Project), rows)
            await s.execute(
                insert(Gate),
                [
                    {
                        "project_id": "KP-T0003",
                        "gate_no": 1,
                        "status": "open",
                        "round": 1,
                        "due_at": NOW - timedelta(days=2),
                        "workflow_id": "g",
                        "definition": {},
                        "opened_at": NOW,
                    }
                ],
            )
        yield api


async def _user(api: InProcessApi, username: str) -> User:
    async with api.sessionmaker() as s:
        user = await s.get(User, username)
    assert user is not None
    return user


async def test_each_role_sees_its_projects_with_totals_and_sql_paging(api: InProcessApi) -> None:
    users = {name: await _user(api, name) for name in ("pm.sato", "rev.mori", "admin", "liaison.mlit")}
    async with api.sessionmaker() as s:
        pm = await portfolio(s, users["pm.sato"], Filters(), page=2, per_page=25)
        # Thirty of pm.sato's open projects; the closed one needs a grant, pm.tanaka's is not theirs.
        assert pm.total == 30 and pm.pages == 2 and len(pm.rows) == 5
        assert pm.total_budget == sum(_project(n)["total_budget"] for n in range(30))
        assert [p.id for p in pm.rows] == [f"KP-T{n:04d}" for n in range(4, -1, -1)]  # newest first
        reviewer = await portfolio(s, users["rev.mori"], Filters(), per_page=100)
        assert {p.id for p in reviewer.rows} == {f"KP-T{n:04d}" for n in range(0, 31, 2)}  # on their panels
        admin = await portfolio(s, users["admin"], Filters(), per_page=100)
        assert admin.total == 31  # every open project, and the closed one only with a grant
        liaison = await portfolio(s, users["liaison.mlit"], Filters(), per_page=100)
        assert liaison.total == 0  # MLIT is no public-use ministry of these


async def test_filters_and_sorts_narrow_in_sql(api: InProcessApi) -> None:
    admin = await _user(api, "admin")
    async with api.sessionmaker() as s:
        held = await portfolio(s, admin, Filters(status=ProjectStatus.ON_HOLD))
        assert [p.id for p in held.rows] == ["KP-T0030"]
        meti = await portfolio(s, admin, Filters(ministry="METI"))
        assert [p.id for p in meti.rows] == ["KP-T0030"]
        trl5 = await portfolio(s, admin, Filters(trl=5, stage=1), per_page=100)
        assert trl5.rows and all(p.current_trl == 5 and p.stage_no == 1 for p in trl5.rows)
        overdue = await portfolio(s, admin, Filters(overdue_gates=True))
        assert [p.id for p in overdue.rows] == ["KP-T0003"]
        by_budget = await portfolio(s, admin, Filters(sort=Sort.BUDGET), per_page=100)
        budgets = [p.total_budget for p in by_budget.rows]
        assert budgets == sorted(budgets, reverse=True)


async def test_the_portfolio_page_filters_and_shows_totals_in_japanese(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "pm.sato", DEMO_PASSWORD)).status_code == 303
    page = await api.http.get("/app/projects", params={"overdue": "1"}, headers=JA)
    assert page.status_code == 200 and "ポートフォリオ" in page.text
    assert "海洋観測 0003" in page.text and "海洋観測 0004" not in page.text
    assert "1 件のプロジェクト" in page.text and "予算総額 40億円" in page.text
    # A filter value that means nothing is "any", never an error.
    junk = await api.http.get("/app/projects", params={"status": "nope", "trl": "99", "sort": "x"}, headers=JA)
    assert junk.status_code == 200 and "30 件のプロジェクト" in junk.text


async def test_closed_work_the_clearance_no_longer_covers_stays_out_of_the_totals(api: InProcessApi) -> None:
    # KP-T0031 is closed (label SECRET) with pm.sato as its PM and rev.ito/rev.kato on its panel.
    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id="KP-T0031", username="pm.sato", granted_by="admin"))
    pm = await _user(api, "pm.sato")
    async with api.sessionmaker() as s:
        cleared = await portfolio(s, pm, Filters(), per_page=100)
    assert cleared.total == 31 and "KP-T0031" in {p.id for p in cleared.rows}  # SECRET clearance, granted
    async with api.sessionmaker.begin() as s:
        await s.execute(update(User).where(User.username == "pm.sato").values(clearance_level=int(Level.CONFIDENTIAL)))
    pm = await _user(api, "pm.sato")
    async with api.sessionmaker() as s:
        lowered = await portfolio(s, pm, Filters(), per_page=100)
    assert lowered.total == 30 and "KP-T0031" not in {p.id for p in lowered.rows}
    assert lowered.total_budget == cleared.total_budget - _project(31)["total_budget"]
