"""Telemetry over a real stack (API over HTTP, a worker, the local Temporal dev server): one
project is taken to its first gate and through its decision while the API's /metrics and the
worker's port are scraped, JSON logs are captured and spans are kept in memory. Each test reads
what the one journey recorded."""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from storage.models import Tranche
from telemetry import tracing, worker_http
from telemetry.logs import formatter
from tests.api_stack import ApiStack, api_stack
from tests.support import PM, assert_eventually
from tests.test_api_lifecycle import proposal_body, review_gate, wait_gate_open

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class Journey:
    project_id: str
    before: Samples  # the API's scrape before the project
    at_gate: Samples  # while gate 1's round is open
    decided: Samples  # after the Go
    worker: Samples  # the worker port's scrape at the end
    tranches: tuple[int, int]  # (count, yen) in the database while the round is open
    logs: list[dict[str, Any]] = field(default_factory=list)
    spans: list[ReadableSpan] = field(default_factory=list)
    create_request_id: str = ""


async def _scrape(stack: ApiStack) -> Samples:
    r = await stack.http.get("/metrics")
    assert r.status_code == 200, r.text
    return parse(r.text)


SEARCH_WORDS = "quantum-sensor-words"  # what a user searched for: in no span


@pytest.fixture(scope="module")
async def journey(
    local_env: WorkflowEnvironment, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Journey]:
    db = tmp_path_factory.mktemp("telemetry") / "trlgate.db"
    shutil.copy(sqlite_template, db)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        # A client as connection/client.py makes one: the ids-in-logs and tracing interceptors
        # (the worker built on it takes the tracing one too).
        client = Client(**{**local_env.client.config(), "interceptors": tracing.client_interceptors()})
        async with api_stack(client, f"sqlite+aiosqlite:///{db}", "telemetry-journey", seconds_per_day=0.001) as stack:
            state = worker_http.WorkerState(client, stack.sessionmaker)
            serving = await worker_http.serve(state, "127.0.0.1", 0)
            try:
                before = await _scrape(stack)
                headers = {**await stack.login(PM), "X-Request-ID": "journey-1"}
                r = await stack.http.post("/projects", json=proposal_body(), headers=headers)
                assert r.status_code == 201, r.text
                project_id = r.json()["id"]
                await wait_gate_open(stack, project_id, 1)
                at_gate = await _scrape(stack)
                # Nothing is paid while a round is open: the database says what the scrape should.
                async with stack.sessionmaker() as session:
                    paid = (
                        await session.execute(select(func.count(), func.coalesce(func.sum(Tranche.amount), 0)))
                    ).one()
                await review_gate(stack, project_id, 1)
                r = await stack.call("POST", f"/projects/{project_id}/gates/1/decision", PM, json={"decision": "go"})
                assert r.status_code == 200, r.text
                # The Go closes the round and starts stage 2, whose first tranche falls due soon.
                decided = await assert_eventually(
                    lambda: _scrape(stack),
                    "the round closed and stage 2 paid",
                    until=lambda s: (
                        value(s, "trlgate_gate_reviews_open") == 0
                        and value(s, "trlgate_tranches_paid") > value(at_gate, "trlgate_tranches_paid")
                    ),
                )
                searched = await stack.http.get("/projects", params={"q": SEARCH_WORDS}, headers=await stack.login(PM))
                assert searched.status_code == 200, searched.text
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{serving.port}") as http:
                    worker = parse((await http.get("/metrics")).text)
                    assert (await http.get("/health/live")).json() == {"status": "ok"}
            finally:
                await serving.stop()
        yield Journey(
            project_id=project_id,
            before=before,
            at_gate=at_gate,
            decided=decided,
            worker=worker,
            tranches=(int(paid[0]), int(paid[1])),
            logs=[json.loads(line) for line in lines.getvalue().splitlines() if line.startswith("{")],
            spans=list(exporter.get_finished_spans()),
            create_request_id="journey-1",
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        tracing.install(None)


def test_api_metrics_show_the_open_round_and_the_decision(journey: Journey) -> None:
    j = journey
    assert value(j.before, "trlgate_gate_reviews_open") == 0
    assert value(j.at_gate, "trlgate_gate_reviews_open") == 1
    assert value(j.at_gate, "trlgate_gate_reviews_overdue") == 0
    active = value(j.before, "trlgate_projects", status="active")
    assert value(j.at_gate, "trlgate_projects", status="active") == active + 1
    count, yen = j.tranches
    assert count > 0 and value(j.at_gate, "trlgate_tranches_paid") == count
    assert value(j.at_gate, "trlgate_tranches_paid_yen") == yen
    assert value(j.decided, "trlgate_gate_reviews_open") == 0
    assert value(j.decided, "trlgate_tranches_paid") > count
    assert value(j.decided, "trlgate_tranches_paid_yen") > yen
    created = {"method": "POST", "route": "/projects", "status": "201"}
    decision = {"method": "POST", "route": "/projects/{project_id}/gates/{gate_no}/decision", "status": "200"}
    for labels in (created, decision):
        delta = value(j.decided, "trlgate_http_requests_total", **labels) - value(
            j.before, "trlgate_http_requests_total", **labels
        )
        assert delta == 1, labels
    assert {dict(k[1])["reason"] for k in j.decided if k[0] == "trlgate_tranches_waiting"} == {
        "four_eyes_request",
        "four_eyes_approval",
        "report",
    }


def test_worker_port_counts_the_activities_it_ran(journey: Journey) -> None:
    for activity in ("register_project", "record_decision", "record_gate_event"):
        assert value(journey.worker, "trlgate_activities_total", activity=activity, outcome="completed") >= 1, activity
    assert value(journey.worker, "trlgate_activity_duration_seconds_count", activity="register_project") >= 1


def test_json_logs_carry_the_request_and_workflow_ids(journey: Journey) -> None:
    requests = [r for r in journey.logs if r.get("event") == "request" and r.get("process")]
    create = [r for r in requests if r["request_id"] == journey.create_request_id]
    assert len(create) == 1, requests[:3]
    line = create[0]
    assert line["user"] == PM and line["route"] == "/projects" and line["status"] == 201
    assert line["workflow_id"] == f"project-{journey.project_id}" and line["run_id"]
    assert line["level"] == "info" and line["logger"] == "trlgate.http" and line["timestamp"]
    decided = [r for r in requests if r["route"] == "/projects/{project_id}/gates/{gate_no}/decision"]
    assert decided and decided[0]["project_id"] == journey.project_id and decided[0]["user"] == PM
    assert decided[0]["workflow_id"] and decided[0]["run_id"]  # the gate round's workflow it updated


def test_one_request_traces_through_temporal_to_the_activities(journey: Journey) -> None:
    spans = journey.spans
    start = [s for s in spans if s.name == "StartWorkflow:ProjectWorkflow"]
    assert len(start) == 1
    trace_id = start[0].context.trace_id
    names = {s.name for s in spans if s.context.trace_id == trace_id}
    assert any(n.startswith("POST /projects") for n in names), names
    assert "RunWorkflow:ProjectWorkflow" in names
    assert "RunActivity:register_project" in names
    assert any(s.attributes and "db.system" in str(s.attributes) for s in spans if s.context.trace_id == trace_id)


def test_spans_keep_no_query_string(journey: Journey) -> None:
    searched = [s for s in journey.spans if s.name.startswith("GET /projects")]
    assert searched, {s.name for s in journey.spans}
    leaks = [(s.name, dict(s.attributes or {})) for s in journey.spans if SEARCH_WORDS in str(s.attributes)]
    assert not leaks
