"""The mail outbox for administrators: how many mails are in each state, the ones that failed
with the server's reason, and sending a failed one again (after its address was corrected)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mail import MailStatus, valid_address
from storage.audit import audit
from storage.models import MailOutbox, User, utcnow


@dataclass(frozen=True)
class OutboxSummary:
    counts: dict[MailStatus, int]
    failed: list[MailOutbox]


async def summary(session: AsyncSession, limit: int = 100) -> OutboxSummary:
    rows = (await session.execute(select(MailOutbox.status, func.count()).group_by(MailOutbox.status))).all()
    counts = {status: 0 for status in MailStatus} | {MailStatus(s): int(n) for s, n in rows}
    failed = (
        await session.scalars(
            select(MailOutbox)
            .where(MailOutbox.status == MailStatus.FAILED)
            .order_by(MailOutbox.created_at.desc(), MailOutbox.id.desc())
            .limit(limit)
        )
    ).all()
    return OutboxSummary(counts, list(failed))


async def retry(session: AsyncSession, outbox_id: int) -> bool:
    """Send a failed mail again, to the recipient's address as it is now; False when there is no
    failed mail with that id (or its recipient has no address any more)."""
    row = await session.get(MailOutbox, outbox_id)
    if row is None or row.status != MailStatus.FAILED:
        return False
    user = await session.get(User, row.recipient)
    if user is None or not user.email or not user.active:
        return False
    result = await session.execute(
        update(MailOutbox)
        .where(MailOutbox.id == outbox_id, MailOutbox.status == MailStatus.FAILED)
        .values(status=MailStatus.PENDING, to_address=user.email, attempts=0, next_attempt_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


class BadAddress(ValueError):
    pass


async def set_email(session: AsyncSession, username: str, address: str | None, actor: str) -> None:
    """Set (or with None clear) a user's e-mail address; audited. Raises BadAddress or LookupError."""
    if address is not None and not valid_address(address):
        raise BadAddress(f"{address!r} is not one e-mail address")
    result = await session.execute(update(User).where(User.username == username).values(email=address))
    if not int(getattr(result, "rowcount", 0) or 0):
        raise LookupError(f"no user {username!r}")
    audit(session, actor, "set_email", f"user:{username}", "ok", cleared=address is None)
    await follow_recipient(session, username)


async def follow_recipient(session: AsyncSession, username: str) -> None:
    """The user's mails still waiting follow the user as they are now: to their new address, or,
    deactivated or left without one, failed with the reason (an administrator may send them again
    later). A row is rendered when its notice is stored, so without this a deactivated user's
    waiting mail would still go out, and a changed address's mail to the old one."""
    user = await session.get(User, username, populate_existing=True)
    waiting = (MailOutbox.recipient == username) & (MailOutbox.status == MailStatus.PENDING)
    if user is not None and user.active and user.email:
        await session.execute(update(MailOutbox).where(waiting).values(to_address=user.email))
        return
    reason = (
        "not sent: the recipient was deactivated"
        if user is None or not user.active
        else "not sent: the recipient has no address any more"
    )
    await session.execute(update(MailOutbox).where(waiting).values(status=MailStatus.FAILED, last_error=reason))
