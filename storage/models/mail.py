"""The mail outbox: one row per notification that is e-mailed, written in the notification's own
transaction (storage/mail_outbox.py) and sent by the mail sender (activities/mail_sender.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.mail import MailStatus
from storage.models.base import Base, StatusType, status_check, utcnow


class MailOutbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (status_check("outbox", MailStatus),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The notification it mails: one mail per notification, whoever retries the write.
    notification_key: Mapped[str] = mapped_column(String(200), unique=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True)  # the username
    to_address: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[MailStatus] = mapped_column(StatusType(MailStatus), default=MailStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a pending row may be tried (again); a sending row's claim lasts until claimed_until.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
