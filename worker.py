"""The trlgate Temporal worker: runs project workflows and their activities."""

from __future__ import annotations

import asyncio
import compileall
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.fund_check import FundCheckActivities, ensure_fund_check_schedule
from activities.gate_reviews import GateReviewActivities
from activities.gates import GateActivities
from activities.handoffs import HandoffActivities
from activities.money import MoneyActivities
from activities.payments import FileDropSink
from activities.projects import ProjectActivities
from activities.repair import RepairActivities, ensure_repair_schedule
from cli.exit import hard_exit
from config import Settings, get_settings
from connection.client import connect
from domain.programme import PROGRAMME_CODE
from storage.db import make_engine, make_sessionmaker
from telemetry import tracing, worker_http
from telemetry.activity_metrics import ActivityMetrics
from telemetry.logs import configure_logging
from telemetry.senders import CountedMailSender, CountedPaymentSender
from workflows.fund_check import FundCheckWorkflow
from workflows.gate_review import GateReviewWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.project import ProjectWorkflow
from workflows.repair import RepairWorkflow

WORKFLOWS = [ProjectWorkflow, GateReviewWorkflow, HandoffWorkflow, FundCheckWorkflow, RepairWorkflow]

# Imported once per worker process and shared by every workflow run, instead of being imported
# again into each run's sandbox (each continue-as-new, each run evicted from the cache and
# replayed): pure code (models, rules, the programme calendar) that neither reads the clock nor
# does I/O. Re-importing them built every pydantic model anew for each run.
PURE_MODULES = ("domain", "gates")


def activities_for(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Callable[..., Any]]:
    money = MoneyActivities(sessionmaker)
    gates = GateActivities(sessionmaker)
    projects = ProjectActivities(sessionmaker, PROGRAMME_CODE)
    reviews = GateReviewActivities(sessionmaker)
    handoffs = HandoffActivities(sessionmaker)
    fund_check = FundCheckActivities(sessionmaker)
    repair = RepairActivities(sessionmaker)
    return [
        reviews.record_gate_event,
        reviews.notify,
        money.reserve_stage,
        money.pay_tranche,
        money.release_reservations,
        money.record_report,
        money.record_signature,
        gates.record_decision,
        projects.register_project,
        projects.complete_project,
        projects.set_status,
        projects.close_out,
        handoffs.prepare_handoff,
        handoffs.record_answer,
        handoffs.handoff_notice,
        fund_check.run_fund_check,
        repair.find_repairs,
        repair.withdraw_handoffs,
        repair.notify_repaired,
        repair.find_drift,
        repair.record_run,
    ]


def workflow_bytecode() -> bool:
    """Bytecode for the workflow modules, which the sandbox imports afresh for every workflow run
    it starts (each new or continued run, each gate round and hand-off, each run evicted from the
    cache). Without it each import compiles them from source: 0.2 to 0.5 s of CPU a run, most of
    a worker's time with ten thousand open workflows (py-spy), where PYTHONDONTWRITEBYTECODE is
    set (this project's Dockerfile, some hosts). Writes only what is missing or stale; False
    (and a warning) if the directory cannot be written (the image compiles them at build)."""
    package = Path(__file__).resolve().parent / "workflows"
    done = bool(compileall.compile_dir(package, quiet=2))
    if not done:
        logging.warning("the workflow modules' bytecode could not be written under %s: each run compiles them", package)
    return done


def workflow_runner() -> SandboxedWorkflowRunner:
    """The default sandbox with the pure packages passed through. The workflow modules stay in
    it: passed through they would save memory (about 0.5 MB a cached run) but no CPU (measured
    side by side), and the sandbox would no longer stop a clock read or I/O in workflow code."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_MODULES))


def worker_limits(settings: Settings) -> dict[str, int]:
    """The Worker's bounds, from the settings (config.py says why each)."""
    return {
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_concurrent_local_activities": settings.worker_max_concurrent_local_activities,
    }


def build_worker(
    client: Client,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings | None = None,
    **options: Any,
) -> Worker:
    """The worker with the settings' limits (the process's own settings unless given); `options`
    override any Worker argument."""
    interceptors = [ActivityMetrics(), *options.pop("interceptors", [])]
    workflow_bytecode()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities_for(sessionmaker),
        interceptors=interceptors,
        **{"workflow_runner": workflow_runner(), **worker_limits(settings or get_settings()), **options},
    )


def sdk_runtime(settings: Settings) -> Runtime | None:
    """A runtime exporting the SDK's own metrics (temporal_*) on their port; None: port 0, off."""
    if not settings.worker_sdk_metrics_port:
        return None
    address = f"{settings.worker_host}:{settings.worker_sdk_metrics_port}"
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except ValueError as err:  # the port is taken: a second worker on this host (scaling out)
        logging.warning("the SDK's metrics stay off: %s (set TRLGATE_WORKER_SDK_METRICS_PORT)", err)
        return None


async def _serve(state: worker_http.WorkerState, settings: Settings) -> worker_http.Serving | None:
    """The worker's port, or None: port 0, or taken (a second worker on this host runs without)."""
    if not settings.worker_port:
        return None
    try:
        return await worker_http.serve(state, settings.worker_host, settings.worker_port)
    except OSError as err:
        logging.warning(
            "the worker's metrics and health port stays off: %s:%s: %s (set TRLGATE_WORKER_PORT)",
            settings.worker_host,
            settings.worker_port,
            err,
        )
        return None


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Until SIGTERM or SIGINT (or `stop`, for tests), then drains: polling ends, running
    activities get worker_shutdown_seconds to finish."""
    engine = make_engine(settings.resolved_database_url)
    client = await connect(settings, runtime=sdk_runtime(settings))
    sessionmaker = make_sessionmaker(engine, audit_key=settings.resolved_audit_key())
    worker = build_worker(
        client,
        settings.task_queue,
        sessionmaker,
        settings,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
    )
    every = timedelta(hours=settings.fund_check_every_hours)
    if await ensure_fund_check_schedule(client, settings.task_queue, every, PROGRAMME_CODE):
        logging.info("created the fund check schedule (every %s)", every)
    if await ensure_repair_schedule(client, settings.task_queue, timedelta(hours=settings.repair_every_hours)):
        logging.info("created the repair schedule (every %s hours)", settings.repair_every_hours)
    sender = CountedPaymentSender(sessionmaker, FileDropSink(settings.resolved_payments_dir))
    state = worker_http.WorkerState(client, sessionmaker, worker)
    serving = await _serve(state, settings)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    logging.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
    async with worker:
        # The outbox sender lives beside the worker: every replica runs one, and they never
        # deliver the same instruction twice (see activities/payments.py).
        sending = asyncio.create_task(sender.run(settings.sender_interval_seconds, stop))
        # So does the mail sender: replicas claim rows, never the same one (activities/mail_sender.py).
        mailing = asyncio.create_task(CountedMailSender(sessionmaker, settings).run(stop))
        await stop.wait()
        # Not ready from now on, so no new work is routed here while running activities finish.
        state.draining = True
        logging.info("draining: no new tasks; running activities get %ss", settings.worker_shutdown_seconds)
        # Polling ends now, beside the senders' last round (a slow mail server must not eat the
        # graceful window before it starts).
        draining = asyncio.create_task(worker.shutdown())
        await sending
        await mailing
        await draining
    logging.info("worker drained")
    if serving is not None:
        await serving.stop()
    await engine.dispose()


def main() -> None:
    settings = get_settings()
    configure_logging("worker", settings.log_format, settings.log_level)
    tracing.configure_tracing("trlgate-worker", settings.otlp_endpoint)
    asyncio.run(run_worker(settings))
    # The worker has drained; skip interpreter teardown, which can abort in a process that used a
    # temporalio client (temporalio/sdk-python#300) and turn a clean stop into a crash.
    hard_exit(0)


if __name__ == "__main__":
    main()
