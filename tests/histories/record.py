"""Record the histories the replay test guards: `python -m tests.histories.record`.

Run it only when adding a new history on purpose (say, after a patched workflow change): the
stored files are what older, still-running workflows look like to the current code.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cli.exit import hard_exit
from domain.gate_review import GateDecisionInput, InvitationResponse, OpenReviewInput
from domain.policy import GatePolicy
from domain.project import Decision, HandoffAcceptInput, ResumeInput, TerminateInput, VerifyConditionsInput
from tests.support import (
    PM,
    decide_gate,
    embedded_stack,
    gate_handle,
    pass_gate,
    proposal,
    review_for,
    review_round,
    run_histories,
    start_project,
    wait_for_handoffs,
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
            for ministry in full.public_use_ministries:
                await handle.execute_update(
                    ProjectWorkflow.accept_handoff, HandoffAcceptInput(ministry=ministry, accepted_by="liaison")
                )
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
            for h in (handle, kh, th, mh):
                assert h.first_execution_run_id is not None
                for n, history in enumerate(await run_histories(client, h.id, h.first_execution_run_id), 1):
                    path = HERE / f"{h.id}-run{n}.json"
                    path.write_text(history.to_json())
                    print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "v1"))
    hard_exit(0)
