"""Mail that was not delivered, on the operations page: how many wait, and each failed one with
the server's reason, for operations staff and administrators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from activities.notices import store_notice
from domain.mail import MailStatus
from domain.programme import PROGRAMME_CODE
from storage.models import MailOutbox
from storage.projects import insert_project
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import proposal
from tests.test_web_operations_pages import _NoWorkflows
from tests.test_web_pages import EN, JA, sign_in

NOW = datetime(2027, 4, 1, tzinfo=UTC)


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=_NoWorkflows()) as api:
        yield api


async def test_operations_see_failed_mail_with_the_servers_reason(api: InProcessApi) -> None:
    p = proposal()
    assert p.project_id is not None
    async with api.sessionmaker.begin() as s:
        await insert_project(s, PROGRAMME_CODE, f"project-{p.project_id}", p)
    async with api.sessionmaker.begin() as s:
        await store_notice(s, "k-refused", p.project_id, "rev.ito", "invitation", "invited", NOW)
        await store_notice(s, "k-waiting", p.project_id, "rev.kato", "invitation", "invited", NOW)
    async with api.sessionmaker.begin() as s:
        await s.execute(
            update(MailOutbox)
            .where(MailOutbox.notification_key == "k-refused")
            .values(status=MailStatus.FAILED, attempts=1, last_error="refused: 550 5.1.2 <x@y.invalid>: no such domain")
        )

    await sign_in(api.http, "ops.kimura", DEMO_PASSWORD, EN)
    page = await api.http.get("/app/operations", headers=EN)

    assert page.status_code == 200
    assert "E-mail not delivered" in page.text and "Waiting to be sent: 1. Failed: 1." in page.text
    assert "refused: 550 5.1.2 &lt;x@y.invalid&gt;: no such domain" in page.text and "<td>rev.ito</td>" in page.text
    ja = await api.http.get("/app/operations", headers=JA)
    assert "未配信のメール" in ja.text and "送信待ち: 1 件。失敗: 1 件。" in ja.text
