"""Small drivers the recorded scenarios share, beside those in tests/support.py: plans and
policies that keep timers out of the way unless a scenario wants them, waiting on any workflow's
query, and finishing a project the ordinary way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from domain.gate_review import GateDecisionInput
from domain.project import Decision, Phase, TerminateInput
from domain.proposal import Proposal
from tests.support import (
    PM,
    accept_handoffs,
    decide_gate,
    pass_gate,
    proposal,
    review_round,
    start_project,
    wait_until,
)
from workflows.project import ProjectWorkflow, workflow_id_for

T = TypeVar("T")

BASELINE_TAG = "v1"
# Projects are HIST-<tag>-<path>: the baseline's tag is v1; a patch's new side is recorded under a
# tag of its own (`record --tag`), so its files sit beside the baseline's.
TAG: ContextVar[str] = ContextVar("TAG", default=BASELINE_TAG)
PERFORMER = "perf.aoki"
TINY: dict[str, Any] = {
    "duration_days": 10,
    "budget": 100_000_000,
    "tranches": [{"offset_days": 0, "amount": 100_000_000}],
}
# Reviews due in a year, holds allowed for ten, hand-offs reminded after ten years: at the
# recorder's 0.02 s a day (a review round has 7 s before its first reminder) no reminder,
# escalation or hold limit races the scripted calls, so each path takes the same turns every
# time. Scenarios that want a timer shorten its policy.
CALM_POLICY: dict[str, Any] = {
    "review_days": 365,
    "reminder_days_before": [7],
    "max_hold_days": 3650,
    "handoff": {"deadline_days": 3650, "reminder_days": 3650, "reroute_days": 30},
}
DAY = 0.02  # real seconds per programme day, unless a scenario says otherwise


@dataclass(frozen=True)
class Stack:
    client: Client
    sm: async_sessionmaker[AsyncSession]
    queue: str


def pid(path: str) -> str:
    return f"HIST-{TAG.get()}-{path}"


def calm(policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """CALM_POLICY with a scenario's changes (its hand-off changes merged into the calm ones)."""
    policy = policy or {}
    handoff = {**CALM_POLICY["handoff"], **policy.get("handoff", {})}
    return {**CALM_POLICY, **policy, "handoff": handoff}


def two_stage(
    path: str, *, second: dict[str, Any] = TINY, policy: dict[str, Any] | None = None, **overrides: Any
) -> Proposal:
    """TRL 6 to 7 to 9 in two stages (ten days each, unless `second` says otherwise): TRL 7 after
    gate 1 allows a demonstration hand-off."""
    data: dict[str, Any] = {
        "project_id": pid(path),
        "start_trl": 6,
        "target_trl": 9,
        "total_budget": TINY["budget"] + second["budget"],
        "stages": [
            {"name": "Demonstration", "trl_in": 6, "trl_out": 7, **TINY},
            {"name": "Implementation", "trl_in": 7, "trl_out": 9, **second},
        ],
        "performer": PERFORMER,
        "public_use_ministries": ["MOD"],
        "policy": calm(policy),
    }
    data.update(overrides)
    return proposal(**data)


def one_stage(path: str, stage: dict[str, Any], *, policy: dict[str, Any] | None = None, **overrides: Any) -> Proposal:
    """TRL 7 to 9 in one stage (its budget is the project's)."""
    data: dict[str, Any] = {
        "project_id": pid(path),
        "start_trl": 7,
        "target_trl": 9,
        "total_budget": stage["budget"],
        "stages": [{"name": "Implementation", "trl_in": 7, "trl_out": 9, **stage}],
        "performer": PERFORMER,
        "public_use_ministries": ["MOD"],
        "policy": calm(policy),
    }
    data.update(overrides)
    return proposal(**data)


def project(s: Stack, p: Proposal) -> WorkflowHandle[Any, Any]:
    """The project's current run (Updates and queries follow it across continue-as-new)."""
    assert p.project_id is not None
    return s.client.get_workflow_handle(workflow_id_for(p.project_id))


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str, timeout: float = 60.0) -> T:
    """Read until `ok` holds (for workflows other than a project, which tests.support.wait_until covers)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} never happened; last read {value!r}")
        await asyncio.sleep(0.1)


async def accepted(call: Callable[[], Awaitable[T]], what: str, timeout: float = 60.0) -> T:
    """An Update whose validator refuses until the workflow has heard of something (a signal on
    its way): sent again until it is accepted."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await call()
        except WorkflowUpdateFailedError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{what} was never accepted") from None
            await asyncio.sleep(0.1)


async def finish(s: Stack, p: Proposal, from_gate: int) -> None:
    """Go at every remaining gate, every ministry accepts its hand-off, the project completes."""
    for gate_no in range(from_gate, len(p.stage_plan) + 1):
        await pass_gate(s.client, p, gate_no)
    await accept_handoffs(s.client, p)
    await project(s, p).result()


async def start(s: Stack, p: Proposal, day: float = DAY, **settings: Any) -> None:
    await start_project(s.client, s.queue, p, seconds_per_day=day, **settings)


def decision(kind: Decision, **fields: Any) -> GateDecisionInput:
    return GateDecisionInput(decided_by=PM, decision=kind, **fields)


async def decide_round(s: Stack, p: Proposal, gate_no: int, d: GateDecisionInput) -> None:
    """The panel reviews the gate's open round; the programme manager decides it."""
    gate = await review_round(s.client, p, gate_no)
    await decide_gate(s.client, p, gate, d)


async def terminate(s: Stack, p: Proposal, reason: str) -> None:
    await project(s, p).execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason=reason))


async def in_stage(s: Stack, p: Proposal) -> None:
    await wait_until(project(s, p), lambda snap: snap.phase == Phase.STAGE, "stage under way")
