"""Rendering of project documents from versioned jinja2 templates, stored with a content hash."""

from __future__ import annotations

import hashlib
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from config import REPO_ROOT
from storage.models import Document

TEMPLATES = REPO_ROOT / "templates" / "documents"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def yen(amount: int) -> str:
    return f"¥{amount:,}"


_env.filters["yen"] = yen


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


async def store_document(
    session: AsyncSession, document_id: str, project_id: str, kind: str, template: str, content: str
) -> Document:
    """Store once under its business id; a retry returns the first rendering unchanged."""
    existing = await session.get(Document, document_id)
    if existing is not None:
        return existing
    doc = Document(
        id=document_id,
        project_id=project_id,
        kind=kind,
        template=template,
        content=content,
        sha256=hashlib.sha256(content.encode()).hexdigest(),
    )
    session.add(doc)
    await session.flush()
    return doc
