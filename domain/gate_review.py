"""The gate review: a panel that declares conflicts, reviews independently, and closes with the
programme manager's decision. Inputs, results and carried state of the gate review workflow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, StrictInt

from domain.command import Command, Commanded
from domain.files import FileRef
from domain.handoff import HandoffBrief
from domain.policy import GatePolicy
from domain.project import Decision, Recommendation, ReviewSubmission
from gates.definitions import GateDefinition


class MemberStatus(StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    RECUSED = "recused"  # declared a conflict of interest: never sees the material
    REASSIGNED = "reassigned"  # replaced by the programme manager (silent reviewer)


ACTIVE_MEMBER = (MemberStatus.INVITED, MemberStatus.ACCEPTED)


class TaskStatus(StrEnum):
    """A review task's status as stored: a panel member's status, then submitted or cancelled.
    `open` is the status of tasks of the first gate design (before panels)."""

    OPEN = "open"
    INVITED = MemberStatus.INVITED.value
    ACCEPTED = MemberStatus.ACCEPTED.value
    DECLINED = MemberStatus.DECLINED.value
    RECUSED = MemberStatus.RECUSED.value
    REASSIGNED = MemberStatus.REASSIGNED.value
    SUBMITTED = "submitted"
    CANCELLED = "cancelled"


# A task still waiting for its reviewer: a round that closes cancels these.
OPEN_TASKS = (TaskStatus.OPEN, TaskStatus.INVITED, TaskStatus.ACCEPTED)


class GateStatus(StrEnum):
    """A gate's status as stored: its current round is open, decided, or cancelled by a stop."""

    OPEN = "open"
    DECIDED = "decided"
    CANCELLED = "cancelled"


class ReviewPhase(StrEnum):
    AWAITING_EVIDENCE = "awaiting_evidence"
    REVIEWING = "reviewing"
    CLOSED = "closed"


class PanelMember(BaseModel):
    reviewer: str
    status: MemberStatus = MemberStatus.INVITED
    conflict_statement: str = ""


class EvidenceInput(Commanded):
    submitted_by: str
    claimed_trl: Annotated[StrictInt, Field(ge=1, le=9)]
    deliverables: Annotated[list[str], Field(min_length=1)]
    criteria_evidence: dict[str, str] = Field(description="Evidence for each must-meet criterion, by key.")
    # The files of the package, by reference and hash (never their bytes): set by the API from
    # the files attached to the gate's evidence when it is submitted.
    attachments: list[FileRef] = Field(default_factory=list)


class OpenReviewInput(Commanded):
    opened_by: str


class InvitationResponse(Commanded):
    reviewer: str
    accept: bool
    conflict_of_interest: bool = False
    statement: Annotated[str, Field(max_length=2000)] = ""


class InviteInput(Commanded):
    invited_by: str
    reviewer: str


class ReassignInput(Commanded):
    requested_by: str
    from_reviewer: str
    to_reviewer: str


class ExtendDeadlineInput(Commanded):
    requested_by: str
    extra_days: Annotated[StrictInt, Field(gt=0, le=365)]


class GateDecisionInput(Commanded):
    decided_by: str
    decision: Decision
    justification: Annotated[str, Field(max_length=5000)] = ""
    lessons: Annotated[str, Field(max_length=10000)] = ""  # a Kill's lessons learned
    conditions: list[Annotated[str, Field(min_length=3, max_length=500)]] = Field(default_factory=list)
    conditions_due_days: Annotated[StrictInt, Field(gt=0, le=3650)] | None = None
    recycle_days: Annotated[StrictInt, Field(gt=0)] | None = None
    recycle_budget: Annotated[StrictInt, Field(ge=0)] | None = None
    # The last gate's Go: what the hand-off packages say about the result.
    handoff: HandoffBrief | None = None


class GateReviewInput(BaseModel):
    project_id: str
    gate_no: int
    round: int
    definition: GateDefinition
    programme_manager: str
    panel: list[str]
    policy: GatePolicy
    seconds_per_day: float
    stage_budget: int
    recycles_so_far: int = 0


class GateOutcome(BaseModel):
    gate_no: int
    round: int
    decision: GateDecisionInput
    recommendation: Recommendation
    reviews: int


class GateReviewState(BaseModel):
    phase: ReviewPhase = ReviewPhase.AWAITING_EVIDENCE
    members: dict[str, PanelMember] = Field(default_factory=dict)
    evidence: EvidenceInput | None = None
    opened_at: datetime | None = None
    due_at: datetime | None = None
    reviews: dict[str, ReviewSubmission] = Field(default_factory=dict)
    amendments: dict[str, int] = Field(default_factory=dict)
    reminders_sent: list[str] = Field(default_factory=list)
    escalated_for: datetime | None = None
    decision_asked_for: datetime | None = None  # the due date the PM was told a decision is needed for
    outcome: GateOutcome | None = None


class GateView(BaseModel):
    """What one viewer may see of a gate: independence and need-to-know applied."""

    project_id: str
    gate_no: int
    round: int
    phase: ReviewPhase
    due_at: datetime | None
    overdue: bool
    members: list[PanelMember]
    vacancies: int = Field(0, description="Seats left by declines and recusals, for the programme manager to fill.")
    pending: list[str]
    evidence: EvidenceInput | None
    reviews: list[ReviewSubmission]
    recommendation: Recommendation | None


# ---- the gate event log: one model per kind, shared by the workflow and the activity storing it --


class GateEventKind(StrEnum):
    OPENED = "opened"
    EVIDENCE = "evidence"
    REVIEW_OPENED = "review_opened"
    INVITED = "invited"
    RESPONDED = "responded"
    REASSIGNED = "reassigned"
    REVIEW = "review"
    AMENDED = "amended"
    DEADLINE = "deadline"
    CLOSED = "closed"
    CONDITIONS_VERIFIED = "conditions_verified"  # written by the project workflow, round 0


# The stored payloads keep datetimes as `isoformat()` text, as they always have been.
IsoDatetime = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]
_ENVELOPE = frozenset({"key", "project_id", "gate_no", "round", "kind", "actor", "at", "command"})


class _GateEventBase(BaseModel):
    key: str
    project_id: str
    gate_no: int
    round: int
    actor: str
    at: datetime
    command: Command | None = None  # the person's command this event carries out

    def payload(self) -> dict[str, Any]:
        """The event's own fields, as the gate event log stores them."""
        return self.model_dump(mode="json", exclude=set(_ENVELOPE))


class GateOpened(_GateEventBase):
    kind: Literal[GateEventKind.OPENED] = GateEventKind.OPENED
    definition: GateDefinition
    panel: list[str]
    workflow_id: str


class EvidenceSubmitted(_GateEventBase):
    kind: Literal[GateEventKind.EVIDENCE] = GateEventKind.EVIDENCE
    evidence: EvidenceInput

    def payload(self) -> dict[str, Any]:
        return self.evidence.model_dump(mode="json")


class DueDateSet(_GateEventBase):
    """The review opened with its deadline, or the deadline moved."""

    kind: Literal[GateEventKind.REVIEW_OPENED, GateEventKind.DEADLINE]
    due_at: IsoDatetime


class ReviewerInvited(_GateEventBase):
    kind: Literal[GateEventKind.INVITED] = GateEventKind.INVITED
    reviewer: str


class InvitationAnswered(_GateEventBase):
    kind: Literal[GateEventKind.RESPONDED] = GateEventKind.RESPONDED
    reviewer: str
    status: MemberStatus
    statement: str


class ReviewerReassigned(_GateEventBase):
    kind: Literal[GateEventKind.REASSIGNED] = GateEventKind.REASSIGNED
    from_reviewer: str
    to_reviewer: str


class ReviewStored(_GateEventBase):
    """A review submitted, or amended, with the panel's recommendation that follows from it."""

    kind: Literal[GateEventKind.REVIEW, GateEventKind.AMENDED]
    review: ReviewSubmission
    recommendation: Recommendation | None

    def payload(self) -> dict[str, Any]:
        rec = self.recommendation.model_dump(mode="json") if self.recommendation else None
        return {**self.review.model_dump(mode="json"), "recommendation": rec}


class RoundClosed(_GateEventBase):
    kind: Literal[GateEventKind.CLOSED] = GateEventKind.CLOSED
    recommendation: Recommendation
    decision: GateDecisionInput

    def payload(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation.model_dump(mode="json"),
            "decision": self.decision.model_dump(mode="json", exclude={"command"}),
        }


class ConditionsVerified(_GateEventBase):
    kind: Literal[GateEventKind.CONDITIONS_VERIFIED] = GateEventKind.CONDITIONS_VERIFIED
    conditions: list[str]
    note: str


GateEvent = Annotated[
    GateOpened
    | EvidenceSubmitted
    | DueDateSet
    | ReviewerInvited
    | InvitationAnswered
    | ReviewerReassigned
    | ReviewStored
    | RoundClosed
    | ConditionsVerified,
    Field(discriminator="kind"),
]
