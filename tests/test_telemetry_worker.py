"""The worker process's telemetry: its HTTP port (metrics, liveness, readiness), the SDK's
Prometheus port, draining on stop with an activity in flight, and the workflow and activity
context in its JSON log records."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import worker as worker_module
from activities import fund_check, repair
from config import Settings
from connection.client import connect
from telemetry import worker_http
from telemetry.logs import formatter
from tests.api_stack import free_port
from tests.support import assert_eventually

IN_FLIGHT = asyncio.Event()
RELEASE = asyncio.Event()


@activity.defn
async def hold_until_released(note: str) -> str:
    activity.logger.info("holding %s", note)
    IN_FLIGHT.set()
    await RELEASE.wait()
    return f"finished {note}"


@workflow.defn(sandboxed=False)
class HoldOnce:
    @workflow.run
    async def run(self, note: str) -> str:
        workflow.logger.info("starting the activity")
        return str(
            await workflow.execute_activity(hold_until_released, note, start_to_close_timeout=timedelta(seconds=30))
        )


async def test_worker_drains_on_stop_with_an_activity_in_flight(
    local_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_activities: Callable[..., list[Any]] = worker_module.activities_for
    monkeypatch.setattr(worker_module, "WORKFLOWS", [*worker_module.WORKFLOWS, HoldOnce])
    monkeypatch.setattr(worker_module, "activities_for", lambda s: [*real_activities(s), hold_until_released])
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_url,
        temporal_address=local_env.client.service_client.config.target_host,
        task_queue=task_queue,
        worker_port=free_port(),
        worker_sdk_metrics_port=free_port(),
        worker_shutdown_seconds=20,
        mail_poll_seconds=60,
    )
    IN_FLIGHT.clear()
    RELEASE.clear()
    stop = asyncio.Event()
    running = asyncio.create_task(worker_module.run_worker(settings, stop))
    client: Client = await connect(settings)
    port = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.worker_port}")
    try:

        async def ready() -> httpx.Response:
            return await port.get("/health/ready")

        await assert_eventually(
            ready, "the worker ready", until=lambda r: r.status_code == 200, ignoring=(httpx.HTTPError,)
        )
        assert (await port.get("/health/live")).json() == {"status": "ok"}
        handle = await client.start_workflow(
            HoldOnce.run, "the tranche", id=f"hold-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await asyncio.wait_for(IN_FLIGHT.wait(), 30)

        sdk = (await httpx.AsyncClient().get(f"http://127.0.0.1:{settings.worker_sdk_metrics_port}/metrics")).text
        assert "temporal_workflow_task_schedule_to_start_latency" in sdk and "temporal_sticky_cache_size" in sdk

        stop.set()  # what SIGTERM does
        draining = await assert_eventually(ready, "readiness off while draining", until=lambda r: r.status_code == 503)
        assert any(reason.startswith("draining") for reason in draining.json()["reasons"])
        assert not running.done()  # the activity holds the drain
        RELEASE.set()
        await asyncio.wait_for(running, 30)
        # The activity's result reached the server before the worker left (the workflow itself
        # goes on with the next worker to poll).
        history = await handle.fetch_history()
        [completed] = [e for e in history.events if e.HasField("activity_task_completed_event_attributes")]
        [payload] = completed.activity_task_completed_event_attributes.result.payloads
        assert await client.data_converter.decode([payload], [str]) == ["finished the tranche"]
        await handle.terminate("the test is over")
        with pytest.raises(httpx.ConnectError):
            await port.get("/health/live")  # the port closed once drained
    finally:
        RELEASE.set()
        stop.set()
        await port.aclose()
        if not running.done():
            await asyncio.wait_for(running, 30)
        # The worker made the schedules every worker start makes; other tests expect none.
        for schedule in (fund_check.SCHEDULE_ID, repair.SCHEDULE_ID):
            await local_env.client.get_schedule_handle(schedule).delete()


async def test_worker_log_records_carry_the_workflow_and_activity_context(local_env: WorkflowEnvironment) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(formatter("json"))
    temporal = logging.getLogger("temporalio")
    level = temporal.level
    temporal.addHandler(handler)
    temporal.setLevel(logging.INFO)
    IN_FLIGHT.clear()
    RELEASE.set()
    queue = f"logs-{uuid.uuid4().hex[:8]}"
    try:
        async with Worker(local_env.client, task_queue=queue, workflows=[HoldOnce], activities=[hold_until_released]):
            handle = await local_env.client.start_workflow(HoldOnce.run, "logs", id=f"{queue}-wf", task_queue=queue)
            await handle.result()
    finally:
        temporal.removeHandler(handler)
        temporal.setLevel(level)
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    started = next(r for r in records if r["event"].startswith("starting the activity"))
    assert started["workflow_id"] == f"{queue}-wf" and started["run_id"] == handle.result_run_id
    assert started["workflow_type"] == "HoldOnce" and started["task_queue"] == queue
    held = next(r for r in records if r["event"].startswith("holding logs"))
    assert held["activity_type"] == "hold_until_released" and held["attempt"] == 1
    assert held["workflow_id"] == f"{queue}-wf" and held["run_id"] == handle.result_run_id
    assert held["level"] == "info" and held["logger"] == "temporalio.activity"


async def test_a_second_worker_on_this_host_runs_without_the_ports_it_finds_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`trlgate worker` beside `trlgate up` (scaling out on one host): the first worker holds both
    ports; the second starts without them and says why, instead of dying at start."""
    settings = Settings(data_dir=tmp_path, worker_port=free_port(), worker_sdk_metrics_port=free_port())
    first_runtime = worker_module.sdk_runtime(settings)
    assert first_runtime is not None
    taken = socket.socket()
    taken.bind(("127.0.0.1", settings.worker_port))
    taken.listen()
    try:
        with caplog.at_level(logging.WARNING):
            assert worker_module.sdk_runtime(settings) is None
            state = worker_http.WorkerState(None, None, None)  # type: ignore[arg-type]  # never asked
            assert await worker_module._serve(state, settings) is None
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("SDK's metrics stay off" in w for w in warnings)
        assert any(f"port stays off: 127.0.0.1:{settings.worker_port}" in w for w in warnings)
    finally:
        taken.close()
