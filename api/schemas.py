"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from domain.bounds import Days, FiscalYear, LongText, PlainText, YenOrZero
from domain.gate_review import GateView
from domain.handoff import HandoffBrief
from domain.project import Decision, ProjectSnapshot
from domain.proposal import Username

# A criterion or evidence key, a ministry code: short single-line names.
Key = Annotated[PlainText, Field(min_length=1, max_length=100)]
MinistryCode = Annotated[PlainText, Field(min_length=2, max_length=16)]


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


class UserOut(Orm):
    username: str
    full_name: str
    roles: list[str]
    ministry: str | None


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


class HandoffOut(Orm):
    id: str
    project_id: str
    ministry: str
    kind: str = Field(description="final (public use) or demonstration (early, from TRL 7)")
    status: str = Field(description="pending, accepted, declined, rerouted or cancelled")
    document_id: str
    workflow_id: str | None
    accepted_by: str | None
    decided_by: str | None
    receiving_programme: str
    reason: str
    note: str
    deadline_at: datetime | None
    escalated_at: datetime | None
    rerouted_from: str | None
    rerouted_to: str | None
    created_at: datetime
    resolved_at: datetime | None


class DeclineIn(BaseModel):
    reason: Annotated[LongText, Field(min_length=3, max_length=5000)]


class RerouteIn(BaseModel):
    to_ministry: MinistryCode
    note: Annotated[LongText, Field(max_length=2000)] = ""


class ConcludeIn(BaseModel):
    note: Annotated[LongText, Field(max_length=2000)] = ""


class DemoHandoffIn(BaseModel):
    ministry: MinistryCode
    brief: HandoffBrief = Field(default_factory=HandoffBrief)


class MinistryOut(BaseModel):
    code: str
    name: str
    liaisons: list[str]


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


class TaskOut(Orm):
    id: str
    project_id: str
    gate_no: int
    reviewer: str
    status: str
    created_at: datetime
    closed_at: datetime | None


class TaskDetail(TaskOut):
    project_title: str
    question: str
    must_meet: list[CriterionOut]
    should_meet: list[CriterionOut]


class ReviewIn(BaseModel):
    must_meet: Annotated[dict[Key, StrictBool], Field(max_length=50)]
    # The gate's scorecard judges each score (with the criterion and its scale in the reason).
    scores: Annotated[dict[Key, StrictInt], Field(max_length=50)]
    comment: Annotated[LongText, Field(max_length=5000)] = ""


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


class RespondIn(BaseModel):
    accept: StrictBool
    conflict_of_interest: StrictBool = False
    statement: Annotated[LongText, Field(max_length=2000)] = ""


class NoteIn(BaseModel):
    note: Annotated[LongText, Field(max_length=2000)] = ""


class TerminateIn(BaseModel):
    reason: Annotated[LongText, Field(min_length=3, max_length=2000)]
    lessons: Annotated[
        LongText, Field(max_length=10000, description="Lessons learned, kept in the close-out report and searchable.")
    ] = ""


class AcceptIn(BaseModel):
    receiving_programme: Annotated[PlainText, Field(max_length=500)] = Field(
        default="", description="The programme or use that takes the result on (needed for every hand-off after v1)."
    )
    note: Annotated[LongText, Field(max_length=2000)] = ""


class FiscalYearOut(BaseModel):
    fiscal_year: int = Field(description="FY2026 runs 1 April 2026 - 31 March 2027.")
    ceiling: int | None = Field(description="Most the ministry may commit to this year; null: no ceiling.")
    carried_in: int = Field(description="Unused ceiling carried over from the previous year.")
    reserved: int
    paid: int
    available: int | None = Field(description="ceiling + carried_in - reserved - paid; null: no ceiling.")


class MinistryFundsOut(BaseModel):
    ministry: str
    allocated: int
    reserved: int
    paid: int
    available: int
    fiscal_years: list[FiscalYearOut] = []


class FundOut(BaseModel):
    programme: str
    name: str
    fund_total: int
    allocated: int
    reserved: int
    paid: int
    available: int
    by_ministry: list[MinistryFundsOut]
    invariant_violations: list[str]
    checked_at: datetime | None = None  # when the ledger check behind invariant_violations ran


class HealthOut(BaseModel):
    status: str
    database: str
    temporal: str


class NotificationOut(Orm):
    key: str
    project_id: str
    kind: str
    message: str
    at: datetime


class CeilingIn(BaseModel):
    amount: YenOrZero


class CeilingOut(BaseModel):
    programme: str
    ministry: str
    fiscal_year: int
    amount: int
    set_by: str


class ReversalIn(BaseModel):
    reason: Annotated[LongText, Field(min_length=3, max_length=2000)]


class ReversalOut(BaseModel):
    transaction_id: int
    reverses_id: int
    kind: str
    amount: int
    created: bool


class StatementLineOut(BaseModel):
    transaction_id: int
    business_key: str
    kind: str
    booked_on: date | None
    recorded_at: datetime
    fiscal_years: list[int]
    reserved_change: int
    paid_change: int
    reserved_balance: int
    paid_balance: int
    memo: str
    reverses_id: int | None


class StatementOut(BaseModel):
    project_id: str
    funding_ministry: str
    reserved: int = Field(description="Held for the project and not yet paid.")
    paid: int
    lines: list[StatementLineOut]


class DriftOut(BaseModel):
    project_id: str
    problem: str


class ReconciliationOut(BaseModel):
    checked: int
    drifts: list[DriftOut]


class ReportIn(BaseModel):
    fiscal_year: FiscalYear
    summary: Annotated[LongText, Field(min_length=10, max_length=20000)]


class ReportReviewIn(BaseModel):
    accept: StrictBool
    note: Annotated[LongText, Field(max_length=5000)] = ""


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
