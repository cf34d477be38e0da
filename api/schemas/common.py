"""Bodies shared by every resource, and the small ones of auth, health and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from domain.bounds import PlainText

__all__ = [
    "HealthOut",
    "Key",
    "MarkReadIn",
    "MarkReadOut",
    "MinistryCode",
    "NotificationOut",
    "Orm",
    "TokenOut",
    "UserOut",
]

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
    read_at: datetime | None = None


class MarkReadIn(BaseModel):
    """Notifications to mark read, by key (only the caller's own are marked); or all of them."""

    model_config = ConfigDict(extra="forbid")

    keys: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list, max_length=500)
    all: StrictBool = False


class MarkReadOut(BaseModel):
    marked: int
    unread: int
