"""Gate rounds: evidence, panel changes, the decision, and what a gate requires."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from api.schemas.common import Key
from domain.bounds import Days, LongText, PlainText, YenOrZero
from domain.gate_review import GateView
from domain.handoff import HandoffBrief
from domain.project import Decision
from domain.proposal import Username

__all__ = [
    "CriterionOut",
    "DecisionIn",
    "EvidenceIn",
    "ExtendIn",
    "GateDecisionOut",
    "GateRequirementsOut",
    "GateViewOut",
    "InviteIn",
    "NoteIn",
    "ReassignIn",
]


class CriterionOut(BaseModel):
    key: str
    text: str
    weight: int


class GateRequirementsOut(BaseModel):
    """A gate's definition: the evidence package must name every deliverable and give evidence for
    every must-meet criterion; reviewers judge must-meet (pass/fail) and should-meet (1..5, weighted)."""

    question: str
    exit_trl: int
    deliverables: list[str] = Field(default_factory=list, description="Every one must be in the evidence package.")
    must_meet: list[CriterionOut]
    should_meet: list[CriterionOut]


class GateViewOut(GateView):
    requirements: GateRequirementsOut


class DecisionIn(BaseModel):
    decision: Decision
    justification: Annotated[LongText, Field(max_length=5000)] = ""
    lessons: Annotated[
        LongText, Field(max_length=10000, description="Lessons learned, kept in the close-out report and searchable.")
    ] = ""
    conditions: list[Annotated[PlainText, Field(min_length=3, max_length=500)]] = Field(
        default_factory=list, max_length=50, description="Conditional Go: the conditions to meet."
    )
    conditions_due_days: Days | None = Field(None, description="Conditional Go: days to meet them.")
    recycle_days: Days | None = Field(None, description="Recycle: extra days for the stage.")
    recycle_budget: YenOrZero | None = Field(None, description="Recycle: extra yen for the stage.")
    handoff: HandoffBrief | None = Field(
        None,
        description="The last gate's Go: results summary, deliverables, IP terms and contacts for the hand-off packages.",
    )


class GateDecisionOut(BaseModel):
    gate_no: int
    round: int
    decision: Decision
    status: str
    trl: int
    stage: str | None
    on_hold: bool
    waiting_for: str


class EvidenceIn(BaseModel):
    claimed_trl: Annotated[StrictInt, Field(ge=1, le=9)]
    deliverables: Annotated[
        list[Annotated[PlainText, Field(min_length=1, max_length=500)]], Field(min_length=1, max_length=100)
    ]
    criteria_evidence: Annotated[dict[Key, Annotated[LongText, Field(max_length=20000)]], Field(max_length=50)]


class InviteIn(BaseModel):
    reviewer: Username


class ReassignIn(BaseModel):
    from_reviewer: Username
    to_reviewer: Username


class ExtendIn(BaseModel):
    extra_days: Annotated[StrictInt, Field(gt=0, le=365)]


class NoteIn(BaseModel):
    note: Annotated[LongText, Field(max_length=2000)] = ""
