"""What a research vision or technology area entry holds as typed in (the API's body and the
pages' form), and how one reads back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.bounds import LongText, PlainText


class Registry(StrEnum):
    """The two registries: one set of rules, two tables."""

    VISIONS = "visions"
    AREAS = "areas"


# A vision's title becomes a proposal's research_vision, which needs three characters at least.
VISION_TITLE_MIN = 3


class EntryIn(BaseModel):
    title: Annotated[PlainText, Field(min_length=2, max_length=200, description="A vision's: 3 characters at least.")]
    description: Annotated[LongText, Field(max_length=4000)] = ""
    ministry: Annotated[PlainText, Field(min_length=2, max_length=16, description="The ministry responsible.")]


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    ministry: str | None
    retired_at: datetime | None
    retired_by: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.retired_at is None
