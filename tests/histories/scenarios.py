"""The v1 baseline's paths, one project each (`HIST-v1-<path>`), driven only through the calls
people make today: the gate review workflows' Updates, the hand-off workflows' `answer`, and the
project's own Updates. Each drives its project to its end; tests/histories/coverage.py says what
each path's histories must contain. Here: a whole life, each gate decision, the money paths and a
gate round's own calls; tests/histories/ends.py: hand-offs and every stop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from domain import search_attributes as sa
from domain.gate_review import (
    EvidenceInput,
    ExtendDeadlineInput,
    InvitationResponse,
    InviteInput,
    ReassignInput,
)
from domain.programme import PROGRAMME_CODE
from domain.project import (
    Decision,
    ProgressReportInput,
    ProjectSnapshot,
    ReportReviewInput,
    ResumeInput,
    TrancheSignature,
    VerifyConditionsInput,
)
from domain.roles import Role
from gates.definitions import gate_for_stage
from storage import ledger
from storage.models import User
from storage.seed import add_user
from tests.histories.drive import (
    PERFORMER,
    TINY,
    Stack,
    calm,
    decide_round,
    decision,
    eventually,
    finish,
    one_stage,
    pid,
    project,
    start,
    two_stage,
)
from tests.histories.ends import (
    LONG_STAGE,
    cancel,
    handoffs,
    hold_limit,
    overdue,
    terminate_in_gate,
    terminate_in_handoff,
    terminate_in_stage,
    withdraw,
)
from tests.support import (
    PM,
    decide_gate,
    gate_handle,
    proposal,
    review_for,
    wait_until,
)
from workflows.gate_review import GateReviewWorkflow
from workflows.project import ProjectWorkflow

Scenario = Callable[[Stack], Awaitable[None]]
EXTRA_USERS = [  # (username, name, roles, ministry)
    ("liaison.npa", "NPA liaison", [Role.MINISTRY], "NPA"),
    ("rev.abe", "Abe Kaito (Reviewer)", [Role.REVIEWER], None),
    ("rev.ueda", "Ueda Mio (Reviewer)", [Role.REVIEWER], None),
]
STAGE_100 = {**TINY, "duration_days": 100}


async def prepare(s: Stack) -> None:
    """Users the seed has not: a third ministry's liaison and two stand-in reviewers."""
    async with s.sm.begin() as session:
        for username, name, roles, ministry in EXTRA_USERS:
            if await session.get(User, username) is None:
                await add_user(session, username, name, "x" * 12, roles, ministry)


# ---- a whole life, and each gate decision ---------------------------------------------------


async def full(s: Stack) -> None:
    """The default four-stage plan, TRL 1 to 9 over ten years: Go at every gate, both ministries accept."""
    p = proposal(project_id=pid("full"), policy=calm())
    await start(s, p, day=0.01)  # 37 s for the ten years; 3.6 s for each round before its reminder
    await finish(s, p, 1)


async def conditional_go(s: Stack) -> None:
    p = two_stage("conditional-go")
    await start(s, p)
    conditions = ["Independent replication of the key result"]
    await decide_round(s, p, 1, decision(Decision.CONDITIONAL_GO, conditions=conditions, conditions_due_days=3000))
    await project(s, p).execute_update(
        ProjectWorkflow.verify_conditions, VerifyConditionsInput(requested_by=PM, note="Replicated by AIST")
    )
    await finish(s, p, 2)


async def conditions_missed_hold(s: Stack) -> None:
    """The conditions' date passes unverified: Hold (the default policy), resumed, then on to the end."""
    p = two_stage("conditions-missed-hold", second=STAGE_100)  # the date passes in stage 2
    await start(s, p)
    await decide_round(s, p, 1, decision(Decision.CONDITIONAL_GO, conditions=["Export review"], conditions_due_days=5))
    await wait_until(project(s, p), lambda snap: snap.on_hold, "the automatic hold")
    await project(s, p).execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM, note="Review filed late"))
    await finish(s, p, 2)


async def conditions_missed_stop(s: Stack) -> None:
    # The date passes in stage 2, long before its end, so the project stops in it.
    p = two_stage("conditions-missed-stop", second=LONG_STAGE, policy={"conditions_missed": "stop"})
    await start(s, p)
    await decide_round(s, p, 1, decision(Decision.CONDITIONAL_GO, conditions=["Export review"], conditions_due_days=3))
    await project(s, p).result()


async def hold_resume(s: Stack) -> None:
    p = two_stage("hold-resume")
    await start(s, p)
    await decide_round(s, p, 1, decision(Decision.HOLD, justification="Wait for the space programme"))
    await project(s, p).execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
    await finish(s, p, 1)  # round 2 of gate 1, then gate 2


async def recycle(s: Stack) -> None:
    p = two_stage("recycle")
    await start(s, p)
    await decide_round(s, p, 1, decision(Decision.RECYCLE, recycle_days=30, recycle_budget=20_000_000))
    await finish(s, p, 1)  # round 2 of gate 1 after the recycled stage, then gate 2


async def kill(s: Stack) -> None:
    """Against the panel's Go: with a justification and lessons learned."""
    p = two_stage("kill")
    await start(s, p)
    await decide_round(
        s,
        p,
        1,
        decision(Decision.KILL, justification="A foreign product overtook the need", lessons="Scan the market yearly"),
    )
    await project(s, p).result()


# ---- money ------------------------------------------------------------------------------------


async def four_eyes(s: Stack) -> None:
    """Both tranches are above the threshold: each is requested by one officer, approved by another."""
    b = 1_000_000_000
    stage = {
        "duration_days": 10,
        "budget": 2 * b,
        "tranches": [{"offset_days": 0, "amount": b}, {"offset_days": 5, "amount": b}],
    }
    p = one_stage("four-eyes", stage)
    await start(s, p, four_eyes_threshold=b - 1)
    h = project(s, p)
    await wait_until(h, lambda snap: "four-eyes" in snap.waiting_for, "tranche 1 waiting for four eyes")
    for tranche in (1, 2):
        for action, signer in (("request", "fin.suzuki"), ("approve", "fin.yamada")):
            sig = TrancheSignature(stage_no=1, tranche_no=tranche, action=action, signer=signer)
            await h.execute_update(ProjectWorkflow.sign_tranche, sig)
    await finish(s, p, 1)


async def reports(s: Stack) -> None:
    """FY2026 ends on day 31; tranche 2 (day 40) waits for its report: submitted, returned,
    resubmitted, accepted. Whatever report is asked for next (a slow machine lets more fiscal
    years pass) is filed and accepted, until the gate opens."""
    stage = {
        "duration_days": 60,
        "budget": 100_000_000,
        "tranches": [{"offset_days": 0, "amount": 50_000_000}, {"offset_days": 40, "amount": 50_000_000}],
    }
    p = one_stage("reports", stage, start_date="2027-03-01")
    await start(s, p, day=0.02, progress_reports=True)
    h = project(s, p)
    returned = False
    while True:
        snap = await wait_until(h, lambda x: x.open_gate == 1 or _asked_for(x) is not None, "a report or the gate", 120)
        fy = _asked_for(snap)
        if fy is None:
            break
        await h.execute_update(
            ProjectWorkflow.submit_report,
            ProgressReportInput(fiscal_year=fy, summary=f"FY{fy} work as planned", submitted_by=PERFORMER),
        )
        review = ReportReviewInput(fiscal_year=fy, accept=returned, note="" if returned else "Add the test data")
        await h.execute_update(ProjectWorkflow.review_report, review.model_copy(update={"reviewed_by": PM}))
        returned = True
    await finish(s, p, 1)


def _asked_for(snap: ProjectSnapshot) -> int | None:
    """The fiscal year whose report a held tranche waits for, unless it is filed already."""
    if "progress report is overdue" not in snap.waiting_for or snap.money is None:
        return None
    fy = int(snap.waiting_for.split(" FY", 1)[1][:4])
    return fy if snap.money.reports.get(fy) not in ("submitted", "accepted") else None


async def funds_short(s: Stack) -> None:
    """METI's FY2027 ceiling is 0: the project waits on Hold for funds; finance raises the
    ceiling, the programme manager resumes, the stage is reserved and the project goes on.
    Simulated days stand still (0 s each), so the programme date stays in FY2027 however slow
    the machine."""
    p = one_stage("funds-short", TINY, funding_ministry="METI", start_date="2027-04-01")
    await set_ceiling(s, "METI", 2027, 0)
    await start(s, p, day=0.0)
    h = project(s, p)
    await wait_until(h, lambda snap: snap.on_hold and snap.money is not None and snap.money.waiting_for_funds, "hold")
    await set_ceiling(s, "METI", 2027, 10_000_000_000)
    await h.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM, note="Ceiling raised"))
    await finish(s, p, 1)


async def set_ceiling(s: Stack, ministry: str, fiscal_year: int, amount: int) -> None:
    async with s.sm.begin() as session:
        await ledger.set_ceiling(
            session,
            programme_code=PROGRAMME_CODE,
            ministry=ministry,
            fiscal_year=fiscal_year,
            amount=amount,
            actor="fin.suzuki",
        )


# ---- the gate review round's own calls ---------------------------------------------------------


async def panel(s: Stack) -> None:
    """Gate 1 uses every panel call: evidence, a recusal and an invited replacement, a silent
    reviewer reassigned, an amendment, the deadline passing (reminders, escalation) and extended."""
    p = two_stage("panel", policy={"review_days": 10, "reminder_days_before": [7, 3]})
    await start(s, p, day=0.02)
    gate = await gate_handle(s.client, p, 1)
    definition = gate_for_stage(1, p.stage_plan[0])
    await gate.execute_update(
        GateReviewWorkflow.submit_evidence,
        EvidenceInput(
            submitted_by=PM,
            claimed_trl=definition.exit_trl,
            deliverables=list(definition.deliverables),
            criteria_evidence={c.key: f"see report section {i}" for i, c in enumerate(definition.must_meet, 1)},
        ),
    )
    await gate.execute_update(
        GateReviewWorkflow.respond,
        InvitationResponse(
            reviewer="rev.ito", accept=True, conflict_of_interest=True, statement="Former employee of the performer"
        ),
    )
    await gate.execute_update(GateReviewWorkflow.invite, InviteInput(invited_by=PM, reviewer="rev.abe"))
    await gate.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer="rev.kato", accept=True))
    await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.kato", score=3))

    async def overdue_flag() -> bool:
        return (await gate.describe()).typed_search_attributes.get(sa.GATE_OVERDUE) is True

    await eventually(overdue_flag, bool, "the review's escalation")  # set by the escalation itself
    await gate.execute_update(GateReviewWorkflow.extend_deadline, ExtendDeadlineInput(requested_by=PM, extra_days=365))
    await gate.execute_update(
        GateReviewWorkflow.reassign, ReassignInput(requested_by=PM, from_reviewer="rev.mori", to_reviewer="rev.ueda")
    )
    for reviewer in ("rev.abe", "rev.ueda"):
        await gate.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer=reviewer, accept=True))
        await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, reviewer))
    await gate.execute_update(GateReviewWorkflow.amend_review, review_for(p, 1, "rev.kato", score=4))
    await decide_gate(s.client, p, gate, decision(Decision.GO))
    await finish(s, p, 2)


SCENARIOS: dict[str, Scenario] = {
    "full": full,
    "conditional-go": conditional_go,
    "conditions-missed-hold": conditions_missed_hold,
    "conditions-missed-stop": conditions_missed_stop,
    "hold-resume": hold_resume,
    "recycle": recycle,
    "kill": kill,
    "four-eyes": four_eyes,
    "reports": reports,
    "funds-short": funds_short,
    "handoffs": handoffs,
    "overdue": overdue,
    "panel": panel,
    "withdraw": withdraw,
    "terminate-stage": terminate_in_stage,
    "cancel": cancel,
    "terminate-gate": terminate_in_gate,
    "terminate-handoff": terminate_in_handoff,
    "hold-limit": hold_limit,
}
