"""After the deadline burst: was every review recorded exactly once? Asked of the workflows (each
round's panel) and of the database (review rows, review events, audit entries)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from bench.burst_setup import Submission
from domain.gate_review import GateEventKind, GateView
from storage.models import AuditEntry, GateEvent, Review
from tests.support import PM
from workflows.gate_review import GateReviewWorkflow, gate_workflow_id


@dataclass
class Tally:
    """Per source: reviews expected and not found (lost), found more than once (duplicated)."""

    lost: dict[str, int] = field(default_factory=dict)
    duplicated: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # rounds whose query failed (and why)

    def add(self, source: str, expected: set[str], found: Counter[str]) -> None:
        self.lost[source] = self.lost.get(source, 0) + len(expected - set(found))
        self.duplicated[source] = self.duplicated.get(source, 0) + sum(n - 1 for n in found.values() if n > 1)

    @property
    def clean(self) -> bool:
        return not any(self.lost.values()) and not any(self.duplicated.values()) and not self.unreadable


async def _in_workflows(client: Client, rounds: list[list[Submission]], tally: Tally) -> None:
    gate = asyncio.Semaphore(20)

    async def one(panel: list[Submission]) -> None:
        async with gate:
            handle = client.get_workflow_handle(gate_workflow_id(panel[0].project_id, 1, 1))
            try:
                view: GateView = await handle.query(GateReviewWorkflow.view, PM, rpc_timeout=timedelta(seconds=10))
            except RPCError as err:  # e.g. its workflow task failing: said, and the database still checked
                tally.unreadable.append(f"{handle.id}: {err}")
                return
        tally.add("workflow panels", {s.reviewer for s in panel}, Counter(r.reviewer for r in view.reviews))

    await asyncio.gather(*(one(panel) for panel in rounds))


async def _in_database(
    sessionmaker: async_sessionmaker[AsyncSession], rounds: list[list[Submission]], tally: Tally
) -> None:
    tasks = {s.task_id for panel in rounds for s in panel}
    projects = {panel[0].project_id for panel in rounds}
    async with sessionmaker() as s:
        rows = (await s.execute(select(Review.task_id, Review.version).where(Review.task_id.in_(tasks)))).all()
        # A review stored twice is one row at version 2 (the write treats the second as an amendment).
        tally.add("review rows", tasks, Counter({task: version for task, version in rows}))
        events = (
            await s.execute(
                select(GateEvent.project_id, GateEvent.actor).where(
                    GateEvent.kind == GateEventKind.REVIEW.value, GateEvent.project_id.in_(projects)
                )
            )
        ).all()
        expected = {f"{sub.project_id}/{sub.reviewer}" for panel in rounds for sub in panel}
        tally.add("review events", expected, Counter(f"{p}/{a}" for p, a in events))
        audited = (
            await s.execute(
                select(AuditEntry.target, func.count())
                .where(AuditEntry.action == "review", AuditEntry.outcome == "ok")
                .group_by(AuditEntry.target)
            )
        ).all()
        found = Counter(
            {target.removeprefix("task:"): n for target, n in audited if target.removeprefix("task:") in tasks}
        )
        tally.add("audit entries", tasks, found)


async def verify(
    client: Client, sessionmaker: async_sessionmaker[AsyncSession], rounds: list[list[Submission]]
) -> Tally:
    tally = Tally()
    await _in_workflows(client, rounds, tally)
    await _in_database(sessionmaker, rounds, tally)
    return tally
