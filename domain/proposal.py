"""A project proposal: what a programme manager submits to start a project workflow.

Validation is complete here (pure checks); checks that need the database (users, ministries,
fund balance) live in the API's proposal service.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from domain.bounds import MAX_DAYS, LongText, PlainText, ProgrammeDate, Yen
from domain.policy import GatePolicy
from domain.roles import FundingMinistry
from domain.security import SecurityLabel
from domain.trl import DEFAULT_STAGES, MAX_TRL, MIN_TRL

TRL = Annotated[StrictInt, Field(ge=MIN_TRL, le=MAX_TRL)]
PROJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{2,39}$"
ProjectId = Annotated[str, Field(pattern=PROJECT_ID_PATTERN)]
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
DAYS_PER_YEAR = 365


class Classification(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TranchePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    offset_days: Annotated[StrictInt, Field(ge=0, description="Days after the stage starts.")]
    amount: Yen


class StagePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: Annotated[PlainText, Field(min_length=1, max_length=100)]
    trl_in: TRL
    trl_out: TRL
    duration_days: Annotated[StrictInt, Field(gt=0, le=MAX_DAYS)]
    budget: Yen
    tranches: Annotated[list[TranchePlan], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.trl_out <= self.trl_in:
            raise ValueError(f"stage {self.name!r}: trl_out {self.trl_out} must exceed trl_in {self.trl_in}")
        total = sum(t.amount for t in self.tranches)
        if total != self.budget:
            raise ValueError(
                f"stage {self.name!r}: tranches sum to {total} yen but the stage budget is {self.budget} yen"
            )
        offsets = [t.offset_days for t in self.tranches]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError(f"stage {self.name!r}: tranche offsets must be strictly increasing")
        if offsets[-1] >= self.duration_days:
            raise ValueError(
                f"stage {self.name!r}: tranche at day {offsets[-1]} falls after the stage ends "
                f"(day {self.duration_days})"
            )
        return self


def split_evenly(total: int, parts: int) -> list[int]:
    """Split integer yen into `parts` amounts that sum exactly to `total` (remainder first)."""
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def default_stage_plan(start_trl: int, target_trl: int, total_budget: int) -> list[StagePlan]:
    """The four DOMAIN.md stages cut to [start_trl, target_trl], budget split by share, yearly tranches."""
    chosen = [s for s in DEFAULT_STAGES if s.trl_out > start_trl and s.trl_in < target_trl]
    shares = [s.budget_share for s in chosen]
    budgets = [total_budget * share // sum(shares) for share in shares]
    budgets[-1] += total_budget - sum(budgets)
    plan: list[StagePlan] = []
    for i, (stage, budget) in enumerate(zip(chosen, budgets, strict=True)):
        trl_in = start_trl if i == 0 else stage.trl_in
        trl_out = target_trl if i == len(chosen) - 1 else stage.trl_out
        amounts = split_evenly(budget, stage.years)
        plan.append(
            StagePlan(
                name=stage.name,
                trl_in=trl_in,
                trl_out=trl_out,
                duration_days=stage.years * DAYS_PER_YEAR,
                budget=budget,
                tranches=[
                    TranchePlan(offset_days=year * DAYS_PER_YEAR, amount=amount)
                    for year, amount in enumerate(amounts)
                    if amount > 0
                ],
            )
        )
    return plan


class Proposal(BaseModel):
    """What a programme manager submits. `stages` defaults to the DOMAIN.md plan."""

    project_id: ProjectId | None = Field(
        default=None, description="Business id; generated when omitted. Starting it twice is refused."
    )
    title: Annotated[PlainText, Field(min_length=3, max_length=200)]
    organisation: Annotated[PlainText, Field(min_length=2, max_length=200)]
    performer: Username | None = Field(
        default=None, description="The performer's contact (role performer): files progress reports, gets reminders."
    )
    start_date: ProgrammeDate | None = Field(
        default=None,
        description="Programme date of the project's day 0 (fiscal years, report deadlines), 2000-01-01 to 2100-12-31; "
        "default: the start day in Japan.",
    )
    programme_manager: Username
    funding_ministry: FundingMinistry
    vision_id: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = Field(
        default=None,
        description="The registered research vision (GET /visions, active) the proposal is made against; its title "
        "becomes research_vision.",
    )
    area_id: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = Field(
        default=None, description="The registered technology area (GET /areas, active)."
    )
    research_vision: Annotated[LongText, Field(min_length=3, max_length=2000)] | None = Field(
        default=None,
        description="The vision as free text, as before the registry: read only without vision_id (then it names "
        "the active vision of that title, if there is one).",
    )
    classification: Classification = Classification.OPEN
    label: SecurityLabel | None = Field(
        default=None,
        description="A closed project's security label (level, compartments); default for closed work: CONFIDENTIAL.",
    )
    start_trl: TRL
    target_trl: TRL
    total_budget: Yen
    stages: list[StagePlan] | None = None
    policy: GatePolicy = Field(default_factory=GatePolicy, description="Gate, hold and recycle rules.")
    reviewers: Annotated[list[Username], Field(min_length=1, max_length=12)]
    public_use_ministries: Annotated[
        list[Annotated[PlainText, Field(max_length=16)]], Field(min_length=1, max_length=10)
    ]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.vision_id is None and self.research_vision is None:
            raise ValueError("name the research vision: vision_id (a registered vision), or research_vision as text")
        if self.start_trl >= self.target_trl:
            raise ValueError(f"start_trl {self.start_trl} must be below target_trl {self.target_trl}")
        if len(set(self.reviewers)) != len(self.reviewers):
            raise ValueError("reviewers must be distinct")
        if self.programme_manager in self.reviewers:
            raise ValueError("the programme manager cannot review their own project")
        if self.classification == Classification.OPEN and self.label is not None:
            raise ValueError("an open project carries no security label; set classification to closed")
        if self.classification == Classification.CLOSED and self.label is None:
            self.label = SecurityLabel()
        if len(set(self.public_use_ministries)) != len(self.public_use_ministries):
            raise ValueError("public_use_ministries must be distinct")
        if self.stages is None:
            self.stages = default_stage_plan(self.start_trl, self.target_trl, self.total_budget)
        stages = self.stages
        if not stages:
            raise ValueError("the stage plan is empty")
        if stages[0].trl_in != self.start_trl:
            raise ValueError(f"the first stage starts at TRL {stages[0].trl_in}, not start_trl {self.start_trl}")
        if stages[-1].trl_out != self.target_trl:
            raise ValueError(f"the last stage ends at TRL {stages[-1].trl_out}, not target_trl {self.target_trl}")
        for before, after in itertools.pairwise(stages):
            if before.trl_out != after.trl_in:
                raise ValueError(
                    f"stage {after.name!r} starts at TRL {after.trl_in} but {before.name!r} ends at {before.trl_out}"
                )
        budget = sum(s.budget for s in stages)
        if budget != self.total_budget:
            raise ValueError(f"stage budgets sum to {budget} yen but total_budget is {self.total_budget} yen")
        return self

    @property
    def stage_plan(self) -> list[StagePlan]:
        assert self.stages is not None  # filled by the validator
        return self.stages
