"""The mail sender: sends the mail outbox (storage/mail_outbox.py) through SMTP with aiosmtplib.
It runs beside the worker as an asyncio task (worker.py), as the payment sender does: every worker
replica has one, so there is no extra process to run or to forget.

Claims. A sender claims a row with a compare-and-set UPDATE (pending, or sending with its claim
expired -> sending, claimed by it until now + mail_claim_seconds) in a short transaction, sends
outside any transaction, then records the outcome. Two senders never hold the same claim: on
PostgreSQL the second UPDATE waits for the first and then finds the row claimed; SQLite takes
one writer at a time.

The guarantee, honestly: at-least-once, with a keyed Message-ID. Right after the server's 250
for the message's data the sender commits `sent`, before it sends anything else. A sender killed
between that 250 and the commit leaves the row `sending`; once its claim expires another sender
sends it again with the same Message-ID (the mail is rendered once, so the copy is identical).
SMTP has no way to ask a server "do you have it already?", so the duplicate is recognised by the
receiving side: the local sink (activities/mail_sink.py) stores a Message-ID once; mail readers
thread or drop same-ID copies. A mail is never lost by a crash, and a crash outside that window
sends nothing twice.

Failures. A 5xx answer about the message (recipient, sender or data refused; a bad address) is
permanent: the row is marked failed with the server's reason (`trlgate mail-outbox` lists them)
and never retried. A 4xx, a refused connection, a timeout or a dropped connection is transient:
retried after doubling delays, and marked failed after mail_max_attempts tries."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import failpoints
from config import Settings
from domain.mail import MailStatus, retry_delay
from storage.db import write_lock
from storage.models import MailOutbox, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    status: MailStatus
    error: str = ""


class Permanent(Exception):
    """The server refused this message for good (5xx)."""


def compose(row: MailOutbox, sender: str) -> EmailMessage:
    """The message as the server receives it: the same bytes however often it is sent (Date is
    the row's creation), plain text with an HTML alternative, UTF-8 headers encoded (RFC 2047)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = row.to_address
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at)
    msg["Message-ID"] = row.message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg.set_content(row.body_text, charset="utf-8")
    msg.add_alternative(row.body_html, subtype="html", charset="utf-8")
    msg["Content-Language"] = row.language  # after the body: setting content drops Content-* headers
    return msg


def _classify(err: Exception) -> Exception:
    """Permanent for a 5xx about this message; anything else stays transient."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in err.recipients]
        if codes and all(code >= 500 for code in codes):
            return Permanent("; ".join(f"{r.code} {r.message}" for r in err.recipients))
        return err
    permanent = (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused)
    if isinstance(err, permanent) and err.code >= 500:
        return Permanent(f"{err.code} {err.message}")
    return err


def _describe(err: Exception) -> str:
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return f"{err.code} {err.message}"
    return f"{type(err).__name__}: {err}"


class MailSender:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, batch: int = 20) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.batch = batch
        self.lock = write_lock(sessionmaker)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:80]

    async def claim(self, now: datetime | None = None) -> list[MailOutbox]:
        """Claim up to `batch` rows that are due: pending ones, and sending ones whose sender's
        claim has run out (it died mid-send)."""
        now = now or utcnow()
        until = now + timedelta(seconds=self.settings.mail_claim_seconds)
        due = or_(
            (MailOutbox.status == MailStatus.PENDING) & (MailOutbox.next_attempt_at <= now),
            (MailOutbox.status == MailStatus.SENDING) & (MailOutbox.claimed_until < now),
        )
        claimed: list[MailOutbox] = []
        async with self._transaction() as session:
            ids = (
                await session.scalars(
                    select(MailOutbox.id)
                    .where(due)
                    .order_by(MailOutbox.next_attempt_at, MailOutbox.id)
                    .limit(self.batch)
                    # PostgreSQL: pass over rows another sender is claiming right now.
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for outbox_id in ids:
                taken = await session.execute(
                    update(MailOutbox)
                    .where(MailOutbox.id == outbox_id, due)
                    .values(
                        status=MailStatus.SENDING,
                        claimed_by=self.name,
                        claimed_until=until,
                        attempts=MailOutbox.attempts + 1,
                    )
                )
                if getattr(taken, "rowcount", 0) == 1:
                    row = await session.get(MailOutbox, outbox_id, populate_existing=True)
                    assert row is not None
                    claimed.append(row)
        return claimed

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """A short write transaction, behind the engine's in-process write lock on SQLite."""
        if self.lock is None:
            async with self.sessionmaker.begin() as session:
                yield session
            return
        async with self.lock, self.sessionmaker.begin() as session:
            yield session

    async def _finish(self, row: MailOutbox, outcome: Exception | None) -> Outcome:
        """Record what became of a claimed row; a transient failure goes back to pending (with
        its delay) until the retry cap."""
        now = utcnow()
        values: dict[str, object] = {"claimed_by": None, "claimed_until": None}
        if outcome is None:
            status, error = MailStatus.SENT, ""
            values.update(sent_at=now, last_error="")
        elif isinstance(outcome, Permanent):
            status, error = MailStatus.FAILED, f"refused: {outcome}"
        elif row.attempts >= self.settings.mail_max_attempts:
            status, error = MailStatus.FAILED, f"gave up after {row.attempts} attempts: {_describe(outcome)}"
        else:
            status, error = MailStatus.PENDING, _describe(outcome)
            delay = retry_delay(
                row.attempts, self.settings.mail_retry_base_seconds, self.settings.mail_retry_max_seconds
            )
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        if error:
            values["last_error"] = error[:2000]
        values["status"] = status
        if status == MailStatus.SENT:
            # Accepted is accepted, whoever holds the claim now (this sender may have been slow).
            mine = MailOutbox.status != MailStatus.SENT
        else:
            # A failure is recorded over the sender's own claim only: a row another sender took
            # over is that sender's to record.
            mine = (MailOutbox.status == MailStatus.SENDING) & (MailOutbox.claimed_by == self.name)
        async with self._transaction() as session:
            await session.execute(update(MailOutbox).where(MailOutbox.id == row.id, mine).values(**values))
        return Outcome(row.id, status, error)

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_tls == "tls",
            start_tls=True if s.smtp_tls == "starttls" else False,
            timeout=s.smtp_timeout_seconds,
        )

    async def send_pending(self) -> list[Outcome]:
        """One pass: claim what is due, send it over one connection, record each outcome."""
        rows = await self.claim()
        if not rows:
            return []
        outcomes: list[Outcome] = []
        client = self._client()
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as err:
            return [await self._finish(row, err) for row in rows]
        try:
            for i, row in enumerate(rows):
                try:
                    await client.send_message(compose(row, self.settings.mail_from))
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as err:
                    # The connection is gone: this row and the rest wait for the next pass.
                    for rest in rows[i:]:
                        outcomes.append(await self._finish(rest, err))
                    break
                except aiosmtplib.SMTPException as err:
                    outcomes.append(await self._finish(row, _classify(err)))
                    if client.is_connected:
                        await _reset(client)
                    continue
                failpoints.hit("after_mail_accepted")
                outcomes.append(await self._finish(row, None))
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        return outcomes

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                for outcome in await self.send_pending():
                    # Ids and states only: a subject or address could name closed work.
                    level = logging.WARNING if outcome.status == MailStatus.FAILED else logging.INFO
                    log.log(level, "mail %s: %s %s", outcome.outbox_id, outcome.status.value, outcome.error)
            except Exception:  # keep sending after a database hiccup; claims expire and are retaken
                log.exception("mail sender pass failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.mail_poll_seconds)
            except TimeoutError:
                pass


async def _reset(client: aiosmtplib.SMTP) -> None:
    """After a refused message, start the next one on a clean transaction (RSET)."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
