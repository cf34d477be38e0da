"""The trlgate Temporal worker: runs project workflows and their activities."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.fund_check import FundCheckActivities, ensure_fund_check_schedule
from activities.gate_reviews import GateReviewActivities
from activities.gates import GateActivities
from activities.handoffs import HandoffActivities
from activities.mail_sender import MailSender
from activities.money import MoneyActivities
from activities.payments import FileDropSink, PaymentSender
from activities.projects import ProjectActivities
from activities.repair import RepairActivities, ensure_repair_schedule
from cli.exit import hard_exit
from config import Settings, get_settings
from connection.client import connect
from domain.programme import PROGRAMME_CODE
from storage.db import make_engine, make_sessionmaker
from workflows.fund_check import FundCheckWorkflow
from workflows.gate_review import GateReviewWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.project import ProjectWorkflow
from workflows.repair import RepairWorkflow

WORKFLOWS = [ProjectWorkflow, GateReviewWorkflow, HandoffWorkflow, FundCheckWorkflow, RepairWorkflow]


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


def build_worker(
    client: Client, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession], **options: Any
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities_for(sessionmaker),
        **options,
    )


async def run_worker(settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    client = await connect(settings)
    sessionmaker = make_sessionmaker(engine, audit_key=settings.resolved_audit_key())
    worker = build_worker(client, settings.task_queue, sessionmaker)
    every = timedelta(hours=settings.fund_check_every_hours)
    if await ensure_fund_check_schedule(client, settings.task_queue, every, PROGRAMME_CODE):
        logging.info("created the fund check schedule (every %s)", every)
    if await ensure_repair_schedule(client, settings.task_queue, timedelta(hours=settings.repair_every_hours)):
        logging.info("created the repair schedule (every %s hours)", settings.repair_every_hours)
    sender = PaymentSender(sessionmaker, FileDropSink(settings.resolved_payments_dir))
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
        mailing = asyncio.create_task(MailSender(sessionmaker, settings).run(stop))
        await stop.wait()
        await sending
        await mailing
    await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    asyncio.run(run_worker(get_settings()))
    # The worker has drained; skip interpreter teardown, which can abort in a process that used a
    # temporalio client (temporalio/sdk-python#300) and turn a clean stop into a crash.
    hard_exit(0)


if __name__ == "__main__":
    main()
