"""SQLAlchemy 2 models. The same schema runs on SQLite (embedded default) and PostgreSQL.

One module per area; import the models from `storage.models`."""

from storage.models.base import Base, UTCDateTime, utcnow
from storage.models.files import StoredFile
from storage.models.mail import MailOutbox
from storage.models.money import (
    AccountBalance,
    FiscalCeiling,
    FundAllocation,
    FundCheck,
    LedgerEntry,
    LedgerTransaction,
    MinistryYearTotal,
    PaymentInstruction,
    Programme,
    Reservation,
    Tranche,
    TrancheApproval,
)
from storage.models.people import AuditChainHead, AuditEntry, LoginThrottle, Ministry, NeedToKnowGrant, User
from storage.models.projects import (
    Document,
    Gate,
    GateDecision,
    GateEvent,
    Handoff,
    Notification,
    ProgressReport,
    Project,
    Review,
    ReviewTask,
    Stage,
)
from storage.models.repairs import RepairRun
from storage.models.visions import ResearchVision, TechnologyArea

__all__ = [
    "AccountBalance",
    "AuditChainHead",
    "AuditEntry",
    "Base",
    "Document",
    "FiscalCeiling",
    "FundAllocation",
    "FundCheck",
    "Gate",
    "GateDecision",
    "GateEvent",
    "Handoff",
    "LedgerEntry",
    "LedgerTransaction",
    "LoginThrottle",
    "MailOutbox",
    "Ministry",
    "MinistryYearTotal",
    "NeedToKnowGrant",
    "Notification",
    "PaymentInstruction",
    "Programme",
    "ProgressReport",
    "Project",
    "RepairRun",
    "ResearchVision",
    "Reservation",
    "Review",
    "ReviewTask",
    "Stage",
    "StoredFile",
    "TechnologyArea",
    "Tranche",
    "TrancheApproval",
    "UTCDateTime",
    "User",
    "utcnow",
]

# Registers the mapper event that writes each notification's mail in the notification's own
# transaction, in every process that can store a notification (it imports the models).
import storage.mail_outbox  # noqa: F401
