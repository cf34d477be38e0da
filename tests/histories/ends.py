"""The recorded paths that end a project other than by completing its stages in turn: the
hand-offs (a demonstration, a decline re-routed, an overdue one) and every stop."""

from __future__ import annotations

from typing import Any

from domain.gate_review import (
    InvitationResponse,
    OpenReviewInput,
)
from domain.handoff import (
    DemoHandoffInput,
    HandoffAnswer,
    HandoffBrief,
    HandoffKind,
    HandoffSnapshot,
    RerouteInput,
    handoff_id,
    handoff_workflow_id,
)
from domain.project import (
    ConcludeHandoffsInput,
    Decision,
    WithdrawInput,
)
from tests.histories.drive import (
    PERFORMER,
    TINY,
    Stack,
    accepted,
    decide_round,
    decision,
    eventually,
    in_stage,
    one_stage,
    pid,
    project,
    start,
    terminate,
    two_stage,
)
from tests.support import (
    PM,
    answer_handoff,
    gate_handle,
    handoff_offered,
    pass_gate,
    review_for,
)
from workflows.gate_review import GateReviewWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.project import ProjectWorkflow

NPA_YES = HandoffAnswer(accept=True, answered_by="liaison.npa", receiving_programme="NPA coastal unit")
LONG_STAGE = {  # 150 s at STOP_DAY: a stop lands in it, not in its gate, however slow the machine
    "duration_days": 3000,
    "budget": 100_000_000,
    "tranches": [{"offset_days": 0, "amount": 50_000_000}, {"offset_days": 1500, "amount": 50_000_000}],
}
STOP_DAY = 0.05

# ---- hand-offs ---------------------------------------------------------------------------------


async def handoffs(s: Stack) -> None:
    """A demonstration hand-off at TRL 7; after the last Go, MOD accepts, MLIT declines and is
    re-routed to NPA, which declines too; the programme manager concludes."""
    path = "handoffs"
    p = two_stage(path, public_use_ministries=["MOD", "MLIT"], policy={"handoff": {"reroute_days": 3650}})
    await start(s, p)
    h = project(s, p)
    await pass_gate(s.client, p, 1)
    await h.execute_update(ProjectWorkflow.start_demo_handoff, DemoHandoffInput(ministry="MOD", requested_by=PM))
    await handoff_offered(s.client, pid(path), "MOD", HandoffKind.DEMONSTRATION)
    await answer_handoff(s.client, pid(path), "MOD", kind=HandoffKind.DEMONSTRATION)
    brief = HandoffBrief(results_summary="Field-proven result", deliverables=["Prototype"], ip_terms="Public use")
    await decide_round(s, p, 2, decision(Decision.GO, handoff=brief))
    for ministry in ("MOD", "MLIT"):
        await handoff_offered(s.client, pid(path), ministry)
    await answer_handoff(s.client, pid(path), "MOD")
    no = HandoffAnswer(accept=False, answered_by="liaison.mlit", reason="Not our remit")
    await answer_handoff(s.client, pid(path), "MLIT", no)
    await h.execute_update(
        ProjectWorkflow.reroute_handoff,
        RerouteInput(handoff_id=handoff_id(pid(path), "MLIT"), to_ministry="NPA", requested_by=PM),
    )
    await handoff_offered(s.client, pid(path), "NPA")
    npa_no = HandoffAnswer(accept=False, answered_by="liaison.npa", reason="No budget for it this year")
    await answer_handoff(s.client, pid(path), "NPA", npa_no)
    await h.execute_update(
        ProjectWorkflow.conclude_handoffs, ConcludeHandoffsInput(requested_by=PM, note="MOD carries it")
    )
    await h.result()


async def overdue(s: Stack) -> None:
    """Nobody at MLIT answers: two reminders, escalated at the deadline, re-routed to NPA, which accepts."""
    path = "overdue"
    p = one_stage(
        path,
        TINY,
        public_use_ministries=["MLIT"],
        policy={"handoff": {"deadline_days": 30, "reminder_days": 10, "reroute_days": 0}},
    )
    # Reminders two seconds apart: a busy machine's late timer must not run into the deadline.
    await start(s, p, day=0.2)
    await pass_gate(s.client, p, 1)
    await handoff_offered(s.client, pid(path), "MLIT")
    child = s.client.get_workflow_handle(handoff_workflow_id(pid(path), "MLIT", HandoffKind.FINAL))

    async def snapshot() -> HandoffSnapshot:
        snap: HandoffSnapshot = await child.query(HandoffWorkflow.snapshot)
        return snap

    await eventually(snapshot, lambda snap: snap.escalated, "the escalation")
    reroute = RerouteInput(handoff_id=handoff_id(pid(path), "MLIT"), to_ministry="NPA", requested_by=PM)
    # Refused until the project has heard (by signal) that the hand-off is overdue.
    await accepted(lambda: project(s, p).execute_update(ProjectWorkflow.reroute_handoff, reroute), "the re-route")
    await handoff_offered(s.client, pid(path), "NPA")
    await answer_handoff(s.client, pid(path), "NPA", NPA_YES)
    await project(s, p).result()


# ---- the performer's withdrawal and every stop ---------------------------------------------------


async def withdraw(s: Stack) -> None:
    p = two_stage("withdraw", **_long_first_stage())
    await start(s, p, day=STOP_DAY)
    await in_stage(s, p)
    await project(s, p).execute_update(
        ProjectWorkflow.withdraw, WithdrawInput(requested_by=PERFORMER, reason="The consortium dissolved")
    )
    await project(s, p).result()


async def terminate_in_stage(s: Stack) -> None:
    p = two_stage("terminate-stage", **_long_first_stage())
    await start(s, p, day=STOP_DAY)
    await in_stage(s, p)
    await terminate(s, p, "Priorities moved")
    await project(s, p).result()


async def cancel(s: Stack) -> None:
    """A cancel from the Temporal UI or CLI stops the project the same clean way."""
    p = two_stage("cancel", **_long_first_stage())
    await start(s, p, day=STOP_DAY)
    await in_stage(s, p)
    await project(s, p).cancel()
    await project(s, p).result()


async def terminate_in_gate(s: Stack) -> None:
    """One review is in when the project is terminated: the round is cancelled with it."""
    p = two_stage("terminate-gate")
    await start(s, p)
    gate = await gate_handle(s.client, p, 1)
    await gate.execute_update(GateReviewWorkflow.open_review, OpenReviewInput(opened_by=PM))
    await gate.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer="rev.ito", accept=True))
    await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.ito"))
    await terminate(s, p, "Withdrawn from the programme")
    await project(s, p).result()


async def terminate_in_handoff(s: Stack) -> None:
    """Both ministries have been offered the result when the project is terminated: both
    hand-offs are withdrawn."""
    path = "terminate-handoff"
    p = two_stage(path, public_use_ministries=["MOD", "MLIT"])
    await start(s, p)
    await pass_gate(s.client, p, 1)
    await pass_gate(s.client, p, 2)
    for ministry in ("MOD", "MLIT"):
        await handoff_offered(s.client, pid(path), ministry)
    await terminate(s, p, "Export ban on the technology")
    await project(s, p).result()


async def hold_limit(s: Stack) -> None:
    """Held at gate 1 and never resumed: past the five-day limit the project stops."""
    p = two_stage("hold-limit", policy={"max_hold_days": 5})
    await start(s, p)
    await decide_round(s, p, 1, decision(Decision.HOLD, justification="Wait for the budget round"))
    await project(s, p).result()


def _long_first_stage() -> dict[str, Any]:
    return {
        "total_budget": 2 * TINY["budget"],
        "stages": [
            {"name": "Demonstration", "trl_in": 6, "trl_out": 7, **LONG_STAGE},
            {"name": "Implementation", "trl_in": 7, "trl_out": 9, **TINY},
        ],
    }
