"""Projects: the list, the detail view, a stop, and the closed-out list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.schemas.common import Orm
from api.schemas.gates import GateRequirementsOut
from api.schemas.handoffs import HandoffOut
from domain.bounds import LongText
from domain.project import ProjectSnapshot

__all__ = [
    "ClosedOutOut",
    "DecisionOut",
    "GateOut",
    "ProjectDetail",
    "ProjectOut",
    "ReservationOut",
    "StageOut",
    "TerminateIn",
    "TrancheOut",
]


class StageOut(Orm):
    stage_no: int
    name: str
    trl_in: int
    trl_out: int
    duration_days: int
    budget: int
    status: str


class GateOut(Orm):
    gate_no: int
    round: int
    status: str
    recommendation: dict[str, Any] | None
    opened_at: datetime
    due_at: datetime | None
    workflow_id: str | None
    requirements: GateRequirementsOut | None = Field(
        None, validation_alias="definition", description="What the gate asks of the evidence and the reviewers."
    )


class DecisionOut(Orm):
    gate_no: int
    decision: str
    decided_by: str
    justification: str
    decided_at: datetime


class TrancheOut(Orm):
    stage_no: int
    tranche_no: int
    amount: int
    due_at: datetime
    paid_at: datetime


class ReservationOut(Orm):
    stage_no: int
    ministry: str
    amount: int
    paid: int
    released: int
    status: str


class ProjectOut(Orm):
    id: str
    workflow_id: str
    title: str
    organisation: str
    programme_manager: str
    funding_ministry: str
    classification: str
    start_trl: int
    target_trl: int
    current_trl: int
    stage_no: int
    status: str
    total_budget: int
    stop_reason: str | None
    created_at: datetime
    public_use_achieved: bool | None = Field(
        None, description="Set when the project completes: did any ministry accept the result for public use?"
    )
    vision_id: int | None = Field(
        None, description="The registered research vision (GET /visions/{id}); None: text only."
    )
    area_id: int | None = Field(None, description="The registered technology area (GET /areas/{id}), if any.")


class ProjectDetail(ProjectOut):
    research_vision: str
    reviewers: list[str]
    public_use_ministries: list[str]
    stages: list[StageOut]
    gates: list[GateOut]
    decisions: list[DecisionOut]
    tranches: list[TrancheOut]
    reservations: list[ReservationOut]
    handoffs: list[HandoffOut]
    documents: list[str]
    live: ProjectSnapshot | None = Field(None, description="The workflow's own view, when it answers.")


class TerminateIn(BaseModel):
    reason: Annotated[LongText, Field(min_length=3, max_length=2000)]
    lessons: Annotated[
        LongText, Field(max_length=10000, description="Lessons learned, kept in the close-out report and searchable.")
    ] = ""


class ClosedOutOut(BaseModel):
    """A stopped project and what it leaves behind for the programme."""

    project_id: str
    title: str
    organisation: str
    funding_ministry: str
    programme_manager: str
    reason: str
    trl_reached: int
    start_trl: int
    target_trl: int
    paid: int
    released: int
    lessons: str
    closeout_document_id: str | None
    closed_at: datetime | None
