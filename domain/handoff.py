"""Hand-offs to public-use ministries (公的利用): inputs, results and the state a hand-off carries.

A finished project is handed off to each of its public-use ministries in parallel, one hand-off
workflow per ministry; a project at TRL 7 or above may also hand off early for demonstration use.
The liaison of the receiving ministry accepts (naming the programme that will use it) or declines
(with a reason); past its deadline the hand-off escalates to the programme manager, who may
re-route a declined or overdue hand-off to another ministry.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from domain.bounds import LongText, PlainText
from domain.command import Command, Commanded
from domain.files import FileRef

DEMO_MIN_TRL = 7  # a demonstration hand-off needs a system prototype in an operational environment


class HandoffKind(StrEnum):
    FINAL = "final"  # the project's result, for public use
    DEMONSTRATION = "demonstration"  # early, from TRL 7, without ending the project


class HandoffStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REROUTED = "rerouted"  # withdrawn by the programme manager and offered to another ministry
    CANCELLED = "cancelled"  # the project stopped


RESOLVED = frozenset({HandoffStatus.ACCEPTED, HandoffStatus.DECLINED, HandoffStatus.REROUTED, HandoffStatus.CANCELLED})


class HandoffBrief(BaseModel):
    """What the programme manager says about the result; rendered into the package."""

    results_summary: Annotated[LongText, Field(max_length=20000)] = ""
    deliverables: list[Annotated[PlainText, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=100
    )
    ip_terms: Annotated[LongText, Field(max_length=10000)] = ""
    contacts: list[Annotated[PlainText, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    purpose: Annotated[LongText, Field(max_length=2000)] = ""  # a demonstration's purpose
    annexes: list[FileRef] = Field(
        default_factory=list,
        max_length=200,
        description="Set by the programme from the files attached as the hand-off's annexes (anything sent is replaced).",
    )


class HandoffPolicy(BaseModel):
    deadline_days: Annotated[StrictInt, Field(gt=0, le=3650)] = 90
    reminder_days: Annotated[StrictInt, Field(gt=0, le=3650)] = 30
    reroute_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 30  # after a decline, for the PM to re-route


def handoff_id(project_id: str, ministry: str, kind: HandoffKind = HandoffKind.FINAL) -> str:
    return f"{project_id}-{'h' if kind == HandoffKind.FINAL else 'd'}-{ministry}"


def handoff_workflow_id(project_id: str, ministry: str, kind: HandoffKind) -> str:
    return f"project-{project_id}-{'handoff' if kind == HandoffKind.FINAL else 'demo'}-{ministry}"


class HandoffInput(BaseModel):
    project_id: str
    ministry: str
    kind: HandoffKind
    trl: int
    brief: HandoffBrief
    programme_manager: str
    parent_workflow_id: str
    seconds_per_day: float
    policy: HandoffPolicy = Field(default_factory=HandoffPolicy)
    rerouted_from: str | None = None
    redact: bool = False  # a closed project: no free text in what the Temporal UI shows in clear
    command: Command | None = None  # a re-route or a demonstration: audited when its row is written

    @property
    def handoff_id(self) -> str:
        return handoff_id(self.project_id, self.ministry, self.kind)


class HandoffAnswer(Commanded):
    """A liaison's answer: accept names the receiving programme or use; decline gives a reason."""

    accept: bool
    answered_by: str = ""
    receiving_programme: Annotated[str, Field(max_length=500)] = ""
    reason: Annotated[str, Field(max_length=5000)] = ""


class HandoffWithdrawal(BaseModel):
    status: HandoffStatus  # rerouted or cancelled
    reason: str
    rerouted_to: str | None = None


class HandoffOutcome(BaseModel):
    handoff_id: str
    ministry: str
    kind: HandoffKind
    status: HandoffStatus
    answered_by: str | None = None
    receiving_programme: str = ""
    reason: str = ""
    escalated: bool = False
    resolved_at: datetime | None = None


class HandoffRun(BaseModel):
    """The project workflow's record of one hand-off (carried across continue-as-new)."""

    ministry: str
    kind: HandoffKind
    workflow_id: str
    status: HandoffStatus = HandoffStatus.PENDING
    receiving_programme: str = ""
    reason: str = ""
    escalated: bool = False
    rerouted_to: str | None = None
    resolved_at: datetime | None = None
    brief: HandoffBrief = Field(default_factory=HandoffBrief)


class DemoHandoffInput(Commanded):
    ministry: Annotated[str, Field(min_length=2, max_length=16)]
    requested_by: str = ""
    brief: HandoffBrief = Field(default_factory=HandoffBrief)


class RerouteInput(Commanded):
    handoff_id: str
    to_ministry: Annotated[str, Field(min_length=2, max_length=16)]
    requested_by: str = ""
    note: Annotated[str, Field(max_length=2000)] = ""


class HandoffSnapshot(BaseModel):
    handoff_id: str
    ministry: str
    kind: HandoffKind
    status: HandoffStatus
    deadline_at: datetime | None
    escalated: bool
    reminders_sent: int
    offered: bool = Field(description="The package is stored and offered to the liaisons.")
