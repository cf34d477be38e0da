"""Uploaded files: one row per attachment; the bytes live in the blob store under their SHA-256."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class StoredFile(Base):
    __tablename__ = "files"
    __table_args__ = (
        # The same bytes attached twice to the same thing are one attachment (the upload is answered
        # with the first row), whatever the name they came under.
        UniqueConstraint("project_id", "attached_kind", "attached_ref", "sha256", name="uq_files_attachment"),
        Index("ix_files_attached", "project_id", "attached_kind", "attached_ref"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the plaintext: the blob's address
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))  # detected from the content
    name: Mapped[str] = mapped_column(String(255))  # sanitised
    owner: Mapped[str] = mapped_column(String(200))  # the organisation whose work it is (the project's)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    attached_kind: Mapped[str] = mapped_column(String(16))  # domain.files.AttachedTo
    attached_ref: Mapped[str] = mapped_column(String(40))  # gate number, fiscal year, hand-off kind
    encrypted: Mapped[bool] = mapped_column(default=False)  # sealed at rest (a closed project's file)
    uploaded_by: Mapped[str] = mapped_column(ForeignKey("users.username"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
