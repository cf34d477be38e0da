"""Hand-offs to public-use ministries and the ministry registry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import MinistryCode, Orm
from domain.bounds import LongText, PlainText
from domain.handoff import HandoffBrief

__all__ = ["AcceptIn", "ConcludeIn", "DeclineIn", "DemoHandoffIn", "HandoffOut", "MinistryOut", "RerouteIn"]


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


class AcceptIn(BaseModel):
    receiving_programme: Annotated[PlainText, Field(max_length=500)] = Field(
        default="", description="The programme or use that takes the result on (needed for every hand-off after v1)."
    )
    note: Annotated[LongText, Field(max_length=2000)] = ""
