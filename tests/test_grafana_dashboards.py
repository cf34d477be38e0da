"""The provisioned Grafana dashboards load and query only metrics that exist: trlgate's own (the
names telemetry.metrics exports) and the Temporal SDK's (scraped from a real SDK runtime)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from telemetry.metrics import exported_metric_names
from tests.api_stack import free_port
from tests.support import assert_eventually

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Grafana's own variables, replaced by what they stand for so the expression parses as PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))  # a row's folded panels


def expressions() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())["panels"]):
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


def metric_names(expr: str) -> set[str]:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: list[str | None] = []
    promql_parser.walk(
        promql_parser.parse(expr),
        lambda node: names.append(node.name) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    assert None not in names, f"a selector without a metric name in {expr!r}"
    return {name for name in names if name}


def referenced(prefix: str) -> set[str]:
    return {name for _, expr in expressions() for name in metric_names(expr) if name.startswith(prefix)}


def test_the_dashboards_load_and_query_the_provisioned_prometheus() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())
    prometheus = {s["uid"] for s in sources["datasources"] if s["type"] == "prometheus"}
    boards = [json.loads(path.read_text()) for path in DASHBOARDS]
    assert {b["uid"] for b in boards} == {"trlgate", "temporal-sdk"}
    found = list(expressions())
    assert len(found) > 20
    for where, expr in found:
        names = metric_names(expr)
        assert names, f"{where}: {expr!r} queries no metric"
        assert all(re.match(r"(trlgate|temporal)_", n) for n in names), f"{where}: a metric from nowhere in {expr!r}"
    for board in boards:
        for panel in panels(board["panels"]):
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] in prometheus, panel["title"]


# The application's metrics as issue 14 names them: the trlgate dashboard shows each one.
CONTRACT = {
    "trlgate_http_requests_total",
    "trlgate_http_request_duration_seconds",
    "trlgate_gate_reviews_open",
    "trlgate_gate_reviews_overdue",
    "trlgate_tranches_paid",
    "trlgate_tranches_paid_yen",
    "trlgate_tranches_waiting",
    "trlgate_projects",
    "trlgate_projects_on_hold",
    "trlgate_outbox_backlog",
    "trlgate_outbox_oldest_age_seconds",
    "trlgate_ledger_invariant_violations",
    "trlgate_fund_check_last_run_timestamp_seconds",
    "trlgate_activities_total",
    "trlgate_payments_sent_total",
    "trlgate_mails_sent_total",
}


def family(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def test_the_trlgate_dashboard_shows_every_application_metric() -> None:
    assert CONTRACT - {family(name) for name in referenced("trlgate_")} == set()


def test_trlgate_metrics_are_the_ones_the_code_exports() -> None:
    # Every sample name the API and the worker expose, suffixes (_total, _bucket, _sum, _count) included.
    missing = referenced("trlgate_") - set(exported_metric_names())
    assert missing == set(), "the dashboard queries metrics nothing exports"


@activity.defn
async def greet(name: str) -> str:
    if activity.info().attempt == 1:
        raise RuntimeError("the first attempt fails, so the failure counters exist")
    return f"hello {name}"


@workflow.defn(sandboxed=False)
class Greets:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            greet,
            name,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10)),
        )


@workflow.defn(sandboxed=False)
class Refuses:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("a business failure", non_retryable=True)


def scrape(port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}


async def test_temporal_metrics_are_the_ones_the_sdk_exports(local_env: WorkflowEnvironment) -> None:
    # The worker's runtime as trlgate's worker makes it: the SDK's Prometheus exporter, "temporal_" names.
    port = free_port()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}")))
    target = local_env.client.service_client.config.target_host
    client = await Client.connect(target, namespace=local_env.client.namespace, runtime=runtime)
    queue = f"sdk-metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[Greets, Refuses],
        activities=[greet],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        assert await client.execute_workflow(Greets.run, "ops", id=f"{queue}-ok", task_queue=queue) == "hello ops"
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(Refuses.run, id=f"{queue}-fails", task_queue=queue)
        wanted = referenced("temporal_")
        exposed = await assert_eventually(
            lambda: asyncio.to_thread(scrape, port), "the SDK exports the dashboard's metrics", until=wanted.__le__
        )
    assert wanted and wanted <= exposed
