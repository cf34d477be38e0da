"""A tranche held for a missing progress report, on a server that suggests continuing as new
after a few events: what the `report-wait-continue-as-new` patch is about. Driven by
tests/test_long_waits.py and recorded for the patch registry by
`python -m tests.histories.long_waits --out DIR [--tag v2]` (each run's history saved as
`project-HIST-<tag>-<name>-run<n>.json`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.project import ProgressReportInput, ReportReviewInput, TerminateInput
from domain.proposal import Proposal
from domain.search_attributes import ALL
from storage.models import Notification
from tests.support import (
    CONVERTER,
    PM,
    SERVER_STARTUP,
    assert_eventually,
    embedded_database,
    proposal,
    run_histories,
    start_project,
    venv_binary,
)
from worker import build_worker
from workflows.project import ProjectWorkflow

PERFORMER = "perf.aoki"
# Each reminder is a notice activity and a timer (a dozen events): the server suggests continuing
# as new every few reminders.
SUGGEST_AFTER_EVENTS = 30
DAY = 0.01  # real seconds per programme day: a reminder (every 30 days) every 0.3 s


def held_proposal(name: str) -> Proposal:
    """FY2026 ends on day 182 of a stage begun 2026-10-01; its second tranche (day 200) waits for
    the FY2026 report, which is never filed."""
    return proposal(
        project_id=f"HIST-{name}",
        performer=PERFORMER,
        start_date="2026-10-01",
        stages=[
            {
                "name": "Basic research",
                "trl_in": 1,
                "trl_out": 3,
                "duration_days": 400,
                "budget": 100_000_000,
                "tranches": [{"offset_days": 0, "amount": 50_000_000}, {"offset_days": 200, "amount": 50_000_000}],
            }
        ],
        start_trl=1,
        target_trl=3,
        total_budget=100_000_000,
    )


@asynccontextmanager
async def eager_server() -> AsyncIterator[Client]:
    """A dev server that suggests continuing as new after SUGGEST_AFTER_EVENTS events."""
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=ALL,
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
        dev_server_startup_timeout=SERVER_STARTUP,
    )
    try:
        yield env.client
    finally:
        await env.shutdown()


async def reminders(sm: async_sessionmaker[AsyncSession], project_id: str) -> list[str]:
    async with sm() as s:
        rows = await s.scalars(
            select(Notification.key).where(Notification.project_id == project_id, Notification.kind == "report_overdue")
        )
        return list(rows.all())


async def hold_for_reminders(
    client: Client, queue: str, sm: async_sessionmaker[AsyncSession], p: Proposal, count: int
) -> WorkflowHandle[Any, Any]:
    """Start the project and wait until the performer has been reminded `count` times."""
    assert p.project_id is not None
    handle = await start_project(client, queue, p, seconds_per_day=DAY, progress_reports=True)
    await assert_eventually(
        lambda: reminders(sm, str(p.project_id)), f"{count} reminders", until=lambda r: len(r) >= count, timeout=90
    )
    return handle


async def file_reports_until_paid(handle: WorkflowHandle[Any, Any], tranche_no: int) -> None:
    """The performer files, and the programme manager accepts, whichever report the held tranche
    waits for (the programme clock runs on: more fiscal years may end meanwhile), until it is paid."""
    while True:
        snap = await handle.query(ProjectWorkflow.status)
        if snap.money is not None and tranche_no in snap.money.tranches_paid:
            return
        if "progress report is overdue" in snap.waiting_for:
            fy = int(snap.waiting_for.split(" FY", 1)[1][:4])
            if snap.money is not None and snap.money.reports.get(fy) != "accepted":
                report = ProgressReportInput(fiscal_year=fy, summary=f"FY{fy} filed late", submitted_by=PERFORMER)
                await handle.execute_update(ProjectWorkflow.submit_report, report)
                review = ReportReviewInput(fiscal_year=fy, accept=True, reviewed_by=PM)
                await handle.execute_update(ProjectWorkflow.review_report, review)
                continue
        await asyncio.sleep(0.1)


async def record(out: Path, tag: str, name: str, count: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    p = held_proposal(f"{tag}-{name}")
    async with eager_server() as client, embedded_database() as sm, build_worker(client, "record", sm):
        handle = await hold_for_reminders(client, "record", sm, p, count)
        await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="recorded"))
        await handle.result()
        first = (await client.get_workflow_handle(handle.id, run_id=None).describe()).raw_description
        first_run = first.workflow_execution_info.first_run_id
        written = []
        for n, history in enumerate(await run_histories(client, handle.id, first_run), 1):
            path = out / f"project-HIST-{tag}-{name}-run{n}.json"
            path.write_text(history.to_json())
            written.append(path)
        return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tag", default="v2")
    parser.add_argument("--name", default="report-wait")
    parser.add_argument("--reminders", type=int, default=8)
    args = parser.parse_args()
    for path in asyncio.run(record(args.out, args.tag, args.name, args.reminders)):
        print(path)


if __name__ == "__main__":
    main()
