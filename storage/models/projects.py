"""A project's tables: the project, its stages and gates, reviews and decisions, reports,
hand-offs, documents, notifications and gate events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.statuses import (
    GateStatus,
    HandoffStatus,
    ProjectStatus,
    ReportStatus,
    StageStatus,
    TaskStatus,
)
from storage.models.base import Base, StatusType, status_check, utcnow


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        status_check("projects", ProjectStatus),
        # The lists' keyset orders (services/portfolio.ORDERS, the closed-out list), each with the
        # id tie-breaker, and the performer's role scope (storage/access.role_scope).
        Index("ix_projects_created_at_id", "created_at", "id"),
        Index("ix_projects_title_id", "title", "id"),
        Index("ix_projects_current_trl_id", "current_trl", "id"),
        Index("ix_projects_total_budget_id", "total_budget", "id"),
        Index("ix_projects_status_closed_at_id", "status", "closed_at", "id"),
        # The closed projects apart (pseudonyms, the audit log's filter): migration 0009.
        Index("ix_projects_classification_id", "classification", "id"),
        Index("ix_projects_programme_manager_created_at_id", "programme_manager", "created_at", "id"),
        Index("ix_projects_performer", "performer"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    programme_code: Mapped[str] = mapped_column(ForeignKey("programmes.code"))
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200))
    performer: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the performer's contact user
    programme_manager: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    funding_ministry: Mapped[str] = mapped_column(String(16))
    research_vision: Mapped[str] = mapped_column(Text)  # the vision's title when it names one
    # The registered vision and technology area the proposal named (None: free text from before).
    vision_id: Mapped[int | None] = mapped_column(
        ForeignKey("research_visions.id", name="fk_projects_vision_id"), nullable=True, default=None
    )
    area_id: Mapped[int | None] = mapped_column(
        ForeignKey("technology_areas.id", name="fk_projects_area_id"), nullable=True, default=None
    )
    classification: Mapped[str] = mapped_column(String(16))
    start_trl: Mapped[int] = mapped_column(Integer)
    target_trl: Mapped[int] = mapped_column(Integer)
    current_trl: Mapped[int] = mapped_column(Integer)
    stage_no: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[ProjectStatus] = mapped_column(StatusType(ProjectStatus), index=True)
    total_budget: Mapped[int] = mapped_column(BigInteger)
    reviewers: Mapped[list[Any]] = mapped_column(JSON)
    public_use_ministries: Mapped[list[Any]] = mapped_column(JSON)
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    lessons: Mapped[str] = mapped_column(Text, default="", server_default="")
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    public_use_achieved: Mapped[bool | None] = mapped_column(nullable=True)  # set when it completes
    # A closed project's label: readers need this level, these compartments and a grant.
    label_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    label_compartments: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Stage(Base):
    __tablename__ = "stages"
    __table_args__ = (status_check("stages", StageStatus),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    stage_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    trl_in: Mapped[int] = mapped_column(Integer)
    trl_out: Mapped[int] = mapped_column(Integer)
    duration_days: Mapped[int] = mapped_column(Integer)
    budget: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[StageStatus] = mapped_column(StatusType(StageStatus), default=StageStatus.PLANNED)


class Gate(Base):
    __tablename__ = "gates"
    __table_args__ = (
        status_check("gates", GateStatus),
        # A project's open gates by due date, read from the index alone (the dashboard's due and
        # overdue figures, the overdue filter): migration 0009.
        Index("ix_gates_project_id_status_due_at", "project_id", "status", "due_at"),
    )

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    gate_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[GateStatus] = mapped_column(StatusType(GateStatus))
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    workflow_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    recommendation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    opened_at: Mapped[datetime] = mapped_column()


class ReviewTask(Base):
    __tablename__ = "review_tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "gate_no", "round", "reviewer", name="uq_review_tasks_round"),
        status_check("review_tasks", TaskStatus),
        # GET /tasks: a reviewer's own, and everyone's, newest first (storage/paging keyset).
        Index("ix_review_tasks_reviewer_created_at_id", "reviewer", "created_at", "id"),
        Index("ix_review_tasks_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # <project>-g<gate>[-r<round>]-<reviewer>
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    gate_no: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    reviewer: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    # open (first design) | invited | accepted | declined | recused | reassigned | submitted | cancelled
    status: Mapped[TaskStatus] = mapped_column(StatusType(TaskStatus))
    conflict_statement: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Review(Base):
    __tablename__ = "reviews"

    task_id: Mapped[str] = mapped_column(ForeignKey("review_tasks.id"), primary_key=True)
    must_meet: Mapped[dict[str, Any]] = mapped_column(JSON)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    amended_at: Mapped[datetime | None] = mapped_column(nullable=True)


class GateDecision(Base):
    __tablename__ = "decisions"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    gate_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True, default=1, server_default="1")
    decision: Mapped[str] = mapped_column(String(16))
    terms: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # conditions, recycle terms
    decided_by: Mapped[str] = mapped_column(ForeignKey("users.username"))
    justification: Mapped[str] = mapped_column(Text, default="")
    recommendation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    decided_at: Mapped[datetime] = mapped_column()


class ProgressReport(Base):
    """A performer's report for one fiscal year, due at its end; a tranche waits for the accepted
    reports of every year that has ended before it."""

    __tablename__ = "progress_reports"
    __table_args__ = (status_check("progress_reports", ReportStatus),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[ReportStatus] = mapped_column(StatusType(ReportStatus))
    summary: Mapped[str] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column()
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class Handoff(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        UniqueConstraint("project_id", "ministry", "kind", name="uq_handoffs_project_ministry_kind"),
        status_check("handoffs", HandoffStatus),
        # GET /handoffs: a ministry's, and everyone's, newest first (storage/paging keyset).
        Index("ix_handoffs_ministry_created_at_id", "ministry", "created_at", "id"),
        Index("ix_handoffs_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # <project>-h|d-<ministry>
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    ministry: Mapped[str] = mapped_column(ForeignKey("ministries.code"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="final", server_default="final")  # final|demonstration
    status: Mapped[HandoffStatus] = mapped_column(StatusType(HandoffStatus))
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    workflow_id: Mapped[str | None] = mapped_column(String(120), nullable=True)  # none: the first hand-offs
    accepted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    receiving_programme: Mapped[str] = mapped_column(Text, default="", server_default="")
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    note: Mapped[str] = mapped_column(Text, default="")
    deadline_at: Mapped[datetime | None] = mapped_column(nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    rerouted_from: Mapped[str | None] = mapped_column(String(80), nullable=True)
    rerouted_to: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # business key
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # handoff_package|closeout
    template: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A message to a participant (reminder, escalation, decision), keyed by its business key so a
    retried send is stored once. `at` is the workflow's own time."""

    __tablename__ = "notifications"
    # A user's unread count and unread list, and the list's keyset order (services/notifications).
    __table_args__ = (
        Index("ix_notifications_recipient_read_at", "recipient", "read_at"),
        Index("ix_notifications_recipient_at_created_at_key", "recipient", "at", "created_at", "key"),
    )

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the recipient marked it read; None while unread.
    read_at: Mapped[datetime | None] = mapped_column(default=None)


class GateEvent(Base):
    """Every accepted gate command (evidence, invitation, declaration, review, amendment, decision)."""

    __tablename__ = "gate_events"
    __table_args__ = (UniqueConstraint("key", name="uq_gate_events_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    gate_no: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
