"""Fixes from the review of issue 13's merged branches, each with the test that failed before it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from unittest import mock

import pytest

from services import users_admin
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.support import CHEAP_HASHES
from tests.test_web_admin_pages import browser_of
from tests.test_web_pages import EN


@pytest.fixture(autouse=True)
def cheap_hashes() -> Iterator[None]:
    with mock.patch.object(users_admin, "password_hash", CHEAP_HASHES):
        yield


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


@pytest.mark.parametrize("query", ["since=0001-01-01", "until=9999-12-31"])
async def test_an_audit_date_at_the_calendars_edge_is_a_422_not_a_500(api: InProcessApi, query: str) -> None:
    # JST midnight of 0001-01-01 (and of the day after 9999-12-31) is no datetime in UTC.
    answered = await api.call("GET", f"/audit?{query}", "admin")
    assert answered.status_code == 422 and "a date from 1970-01-01 to 9999-12-30" in answered.json()["detail"]
    async with browser_of(api, "admin") as http:
        page = await http.get(f"/app/admin/audit?{query}", headers=EN)
    assert page.status_code == 422 and "a date from 1970-01-01 to 9999-12-30" in page.text
    assert query.split("=")[1] in page.text  # what was typed is kept
