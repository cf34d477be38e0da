"""What each gate asks: must-meet criteria (pass/fail) and weighted should-meet criteria (1..5)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from domain.proposal import StagePlan
from domain.trl import MAX_TRL, NASA_EXIT_CRITERIA, NASA_TRL

SCORE_MIN = 1
SCORE_MAX = 5


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    text: str
    weight: int = 1


class GateDefinition(BaseModel):
    model_config = ConfigDict(frozen=True)

    gate_no: int
    stage_name: str
    exit_trl: int
    question: str
    must_meet: tuple[Criterion, ...]
    should_meet: tuple[Criterion, ...]
    deliverables: tuple[str, ...] = ()  # what the evidence package must contain, by name
    go_threshold: float = 3.0  # weighted mean score at or above which the panel recommends Go


def gate_for_stage(gate_no: int, stage: StagePlan) -> GateDefinition:
    """The default gate at the end of `stage`: exit criteria follow NASA NPR 7123.1 for its TRL."""
    trl = stage.trl_out
    return GateDefinition(
        gate_no=gate_no,
        stage_name=stage.name,
        exit_trl=trl,
        question=f"TRL {trl} reached: {NASA_TRL[trl]}?",
        deliverables=(
            "Stage report",
            f"TRL {trl} test evidence",
            "Hand-off readiness statement" if trl == MAX_TRL else "Next-stage plan",
        ),
        must_meet=(
            Criterion(key="trl_exit_evidence", text=NASA_EXIT_CRITERIA[trl]),
            Criterion(
                key="protection_measures",
                text="Protection measures (保全措置) for shared sensitive information are in place",
            ),
        ),
        should_meet=(
            Criterion(key="technical_merit", text="Technical merit of the results", weight=3),
            Criterion(key="national_need", text="Fit to the research vision's national need", weight=2),
            Criterion(key="next_stage_plan", text="Feasibility of the next stage's plan", weight=2),
            Criterion(key="public_use", text="Potential for public use by ministries", weight=2),
            Criterion(key="team", text="Capability of the performing team", weight=1),
        ),
    )
