"""Recorded runs of the daily repair (workflows/repair.py): what a terminate outside trlgate left
behind and was put right, and the drift it could not repair."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class RepairRun(Base):
    __tablename__ = "repair_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # What ran it: "schedule" or "cli:repair".
    ran_by: Mapped[str] = mapped_column(String(120))
    # The run's business key (its workflow id): a retried activity records it once.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    # [{project_id, released, document_id}] for each project repaired.
    repaired: Mapped[list[Any]] = mapped_column(JSON)
    released: Mapped[int] = mapped_column(BigInteger)
    # [{project_id, kind, problem}]: what the run found and left alone.
    drift: Mapped[list[Any]] = mapped_column(JSON)
