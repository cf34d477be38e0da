"""Defects found by trying the workbench as a new user (each would show again if its fix broke)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_web_pages import EN, JA, sign_in


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


async def test_the_user_forms_name_ministries_in_the_readers_language(api: InProcessApi) -> None:
    # The seeded registry's names are English; the catalog translates them, as on the fund page.
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, "admin", DEMO_PASSWORD)).status_code == 303
        for page in ("/app/admin/users/new", "/app/admin/users/liaison.mod"):
            ja = await http.get(page, headers=JA)
            assert ja.status_code == 200
            assert "METI · 経済産業省</option>" in ja.text and "Ministry of Economy" not in ja.text, page
            en = await http.get(page, headers=EN)
            assert "METI · Ministry of Economy, Trade and Industry</option>" in en.text, page
