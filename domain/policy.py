"""A programme's rules for gates, holds and recycles. Each programme (and each proposal) may
override the defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from domain.bounds import MAX_DAYS
from domain.handoff import HandoffPolicy


class GatePolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    review_days: Annotated[StrictInt, Field(gt=0, le=365)] = 60
    reminder_days_before: list[Annotated[StrictInt, Field(gt=0, le=365)]] = Field(
        default_factory=lambda: [14, 3], max_length=10
    )
    quorum: Annotated[StrictInt, Field(gt=0, le=12)] | None = Field(
        default=None, description="Reviews needed before a decision; default: the whole panel."
    )
    require_evidence: bool = True
    # A hundred years: long holds are a policy choice (recorded histories use 20,000 days), and the
    # dates they lead to stay far inside what `date` holds.
    max_hold_days: Annotated[StrictInt, Field(gt=0, le=36500)] = 365
    max_recycles: Annotated[StrictInt, Field(ge=0, le=10)] = 2
    max_recycle_days: Annotated[StrictInt, Field(gt=0, le=MAX_DAYS)] = 365
    max_recycle_budget_percent: Annotated[StrictInt, Field(ge=0, le=100)] = 50
    # A Conditional Go whose conditions are not verified by their date: Hold (the default) or stop.
    conditions_missed: Literal["hold", "stop"] = "hold"
    handoff: HandoffPolicy = Field(default_factory=HandoffPolicy)
