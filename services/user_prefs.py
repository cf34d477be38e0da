"""What the pages remember of a user between sessions: the language they chose, the session
epoch that signing out moves on (ending every page session issued before, copied cookies too),
and whether the mails of notices that ask nothing of them are sent."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import audit
from storage.models import User


async def remember_language(session: AsyncSession, username: str, language: str | None) -> None:
    """The user's pages in `language` from now on, whatever the browser asks (None: the browser's)."""
    await session.execute(update(User).where(User.username == username).values(language=language))


async def void_sessions(session: AsyncSession, username: str) -> None:
    """Every page session and API token issued to the user so far no longer passes."""
    await session.execute(update(User).where(User.username == username).values(session_epoch=User.session_epoch + 1))


async def end_sessions(session: AsyncSession, username: str, address: str) -> None:
    """Sign the user out server-side: every page session issued before no longer passes."""
    await void_sessions(session, username)
    audit(session, username, "logout", "auth", "ok", address=address)


async def choose_mail(session: AsyncSession, username: str, *, informational: bool) -> None:
    """Whether notices that only inform are e-mailed too (those asking to act always are); mails
    already in the outbox keep going, the choice applies to notices from now on."""
    await session.execute(update(User).where(User.username == username).values(mail_opt_out=not informational))
