"""The API's telemetry without Temporal: request ids, HTTP metrics by route template, the
/metrics scrape and its contract of names, liveness and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from storage.models import Project
from telemetry.metrics import exported_metric_names
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.support import PM


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as a:
        yield a


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests_counted(scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], **labels: str) -> float:
    return scrape.get(("trlgate_http_requests_total", frozenset(labels.items())), 0.0)


async def test_request_ids_are_echoed_kept_when_sane_and_replaced_when_not(api: InProcessApi) -> None:
    kept = await api.http.get("/health/live", headers={"X-Request-ID": "lb-1234.abc"})
    assert kept.status_code == 200 and kept.json() == {"status": "ok"}
    assert kept.headers["x-request-id"] == "lb-1234.abc"
    forged = await api.http.get("/health/live", headers={"X-Request-ID": 'x" injected="1'})
    made = forged.headers["x-request-id"]
    assert made != 'x" injected="1' and len(made) == 32
    assert (await api.http.get("/health/live")).headers["x-request-id"] != made


async def test_metrics_count_requests_by_route_template_and_read_the_database(api: InProcessApi) -> None:
    before = samples((await api.http.get("/metrics")).text)
    assert (await api.call("GET", "/projects/NOPE-1", PM)).status_code == 404
    assert (await api.http.get("/no/such/page")).status_code == 404
    r = await api.http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)
    for labels in (
        {"method": "GET", "route": "/projects/{project_id}", "status": "404"},
        {"method": "GET", "route": "unmatched", "status": "404"},
        {"method": "GET", "route": "/metrics", "status": "200"},
    ):
        assert requests_counted(after, **labels) == requests_counted(before, **labels) + 1, labels
    assert not [
        key for key in after if key[0] == "trlgate_http_requests_total" and ("route", "/no/such/page") in key[1]
    ]
    assert not [key for key in after if key[0].endswith("_created")]
    async with api.sessionmaker() as session:
        active = await session.scalar(select(func.count()).where(Project.status == "active"))
    assert after[("trlgate_projects", frozenset({("status", "active")}))] == active
    assert after[("trlgate_outbox_backlog", frozenset({("outbox", "payments")}))] >= 0
    assert {name for name, _ in after} <= exported_metric_names()
    api_names = {name for name, _ in after} | {"trlgate_http_request_duration_seconds_bucket"}
    worker_only = {"trlgate_activities_total", "trlgate_payments_sent_total", "trlgate_mails_sent_total"}
    assert api_names | worker_only <= exported_metric_names()


async def test_metrics_stay_out_of_the_openapi_schema(api: InProcessApi) -> None:
    paths = (await api.http.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths and {"/health/live", "/health/ready", "/health"} <= set(paths)


async def test_ready_says_why_not_when_temporal_is_missing(api: InProcessApi) -> None:
    r = await api.http.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["database"] == "ok" and r.json()["temporal"].startswith("error: not connected")
