"""Inputs, results and carried state of the project workflow (all pydantic, all sandbox-safe)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, model_validator

from domain.command import Command, Commanded
from domain.files import FileRef
from domain.handoff import HandoffBrief, HandoffRun
from domain.proposal import Proposal


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    HANDOFF = "handoff"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class Phase(StrEnum):
    REGISTERING = "registering"
    STAGE = "stage"
    GATE = "gate"
    HANDOFF = "handoff"
    CLOSING = "closing"
    DONE = "done"


class Decision(StrEnum):
    GO = "go"
    CONDITIONAL_GO = "conditional_go"
    HOLD = "hold"
    RECYCLE = "recycle"
    KILL = "kill"


class ReviewSubmission(Commanded):
    gate_no: Annotated[StrictInt, Field(ge=1)]
    reviewer: str
    must_meet: dict[str, bool] = Field(description="Each must-meet criterion: met (true) or not.")
    scores: dict[str, StrictInt] = Field(description="Each should-meet criterion scored 1..5.")
    comment: Annotated[str, Field(max_length=5000)] = ""


class Recommendation(BaseModel):
    decision: Decision
    weighted_score: float
    failed_must_meet: list[str]
    reviews: int


class DecisionInput(Commanded):
    gate_no: Annotated[StrictInt, Field(ge=1)]
    decision: Decision
    decided_by: str
    justification: Annotated[str, Field(max_length=5000)] = ""


class DecisionRef(BaseModel):
    """A gate decision by gate and round, as the gate review workflow returned it."""

    gate_no: Annotated[StrictInt, Field(ge=1)]
    round: Annotated[StrictInt, Field(ge=1)]

    @property
    def key(self) -> str:
        return f"{self.gate_no}/{self.round}"


class WithdrawInput(Commanded):
    """The performer withdraws from the project (with a reason); it stops the clean way."""

    requested_by: str = ""
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    lessons: Annotated[str, Field(max_length=10000)] = ""


class ConcludeHandoffsInput(Commanded):
    """The programme manager will not re-route what was declined: the project completes now."""

    requested_by: str = ""
    note: Annotated[str, Field(max_length=2000)] = ""


class TerminateInput(Commanded):
    requested_by: str
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    lessons: Annotated[str, Field(max_length=10000)] = ""


class StopResult(BaseModel):
    status: ProjectStatus
    reason: str
    released: int = Field(description="Yen released back to the fund by the stop.")
    closeout_document_id: str


class HandoffAcceptInput(Commanded):
    ministry: str
    accepted_by: str
    note: Annotated[str, Field(max_length=2000)] = ""


class HandoffResult(BaseModel):
    ministry: str
    handoff_id: str
    pending: list[str]
    status: ProjectStatus


class HoldState(BaseModel):
    since: datetime
    reason: str
    resumed_by: str | None = None
    resume_command: Command | None = None  # audited with the status write that ends the hold


class Conditions(BaseModel):
    gate_no: int
    items: list[str]
    due_at: datetime
    verified_by: str | None = None


class StageExtension(BaseModel):
    """A recycle: the stage runs on for `days` with `budget` more, paid as one tranche at its start."""

    part: int
    started_at: datetime
    days: int
    budget: int
    tranche_no: int
    paid: bool = False


class ResumeInput(Commanded):
    requested_by: str
    note: Annotated[str, Field(max_length=2000)] = ""


class VerifyConditionsInput(Commanded):
    requested_by: str
    note: Annotated[str, Field(max_length=2000)] = ""


class ReportState(BaseModel):
    status: str  # submitted|accepted|returned
    submitted_by: str
    reviewed_by: str | None = None
    reminders: int = 0


class TrancheApprovalState(BaseModel):
    requested_by: str
    approved_by: str | None = None


class ProgressReportInput(Commanded):
    fiscal_year: Annotated[StrictInt, Field(ge=2000, le=2100)]
    summary: Annotated[str, Field(min_length=10, max_length=20000)]
    submitted_by: str = ""
    attachments: list[FileRef] = Field(default_factory=list)  # by reference and hash; set by the API


class ReportReviewInput(Commanded):
    fiscal_year: Annotated[StrictInt, Field(ge=2000, le=2100)]
    accept: bool
    note: Annotated[str, Field(max_length=5000)] = ""
    reviewed_by: str = ""


class TrancheSignature(Commanded):
    """Four eyes on a large tranche: `request` by one person, then `approve` by another (finance)."""

    stage_no: Annotated[StrictInt, Field(ge=1)]
    tranche_no: Annotated[StrictInt, Field(ge=1)]
    action: Literal["request", "approve"]
    signer: str = ""


class MoneySnapshot(BaseModel):
    """What the workflow believes about its money (the reconciliation compares it with the ledger)."""

    stage_no: int
    tranches_paid: list[int]
    reports: dict[int, str]
    approvals: dict[str, TrancheApprovalState]
    waiting_for_funds: bool
    programme_date: date | None
    # Day 0 of the programme calendar: with programme_date, which fiscal years' reports are due.
    calendar_start: date | None = None


class MoneyState(BaseModel):
    """The current stage's tranches and what their payment waits for (reports, four eyes, funds)."""

    tranches_paid: list[int] = Field(default_factory=list)
    reports: dict[int, ReportState] = Field(default_factory=dict, description="fiscal year -> report")
    approvals: dict[str, TrancheApprovalState] = Field(
        default_factory=dict, description="'stage/tranche' -> signatures"
    )
    report_reminders: dict[int, int] = Field(default_factory=dict, description="fiscal year -> reminders sent")
    waiting_for_funds: bool = False


class CalendarState(BaseModel):
    """The programme calendar (`start` is the programme date at workflow time `origin`) and the
    current stage's clock (its start, and the time holds paused it)."""

    origin: datetime | None = None
    start: date | None = None
    stage_started_at: datetime | None = None
    paused_seconds: float = 0.0


class GateProgress(BaseModel):
    """Gate reviews as their own workflows (one per round), and what their decisions leave behind."""

    round: int = 1
    workflow_id: str | None = None
    applied: list[str] = Field(default_factory=list, description="gate/round decisions carried out")
    recycles: dict[int, int] = Field(default_factory=dict, description="stage index -> recycles so far")
    extension: StageExtension | None = None
    conditions: Conditions | None = None


class HandoffsState(BaseModel):
    """Hand-off workflows by hand-off id (final ones after the last Go, demonstrations from TRL 7)."""

    runs: dict[str, HandoffRun] = Field(default_factory=dict)
    brief: HandoffBrief | None = None
    public_use_achieved: bool | None = None
    concluded: bool = False  # the PM closed the re-route window early
    conclude_command: Command | None = None  # audited by the write that completes the project


# Where each field of the flat state (before the sub-models) lives now: (sub-model, its name).
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    "tranches_paid": ("money", "tranches_paid"),
    "reports": ("money", "reports"),
    "approvals": ("money", "approvals"),
    "report_reminders": ("money", "report_reminders"),
    "waiting_for_funds": ("money", "waiting_for_funds"),
    "calendar_origin": ("calendar", "origin"),
    "calendar_start": ("calendar", "start"),
    "stage_started_at": ("calendar", "stage_started_at"),
    "paused_seconds": ("calendar", "paused_seconds"),
    "gate_round": ("gate", "round"),
    "gate_workflow_id": ("gate", "workflow_id"),
    "applied": ("gate", "applied"),
    "recycles": ("gate", "recycles"),
    "extension": ("gate", "extension"),
    "conditions": ("gate", "conditions"),
    "handoff_runs": ("handoffs", "runs"),
    "handoff_brief": ("handoffs", "brief"),
    "public_use_achieved": ("handoffs", "public_use_achieved"),
    "handoffs_concluded": ("handoffs", "concluded"),
    "conclude_command": ("handoffs", "conclude_command"),
}


class ProjectState(BaseModel):
    """Everything the workflow must carry across continue-as-new."""

    status: ProjectStatus = ProjectStatus.ACTIVE
    phase: Phase = Phase.REGISTERING
    stage_index: int = 0
    trl: int
    hold: HoldState | None = None
    stop_reason: str | None = None
    stop_result: StopResult | None = None
    lessons: str = ""  # lessons learned, for the close-out report
    stop_command: Command | None = None  # a person's stop, audited by the write that carries it out
    money: MoneyState = Field(default_factory=MoneyState)
    calendar: CalendarState = Field(default_factory=CalendarState)
    gate: GateProgress = Field(default_factory=GateProgress)
    handoffs: HandoffsState = Field(default_factory=HandoffsState)

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, data: Any) -> Any:
        """A run continued as new from an older run carries the flat state: its fields move into
        the sub-models. (The first design's `gate`, a GateState, and `handoffs`, ministry ->
        status, are dropped: no project of that design exists.)"""
        if not isinstance(data, dict) or not (FLAT_FIELDS.keys() & data.keys() or _first_design(data)):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in FLAT_FIELDS:
                part, name = FLAT_FIELDS[key]
                out.setdefault(part, {})[name] = value
            elif key in ("gate", "handoffs"):
                continue  # the first design's, never the sub-models (those come with no flat field)
            else:
                out[key] = value
        return out


def _first_design(data: dict[str, Any]) -> bool:
    gate, handoffs = data.get("gate"), data.get("handoffs")
    return (isinstance(gate, dict) and "gate_no" in gate) or (
        isinstance(handoffs, dict) and any(isinstance(v, str) for v in handoffs.values())
    )


class ProjectWorkflowInput(BaseModel):
    proposal: Proposal
    seconds_per_day: float = Field(default=86400.0, ge=0)
    state: ProjectState | None = None
    # A programme setting (never the proposal's): tranches above it need a second approver.
    four_eyes_threshold: int | None = None
    # A programme setting: tranches wait for the accepted progress report of every ended fiscal year.
    progress_reports: bool = True
    command: Command | None = None  # the start, audited with the project's first write

    @property
    def project_id(self) -> str:
        assert self.proposal.project_id is not None
        return self.proposal.project_id


class ProjectSnapshot(BaseModel):
    """What the `status` query returns: the live picture for ops and the API."""

    project_id: str
    status: ProjectStatus
    phase: Phase
    stage_index: int
    stage_name: str | None
    trl: int
    waiting_for: str
    open_gate: int | None
    reviews_pending: list[str]
    handoffs_pending: list[str]
    history_length: int
    gate_workflow_id: str | None = None
    gate_round: int = 1
    on_hold: bool = False
    conditions_due_at: datetime | None = None
    applied: list[str] = Field(default_factory=list)
    money: MoneySnapshot | None = None
    due_on: date | None = Field(
        None,
        description="When the stage's next step (its next tranche, or its end) falls due, on the programme calendar.",
    )
    due_at: datetime | None = Field(None, description="The same moment on the real (workflow) clock.")


class ProjectOutcome(BaseModel):
    """The workflow's result once the project has ended."""

    project_id: str
    status: ProjectStatus
    trl: int
    stop: StopResult | None = None
    handoffs: dict[str, str] = Field(default_factory=dict)
    public_use_achieved: bool | None = Field(
        default=None, description="Completed: did a ministry accept the result for public use?"
    )
