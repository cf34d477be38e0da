"""The input of a gate 1 review round for a test proposal (shared by the unit and integration tiers)."""

from __future__ import annotations

from domain.gate_review import GateReviewInput
from domain.policy import GatePolicy
from domain.proposal import Proposal
from gates.definitions import gate_for_stage
from tests.support import PM


def gate_one_input(
    p: Proposal, policy: GatePolicy, seconds_per_day: float, panel: list[str] | None = None
) -> GateReviewInput:
    assert p.project_id is not None
    return GateReviewInput(
        project_id=p.project_id,
        gate_no=1,
        round=1,
        definition=gate_for_stage(1, p.stage_plan[0]),
        programme_manager=PM,
        panel=panel or list(p.reviewers),
        policy=policy,
        seconds_per_day=seconds_per_day,
        stage_budget=p.stage_plan[0].budget,
    )
