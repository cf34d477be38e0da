"""Record the histories the replay test guards: `python -m tests.histories.record`.

Run it only when adding a new history on purpose (say, after a patched workflow change): the
stored files are what older, still-running workflows look like to the current code.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError

from cli.exit import hard_exit
from domain.gate_review import GateDecisionInput, InvitationResponse, OpenReviewInput
from domain.handoff import (
    DemoHandoffInput,
    HandoffAnswer,
    HandoffBrief,
    HandoffKind,
    RerouteInput,
    handoff_id,
    handoff_workflow_id,
)
from domain.policy import GatePolicy
from domain.programme import ALLOCATIONS, PROGRAMME_CODE
from domain.project import (
    Decision,
    Phase,
    ProgressReportInput,
    ReportReviewInput,
    ResumeInput,
    TerminateInput,
    TrancheSignature,
    VerifyConditionsInput,
    WithdrawInput,
)
from domain.roles import Role
from storage import ledger
from storage.models import User
from storage.projects import insert_project
from storage.seed import add_user
from tests.support import (
    PM,
    accept_handoffs,
    answer_handoff,
    decide_gate,
    embedded_stack,
    gate_handle,
    handoff_offered,
    pass_gate,
    proposal,
    review_for,
    review_round,
    run_histories,
    start_project,
    wait_for_handoffs,
    wait_until,
)
from worker import build_worker
from workflows.gate_review import GateReviewWorkflow
from workflows.project import ProjectWorkflow

HERE = Path(__file__).resolve().parent


async def record(tag: str) -> None:
    async with embedded_stack() as (client, sm):
        async with build_worker(client, "record", sm):
            # A full life: four gates (four runs), two hand-offs.
            full = proposal(project_id=f"HIST-{tag}-full")
            handle = await start_project(client, "record", full, seconds_per_day=0.0005)
            for gate_no in range(1, 5):
                await pass_gate(client, full, gate_no)
            await wait_for_handoffs(handle)
            await accept_handoffs(client, full)  # v5 on: hand-off workflows (before: accept_handoff)
            await handle.result()
            # A kill against the panel, with a justification, at gate 2.
            kill = proposal(project_id=f"HIST-{tag}-kill")
            kh = await start_project(client, "record", kill)
            await pass_gate(client, kill, 1)
            await pass_gate(client, kill, 2, Decision.KILL, justification="Market overtook the need")
            await kh.result()
            # A terminate mid-gate with one review in.
            term = proposal(project_id=f"HIST-{tag}-terminate")
            th = await start_project(client, "record", term)
            gate = await gate_handle(client, term, 1)
            await gate.execute_update(GateReviewWorkflow.open_review, OpenReviewInput(opened_by=PM))
            await gate.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer="rev.ito", accept=True))
            await gate.execute_update(GateReviewWorkflow.submit_review, review_for(term, 1, "rev.ito"))
            await th.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Withdrawn"))
            await th.result()
            # Hold then resume, recycle, conditional go verified, then a kill.
            mixed = proposal(project_id=f"HIST-{tag}-mixed", policy=GatePolicy(max_hold_days=20_000))
            mh = await start_project(client, "record", mixed, seconds_per_day=0.0005)
            latest = client.get_workflow_handle(mh.id)
            await pass_gate(client, mixed, 1, Decision.HOLD)
            await latest.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
            gate = await review_round(client, mixed, 1)
            await decide_gate(
                client,
                mixed,
                gate,
                GateDecisionInput(decided_by=PM, decision=Decision.RECYCLE, recycle_days=30, recycle_budget=1_000_000),
            )
            gate = await review_round(client, mixed, 1)
            await decide_gate(
                client,
                mixed,
                gate,
                GateDecisionInput(
                    decided_by=PM,
                    decision=Decision.CONDITIONAL_GO,
                    conditions=["Replicate the result"],
                    conditions_due_days=100,
                ),
            )
            await latest.execute_update(ProjectWorkflow.verify_conditions, VerifyConditionsInput(requested_by=PM))
            await pass_gate(client, mixed, 2, Decision.KILL, justification="Overtaken by a foreign product")
            await mh.result()
            for n in (1, 2):
                for r in (1, 2, 3) if n == 1 else (1,):
                    child = client.get_workflow_handle(f"project-HIST-{tag}-mixed-gate-{n}-r{r}")
                    history = await child.fetch_history()
                    path = HERE / f"{child.id}.json"
                    path.write_text(history.to_json())
                    print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")
            money = await record_money(client, sm, tag)
            ends, children = await record_ends(client, sm, tag)
            for wid in children:
                history = await client.get_workflow_handle(wid).fetch_history()
                path = HERE / f"{wid}.json"
                path.write_text(history.to_json())
                print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")
            for h in (handle, kh, th, mh, *money, *ends):
                assert h.first_execution_run_id is not None
                for n, history in enumerate(await run_histories(client, h.id, h.first_execution_run_id), 1):
                    path = HERE / f"{h.id}-run{n}.json"
                    path.write_text(history.to_json())
                    print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")


async def record_money(client: Client, sm: async_sessionmaker[AsyncSession], tag: str) -> list[Any]:
    """From v4: four eyes and progress reports on tranches, and a project that waits for funds."""
    b = 1_000_000_000
    stage = {
        "name": "Basic research",
        "trl_in": 1,
        "trl_out": 3,
        "duration_days": 800,
        "budget": 3 * b,
        "tranches": [{"offset_days": d, "amount": b} for d in (0, 365, 730)],
    }
    p = proposal(
        project_id=f"HIST-{tag}-money",
        start_trl=1,
        target_trl=3,
        total_budget=3 * b,
        stages=[stage],
        performer="perf.aoki",
        start_date="2026-10-01",
    )
    h = await start_project(client, "record", p, seconds_per_day=0.02, four_eyes_threshold=b - 1, progress_reports=True)

    async def sign(tranche: int) -> None:
        for action, signer in (("request", "fin.suzuki"), ("approve", "fin.yamada")):
            await h.execute_update(
                ProjectWorkflow.sign_tranche,
                TrancheSignature(stage_no=1, tranche_no=tranche, action=action, signer=signer),  # type: ignore[arg-type]
            )

    async def file_reports_until_gate() -> None:
        """Answer each overdue report as the workflow asks for it; FY2027's is returned once."""
        returned = False
        while True:
            snap = await wait_until(
                h,
                lambda s: s.open_gate == 1 or "progress report is overdue" in s.waiting_for,
                "a report or the gate",
                120,
            )
            if snap.open_gate == 1:
                return
            fy = int(snap.waiting_for.split(" FY", 1)[1][:4])
            if snap.money is not None and snap.money.reports.get(fy) == "accepted":
                await asyncio.sleep(0.05)  # accepted; the workflow has not woken up yet
                continue
            reviews = [(False, "Add the test data"), (True, "")] if fy == 2027 and not returned else [(True, "")]
            returned = returned or fy == 2027
            for accept, note in reviews:
                await h.execute_update(
                    ProjectWorkflow.submit_report,
                    ProgressReportInput(fiscal_year=fy, summary=f"FY{fy} work as planned", submitted_by="perf.aoki"),
                )
                await h.execute_update(
                    ProjectWorkflow.review_report,
                    ReportReviewInput(fiscal_year=fy, accept=accept, note=note, reviewed_by=PM),
                )

    await wait_until(h, lambda s: "four-eyes" in s.waiting_for, "tranche 1 due", 60)
    for tranche in (1, 2, 3):
        await sign(tranche)
    await file_reports_until_gate()
    await h.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Recorded"))
    await h.result()

    # Waiting for funds: METI has 1 yen left; a resume tries again, then a stop.
    hog = proposal(project_id=f"HIST-{tag}-hog", funding_ministry="METI")
    async with sm.begin() as session:
        await insert_project(session, PROGRAMME_CODE, "hog", hog)
        await ledger.reserve(
            session,
            programme_code=PROGRAMME_CODE,
            project_id=f"HIST-{tag}-hog",
            stage_no=1,
            ministry="METI",
            amount=ALLOCATIONS["METI"] - 1,
        )
    short = proposal(project_id=f"HIST-{tag}-funds", funding_ministry="METI")
    fh = await start_project(client, "record", short, seconds_per_day=0.0)
    await wait_until(fh, lambda s: s.on_hold, "waiting for funds")
    await fh.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
    await wait_until(fh, lambda s: s.on_hold, "waiting for funds again")
    await fh.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="No money this year"))
    await fh.result()
    return [h, fh]


async def record_ends(client: Client, sm: async_sessionmaker[AsyncSession], tag: str) -> tuple[list[Any], list[str]]:
    """From v5: hand-offs as workflows (demonstration at TRL 7, a decline re-routed, an accept),
    a performer's withdrawal, and a Conditional Go whose missed date stops the project."""
    async with sm.begin() as session:
        if await session.get(User, "liaison.npa") is None:
            await add_user(session, "liaison.npa", "NPA liaison", "x" * 12, [Role.MINISTRY], "NPA")
    tiny = {"duration_days": 10, "budget": 100_000_000, "tranches": [{"offset_days": 0, "amount": 100_000_000}]}
    two = {
        "start_trl": 6,
        "target_trl": 9,
        "total_budget": 200_000_000,
        "stages": [
            {"name": "Demonstration", "trl_in": 6, "trl_out": 7, **tiny},
            {"name": "Implementation", "trl_in": 7, "trl_out": 9, **tiny},
        ],
        "performer": "perf.aoki",
    }
    p = proposal(project_id=f"HIST-{tag}-handoffs", **two)
    h = await start_project(client, "record", p, seconds_per_day=0.01)
    await pass_gate(client, p, 1)
    await h.execute_update(ProjectWorkflow.start_demo_handoff, DemoHandoffInput(ministry="MOD", requested_by=PM))
    await handoff_offered(client, f"HIST-{tag}-handoffs", "MOD", HandoffKind.DEMONSTRATION)
    await answer_handoff(client, f"HIST-{tag}-handoffs", "MOD", kind=HandoffKind.DEMONSTRATION)
    gate = await review_round(client, p, 2)
    brief = HandoffBrief(results_summary="Recorded result", deliverables=["Prototype"], ip_terms="Public use")
    await decide_gate(client, p, gate, GateDecisionInput(decided_by=PM, decision=Decision.GO, handoff=brief))
    pid = f"HIST-{tag}-handoffs"
    for m in ("MOD", "MLIT"):
        await handoff_offered(client, pid, m)
    await answer_handoff(client, pid, "MOD")
    no = HandoffAnswer(accept=False, answered_by="liaison.mlit", reason="Not our remit")
    await answer_handoff(client, pid, "MLIT", no)
    await h.execute_update(
        ProjectWorkflow.reroute_handoff,
        RerouteInput(handoff_id=handoff_id(pid, "MLIT"), to_ministry="NPA", requested_by=PM),
    )
    await handoff_offered(client, pid, "NPA")
    yes = HandoffAnswer(accept=True, answered_by="liaison.npa", receiving_programme="NPA coastal unit")
    await answer_handoff(client, pid, "NPA", yes)
    await h.result()

    w = proposal(project_id=f"HIST-{tag}-withdraw", **two)
    wh = await start_project(client, "record", w, seconds_per_day=0.01)
    await wait_until(wh, lambda s: s.phase == Phase.STAGE, "stage")
    await wh.execute_update(ProjectWorkflow.withdraw, WithdrawInput(requested_by="perf.aoki", reason="Recorded"))
    await wh.result()

    c = proposal(project_id=f"HIST-{tag}-missed", policy=GatePolicy(conditions_missed="stop"), **two)
    ch = await start_project(client, "record", c, seconds_per_day=0.01)
    gate = await review_round(client, c, 1)
    conditional = GateDecisionInput(
        decided_by=PM, decision=Decision.CONDITIONAL_GO, conditions=["File the export review"], conditions_due_days=3
    )
    await decide_gate(client, c, gate, conditional)
    await ch.result()
    children = [
        handoff_workflow_id(pid, "MOD", HandoffKind.DEMONSTRATION),
        *(handoff_workflow_id(pid, m, HandoffKind.FINAL) for m in ("MOD", "MLIT", "NPA")),
    ]
    return [h, wh, ch], children


async def record_overdue(tag: str) -> None:
    """A hand-off that passes its deadline unanswered, escalates and is re-routed (the
    `tell-project-before-escalating` patch: recorded once before it and once after)."""
    async with embedded_stack() as (client, sm):
        async with build_worker(client, "record", sm):
            async with sm.begin() as session:
                await add_user(session, "liaison.npa", "NPA liaison", "x" * 12, [Role.MINISTRY], "NPA")
            tiny = {"duration_days": 10, "budget": 100_000_000, "tranches": [{"offset_days": 0, "amount": 100_000_000}]}
            p = proposal(
                project_id=f"HIST-{tag}",
                start_trl=7,
                target_trl=9,
                total_budget=100_000_000,
                stages=[{"name": "Implementation", "trl_in": 7, "trl_out": 9, **tiny}],
                public_use_ministries=["MLIT"],
                policy=GatePolicy.model_validate({"handoff": {"deadline_days": 30, "reminder_days": 10}}),
            )
            h = await start_project(client, "record", p, seconds_per_day=0.05)
            await pass_gate(client, p, 1)
            await handoff_offered(client, f"HIST-{tag}", "MLIT")
            child = client.get_workflow_handle(handoff_workflow_id(f"HIST-{tag}", "MLIT", HandoffKind.FINAL))
            for _ in range(600):
                snap = await child.query("snapshot")
                if snap["escalated"]:
                    break
                await asyncio.sleep(0.05)
            for _ in range(100):  # the project hears of it (after the notice, before the patch)
                try:
                    await h.execute_update(
                        ProjectWorkflow.reroute_handoff,
                        RerouteInput(handoff_id=handoff_id(f"HIST-{tag}", "MLIT"), to_ministry="NPA", requested_by=PM),
                    )
                    break
                except WorkflowUpdateFailedError:
                    await asyncio.sleep(0.05)
            await handoff_offered(client, f"HIST-{tag}", "NPA")
            yes = HandoffAnswer(accept=True, answered_by="liaison.npa", receiving_programme="NPA coastal unit")
            await answer_handoff(client, f"HIST-{tag}", "NPA", yes)
            await h.result()
            for wid in (h.id, child.id):
                history = await client.get_workflow_handle(wid).fetch_history()
                path = HERE / f"{wid}.json"
                path.write_text(history.to_json())
                print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")


if __name__ == "__main__":
    tag = sys.argv[1] if len(sys.argv) > 1 else "v1"
    asyncio.run(record_overdue(tag) if tag.startswith("overdue") else record(tag))
    hard_exit(0)
