"""The programme's registries of research visions (the think tank's output the programme funds
against) and technology areas (AI, quantum, space, ...), each with the ministry responsible. A
retired entry stays readable (projects keep naming it) but cannot be chosen for a new proposal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class ResearchVision(Base):
    __tablename__ = "research_visions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Nullable only for rows the 0004 migration mapped from a project's free text whose funding
    # ministry was not registered; the API requires one.
    ministry: Mapped[str | None] = mapped_column(ForeignKey("ministries.code"), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    retired_by: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TechnologyArea(Base):
    __tablename__ = "technology_areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    ministry: Mapped[str | None] = mapped_column(ForeignKey("ministries.code"), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    retired_by: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
