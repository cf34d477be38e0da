"""Review tasks: a reviewer's invitation, answer and review."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictInt

from api.schemas.common import Key, Orm
from api.schemas.gates import CriterionOut
from domain.bounds import LongText

__all__ = ["RespondIn", "ReviewIn", "TaskDetail", "TaskOut"]


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


class RespondIn(BaseModel):
    accept: StrictBool
    conflict_of_interest: StrictBool = False
    statement: Annotated[LongText, Field(max_length=2000)] = ""
