"""The deadline burst's portfolio: reviewer users, projects whose first gate round is open for
review, every invitation accepted through the API (bench/burst.py times none of this)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.gate_reviews import round_task_id
from api.security import create_access_token
from domain.gate_review import TaskStatus
from domain.policy import GatePolicy
from domain.proposal import Proposal, TranchePlan, default_stage_plan
from domain.roles import Role
from storage.models import ReviewTask, User
from tests.support import CHEAP_HASHES, proposal, review_for, start_project

BUDGET = 100_000_000  # small, so thousands of projects fit in the fund
# The review stays open far beyond the run (no reminder, no escalation fires in it): the burst
# is the reviewers' last minute before a deadline that has not passed yet.
POLICY = GatePolicy(require_evidence=False, review_days=365, reminder_days_before=[])


@dataclass(frozen=True)
class Submission:
    """One reviewer's review of one round, as the API takes it."""

    task_id: str
    reviewer: str
    project_id: str
    body: dict[str, object]


def reviewer_name(n: int) -> str:
    return f"rev.burst{n:05d}"


async def add_reviewers(sessionmaker: async_sessionmaker[AsyncSession], count: int) -> None:
    password_hash = CHEAP_HASHES.hash("bench")  # nobody signs in: the bench mints their tokens
    async with sessionmaker.begin() as s:
        await s.execute(
            insert(User),
            [
                {
                    "username": reviewer_name(n),
                    "full_name": f"Burst Reviewer {n}",
                    "password_hash": password_hash,
                    "roles": [Role.REVIEWER.value],
                    "email": f"{reviewer_name(n)}@example.test",
                }
                for n in range(count)
            ],
        )


def token(secret: str, username: str) -> str:
    return create_access_token(secret, username, [Role.REVIEWER.value], timedelta(hours=8), epoch=0)


def burst_proposal(first_reviewer: int, panel: int) -> Proposal:
    """A project whose first stage lasts one day (its one tranche on day 0) and whose gate opens
    its review without waiting for evidence."""
    plan = default_stage_plan(1, 9, BUDGET)
    first = plan[0]
    plan[0] = first.model_copy(
        update={"duration_days": 1, "tranches": [TranchePlan(offset_days=0, amount=first.budget)]}
    )
    reviewers = [reviewer_name(first_reviewer + k) for k in range(panel)]
    return proposal(total_budget=BUDGET, stages=plan, policy=POLICY, reviewers=reviewers)


async def start_rounds(
    client: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: str,
    count: int,
    panel: int,
    seconds_per_day: float,
) -> list[list[Submission]]:
    """Start `count` projects, at most ten on their way to the first gate at a time (hundreds at
    once time out their first workflow tasks on a loaded worker: each retried, none finishing);
    each round's submissions, its panel's reviews."""
    proposals = [burst_proposal(n * panel, panel) for n in range(count)]
    gate = asyncio.Semaphore(10)

    async def start(p: Proposal) -> None:
        assert p.project_id is not None
        async with gate:
            await start_project(client, queue, p, seconds_per_day=seconds_per_day)
            await wait_for_tasks(sessionmaker, panel, TaskStatus.INVITED, 300 + seconds_per_day, p.project_id)

    await asyncio.gather(*(start(p) for p in proposals))
    rounds = []
    for p in proposals:
        assert p.project_id is not None
        rounds.append(
            [
                Submission(
                    task_id=round_task_id(p.project_id, 1, 1, r),
                    reviewer=r,
                    project_id=p.project_id,
                    body=review_for(p, 1, r).model_dump(mode="json", include={"must_meet", "scores", "comment"}),
                )
                for r in p.reviewers
            ]
        )
    return rounds


async def wait_for_tasks(
    sessionmaker: async_sessionmaker[AsyncSession], expected: int, status: TaskStatus, timeout: float, project: str
) -> None:
    """Until the project has `expected` review tasks with `status` in the database."""
    deadline = time.monotonic() + timeout
    query = select(func.count()).select_from(ReviewTask).where(ReviewTask.project_id == project)
    while True:
        async with sessionmaker() as s:
            found = await s.scalar(query.where(ReviewTask.status == status))
        if found == expected:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{project}: {found} of {expected} review tasks {status.value} after {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def accept_all(http: httpx.AsyncClient, secret: str, submissions: list[Submission]) -> None:
    """Every reviewer accepts the invitation (no conflict) through the API, eight at a time."""
    gate = asyncio.Semaphore(8)

    async def accept(s: Submission) -> None:
        async with gate:
            r = await http.post(
                f"/tasks/{s.task_id}/respond",
                json={"accept": True, "conflict_of_interest": False},
                headers={"Authorization": f"Bearer {token(secret, s.reviewer)}"},
                timeout=120,  # setup on a loaded machine: slow, but never sent twice (a twin is a 409)
            )
            if r.status_code != 200:
                raise RuntimeError(f"accepting {s.task_id}: {r.status_code} {r.text[:200]}")

    await asyncio.gather(*(accept(s) for s in submissions))
