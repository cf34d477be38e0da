"""E-mail: each notice's mail written in the notice's own transaction, a real SMTP conversation
with the local aiosmtpd sink (the .eml parsed back), a sender killed after the server accepted a
mail (a real subprocess, SIGKILL) sending nothing twice, a refused address failed and not retried,
transient failures retried up to the cap, claims, and the per-user opt-out."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.mail_sender import MailSender
from activities.mail_sink import EmlSink, start_sink
from activities.notices import store_notice
from config import REPO_ROOT, Settings
from domain.mail import MailStatus, message_id
from domain.programme import PROGRAMME_CODE
from domain.proposal import Classification
from services import mail_outbox
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry, MailOutbox, Notification, Project, User
from storage.projects import insert_project
from tests.support import proposal

NOW = datetime(2027, 4, 1, tzinfo=UTC)
PAST = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
async def sm(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[tuple[EmlSink, int]]:
    """The local sink on a free 127.0.0.1 port, in this test's event loop."""
    folder = tmp_path / "mail"
    server = await start_sink(folder, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield EmlSink(folder), port


def settings_for(port: int, **overrides: object) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_seconds=10, **overrides)  # type: ignore[arg-type]


async def new_project(sm: async_sessionmaker[AsyncSession], closed: bool = False) -> str:
    p = proposal()
    assert p.project_id is not None
    async with sm.begin() as session:
        assert await insert_project(session, PROGRAMME_CODE, f"project-{p.project_id}", p)
        if closed:
            await session.execute(
                update(Project).where(Project.id == p.project_id).values(classification=Classification.CLOSED.value)
            )
    return p.project_id


async def notify(sm: async_sessionmaker[AsyncSession], key: str, pid: str, to: str, kind: str, message: str) -> None:
    async with sm.begin() as session:
        assert await store_notice(session, key, pid, to, kind, message, NOW)


async def outbox(sm: async_sessionmaker[AsyncSession]) -> list[MailOutbox]:
    async with sm() as session:
        return list((await session.scalars(select(MailOutbox).order_by(MailOutbox.id))).all())


async def set_user(sm: async_sessionmaker[AsyncSession], username: str, **values: object) -> None:
    async with sm.begin() as session:
        await session.execute(update(User).where(User.username == username).values(**values))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


async def test_a_notice_is_mailed_through_a_real_smtp_conversation_in_the_recipients_language(
    sm: async_sessionmaker[AsyncSession], sink: tuple[EmlSink, int]
) -> None:
    eml, port = sink
    pid = await new_project(sm)
    await set_user(sm, "rev.kato", language="en")
    await notify(sm, "k-invite-ito", pid, "rev.ito", "invitation", f"You are invited to review gate 1 of {pid}")
    await notify(sm, "k-invite-kato", pid, "rev.kato", "invitation", f"You are invited to review gate 1 of {pid}")

    outcomes = await MailSender(sm, settings_for(port)).send_pending()

    assert [o.status for o in outcomes] == [MailStatus.SENT, MailStatus.SENT]
    rows = await outbox(sm)
    assert [(r.status, r.attempts, r.sent_at is not None) for r in rows] == [(MailStatus.SENT, 1, True)] * 2
    assert [kind for kind, _ in eml.received()] == ["accepted", "accepted"]
    files = {str(parse(path)["To"]): path for path in eml.messages()}
    ja, en = parse(files["rev.ito@example.test"]), parse(files["rev.kato@example.test"])
    # The Japanese subject crossed SMTP as RFC 2047 encoded-words (7-bit headers), and decodes back.
    head = files["rev.ito@example.test"].read_bytes().split(b"\r\n\r\n", 1)[0]
    assert b"Subject: [trlgate] =?utf-8?b?" in head and head.isascii()
    assert ja["Subject"] == f"[trlgate] 審査への招待 ({pid})"
    assert en["Subject"] == f"[trlgate] You are invited to review ({pid})"
    assert ja["Message-ID"] == message_id("k-invite-ito", "trlgate.local")
    assert ja["From"] == "trlgate <noreply@trlgate.local>" and ja["Content-Language"] == "ja"
    assert ja["Delivered-To"] == "rev.ito@example.test"
    assert ja.get_content_type() == "multipart/alternative"
    text, html = ja.get_body(("plain",)), ja.get_body(("html",))
    assert text is not None and html is not None
    assert "Ito Yuki (Reviewer) 様" in text.get_content() and f"gate 1 of {pid}" in text.get_content()
    # The link leads to where the work is done (an invitation: the reviewer's inbox).
    assert "http://127.0.0.1:8000/app/inbox" in text.get_content() and "配信を停止できません" in text.get_content()
    assert '<html lang="ja">' in html.get_content() and 'href="http://127.0.0.1:8000/app/inbox"' in html.get_content()
    en_text = en.get_body(("plain",))
    assert en_text is not None and en_text.get_content().startswith("Dear Kato Ren (Reviewer),")


async def test_a_closed_projects_mail_says_neither_its_message_nor_its_id(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    pid = await new_project(sm, closed=True)
    await notify(sm, "k-closed", pid, "pm.sato", "panel_complete", f"Every review of gate 1 of project {pid} is in")
    (row,) = await outbox(sm)
    assert pid not in row.subject + row.body_text + row.body_html + row.message_id
    # Not the project's gate page (its address names the project): the notification centre.
    assert "保全措置" in row.body_text and "/app/notifications" in row.body_text and "/gates" not in row.body_text


async def test_the_mail_is_written_in_the_notifications_transaction(sm: async_sessionmaker[AsyncSession]) -> None:
    pid = await new_project(sm)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with sm.begin() as session:
            await store_notice(session, "k-rolled-back", pid, "rev.ito", "invitation", "m", NOW)
            await session.flush()
            assert await session.scalar(select(func.count()).select_from(MailOutbox)) == 1  # in the same transaction
            raise Abort
    assert await outbox(sm) == []
    async with sm() as session:
        assert await session.get(Notification, "k-rolled-back") is None
    await notify(sm, "k-kept", pid, "rev.ito", "invitation", "m")
    assert [r.notification_key for r in await outbox(sm)] == ["k-kept"]


async def test_the_opt_out_stops_informational_mails_only(sm: async_sessionmaker[AsyncSession]) -> None:
    pid = await new_project(sm)
    await set_user(sm, "perf.aoki", mail_opt_out=True)
    await set_user(sm, "rev.mori", email=None)
    await notify(sm, "k-accepted", pid, "perf.aoki", "report_accepted", "accepted")  # informs: opted out
    await notify(sm, "k-stopped", pid, "perf.aoki", "project_stopped", "stopped")  # informs: opted out
    await notify(sm, "k-returned", pid, "perf.aoki", "report_returned", "returned")  # asks to act: mailed
    await notify(sm, "k-due", pid, "perf.aoki", "report_due", "due")  # asks to act: mailed
    await notify(sm, "k-pm-stopped", pid, "pm.sato", "project_stopped", "stopped")  # not opted out: mailed
    await notify(sm, "k-no-address", pid, "rev.mori", "invitation", "invited")  # no address: nothing
    assert [r.notification_key for r in await outbox(sm)] == ["k-returned", "k-due", "k-pm-stopped"]
    (informing,) = [r for r in await outbox(sm) if r.kind == "project_stopped"]
    assert "/app/preferences" in informing.body_text  # how to turn such mails off


async def test_a_sender_killed_after_the_server_accepted_does_not_send_it_twice(
    sm: async_sessionmaker[AsyncSession], sink: tuple[EmlSink, int], sqlite_url: str, tmp_path: Path
) -> None:
    eml, port = sink
    pid = await new_project(sm)
    await notify(sm, "k-crash", pid, "pm.sato", "decision_needed", "The gate decision is overdue")
    env = {
        **os.environ,
        "TRLGATE_DATABASE_URL": sqlite_url,
        "TRLGATE_DATA_DIR": str(tmp_path),
        "TRLGATE_SMTP_PORT": str(port),
        "TRLGATE_MAIL_CLAIM_SECONDS": "1",
        "TRLGATE_FAILPOINTS": "after_mail_accepted",
    }
    # A real process, killed (SIGKILL) right after the server's 250 for the data, before it can
    # record the mail as sent. Awaited without blocking: the sink serves in this event loop.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "send-mail",
        cwd=REPO_ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()
    assert eml.received() == [("accepted", message_id("k-crash", "trlgate.local"))]
    (row,) = await outbox(sm)
    assert row.status == MailStatus.SENDING and row.attempts == 1
    sender = MailSender(sm, settings_for(port, mail_claim_seconds=1))
    assert await sender.send_pending() == []  # the dead sender's claim still holds
    await asyncio.sleep(1.1)
    # A fresh sender takes the expired claim over and sends again, with the same Message-ID: the
    # server recognises it, and the mailbox holds exactly one message.
    (outcome,) = await sender.send_pending()
    assert outcome.status == MailStatus.SENT
    assert [kind for kind, _ in eml.received()] == ["accepted", "duplicate"]
    assert len(eml.messages()) == 1
    (row,) = await outbox(sm)
    assert row.status == MailStatus.SENT and row.attempts == 2
    assert await sender.send_pending() == []


async def test_a_refused_address_is_failed_with_the_reason_and_not_retried(
    sm: async_sessionmaker[AsyncSession], sink: tuple[EmlSink, int]
) -> None:
    eml, port = sink
    pid = await new_project(sm)
    await set_user(sm, "fin.suzuki", email="fin.suzuki@example.invalid")
    await notify(sm, "k-bad", pid, "fin.suzuki", "tranche_approval", "approve")
    await notify(sm, "k-good", pid, "fin.yamada", "tranche_approval", "approve")
    sender = MailSender(sm, settings_for(port, mail_retry_base_seconds=0.01))

    outcomes = await sender.send_pending()

    assert {o.status for o in outcomes} == {MailStatus.FAILED, MailStatus.SENT}  # the good one still went
    bad, good = await outbox(sm)
    assert bad.status == MailStatus.FAILED and bad.attempts == 1 and good.status == MailStatus.SENT
    assert bad.last_error.startswith("refused: 550") and "fin.suzuki@example.invalid" in bad.last_error
    await asyncio.sleep(0.05)
    assert await sender.send_pending() == []  # never claimed again
    assert len(eml.messages()) == 1
    # Administrators see it with its reason, and can send it again once the address is right.
    async with sm() as session:
        found = await mail_outbox.summary(session)
    assert found.counts[MailStatus.FAILED] == 1 and found.counts[MailStatus.SENT] == 1
    assert [(r.id, r.last_error) for r in found.failed] == [(bad.id, bad.last_error)]
    await set_user(sm, "fin.suzuki", email="fin.suzuki@example.test")
    async with sm.begin() as session:
        assert await mail_outbox.retry(session, bad.id)
        assert not await mail_outbox.retry(session, good.id)  # only a failed one
    (outcome,) = await sender.send_pending()
    assert outcome.status == MailStatus.SENT and len(eml.messages()) == 2


async def test_an_unreachable_server_is_retried_with_backoff_up_to_the_cap(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    pid = await new_project(sm)
    await notify(sm, "k-unreachable", pid, "pm.sato", "escalation", "overdue")
    settings = settings_for(free_port(), mail_retry_base_seconds=60, mail_max_attempts=3)
    sender = MailSender(sm, settings)

    (first,) = await sender.send_pending()  # connection refused: transient

    (row,) = await outbox(sm)
    assert first.status == row.status == MailStatus.PENDING and row.attempts == 1 and row.claimed_by is None
    assert "ConnectionRefused" in row.last_error or "Connect" in row.last_error
    delay = (row.next_attempt_at - datetime.now(UTC)).total_seconds()
    assert 50 < delay <= 60
    assert await sender.send_pending() == []  # not before its delay
    for attempt in (2, 3):
        async with sm.begin() as session:
            await session.execute(update(MailOutbox).values(next_attempt_at=PAST))  # the delay has passed
        (outcome,) = await sender.send_pending()
        (row,) = await outbox(sm)
        assert row.attempts == attempt
    assert outcome.status == row.status == MailStatus.FAILED
    assert row.last_error.startswith("gave up after 3 attempts:")
    async with sm.begin() as session:
        await session.execute(update(MailOutbox).values(next_attempt_at=PAST))
    assert await sender.send_pending() == []  # failed is final


async def test_two_senders_never_claim_the_same_mail(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        sm = make_sessionmaker(engine)
        pid = await new_project(sm)
        for n in range(12):
            await notify(sm, f"k-claim-{n}", pid, "fin.suzuki", "tranche_approval", f"tranche {n}")
        settings = settings_for(free_port())
        one, two = MailSender(sm, settings, batch=5), MailSender(sm, settings, batch=5)
        claimed: list[int] = []
        for _ in range(4):  # concurrent passes until every mail is claimed
            first, second = await asyncio.gather(one.claim(), two.claim())
            claimed += [r.id for r in first] + [r.id for r in second]
        assert len(claimed) == len(set(claimed)) == 12  # each claimed once, by one of them
        rows = await outbox(sm)
        assert {r.claimed_by for r in rows} == {one.name, two.name}
        assert all(r.status == MailStatus.SENDING and r.attempts == 1 for r in rows)
    finally:
        await engine.dispose()


async def test_an_administrator_sets_and_clears_an_address_audited(sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm.begin() as session:
        await mail_outbox.set_email(session, "perf.aoki", "aoki@consortium.example", actor="admin")
    with pytest.raises(mail_outbox.BadAddress):
        async with sm.begin() as session:
            await mail_outbox.set_email(session, "perf.aoki", "aoki@x.example\r\nBcc: all@x.example", actor="admin")
    with pytest.raises(LookupError):
        async with sm.begin() as session:
            await mail_outbox.set_email(session, "nobody", "n@example.test", actor="admin")
    async with sm() as session:
        assert await session.scalar(select(User.email).where(User.username == "perf.aoki")) == "aoki@consortium.example"
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "set_email").order_by(AuditEntry.id))
        ).all()
    assert [(e.actor, e.target, e.detail) for e in entries] == [("admin", "user:perf.aoki", {"cleared": False})]
    async with sm.begin() as session:
        await mail_outbox.set_email(session, "perf.aoki", None, actor="admin")
    pid = await new_project(sm)
    await notify(sm, "k-after-clear", pid, "perf.aoki", "report_due", "due")
    assert await outbox(sm) == []  # no address: no mail
