"""The stored statuses of the records that have one, each backed by a CHECK constraint in the
database (storage/models, the v1 migration). Statuses with a home elsewhere stay there and are
only gathered here: ProjectStatus (domain/project.py), GateStatus and TaskStatus (domain/gate_review.py) and
HandoffStatus (domain/handoff.py)."""

from __future__ import annotations

from enum import StrEnum

from domain.gate_review import GateStatus, TaskStatus
from domain.handoff import HandoffStatus
from domain.project import ProjectStatus


class StageStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    PASSED = "passed"  # its gate said Go (or Conditional Go)
    STOPPED = "stopped"  # Kill, or the project stopped
    ON_HOLD = "on_hold"
    RECYCLED = "recycled"


class ReservationStatus(StrEnum):
    OPEN = "open"
    SETTLED = "settled"  # fully paid
    RELEASED = "released"  # what was not paid went back to the allocation
    REVERSED = "reversed"  # undone as made in error


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"


__all__ = [
    "GateStatus",
    "HandoffStatus",
    "PaymentStatus",
    "ProjectStatus",
    "ReportStatus",
    "ReservationStatus",
    "StageStatus",
    "TaskStatus",
]
