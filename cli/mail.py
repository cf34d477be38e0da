"""The mail commands: the local SMTP sink, one pass of the mail sender, and the outbox for admins."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config import get_settings

console = Console()


def mail_sink(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default TRLGATE_SMTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default TRLGATE_SMTP_PORT).")] = None,
) -> None:
    """Run the local SMTP sink: every accepted mail becomes an .eml file in data/mail."""
    from activities.mail_sink import serve

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mail-sink %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's line per SMTP command

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings.resolved_mail_dir, host or settings.smtp_host, port or settings.smtp_port, stop)

    asyncio.run(run())


def send_mail() -> None:
    """Send what is due in the mail outbox once (the worker also does this continuously)."""
    from activities.mail_sender import MailSender
    from cli.main import _with_sessionmaker

    settings = get_settings()

    async def work(sm: async_sessionmaker[AsyncSession]) -> list[str]:
        sender = MailSender(sm, settings)
        return [f"{o.outbox_id} {o.status.value} {o.error}".strip() for o in await sender.send_pending()]

    outcomes = asyncio.run(_with_sessionmaker(work))
    for line in outcomes:
        console.print(line)
    console.print(f"{len(outcomes)} mail(s) handled")


def mail_outbox(
    retry: Annotated[
        int | None, typer.Option(help="Send this failed mail again (its recipient's address now).")
    ] = None,
) -> None:
    """The mail outbox: mails per state, and the failed ones with the server's reason."""
    from cli.main import _with_sessionmaker
    from services import mail_outbox as outbox

    if retry is not None:

        async def requeue(sm: async_sessionmaker[AsyncSession]) -> bool:
            async with sm.begin() as session:
                return await outbox.retry(session, retry)

        if not asyncio.run(_with_sessionmaker(requeue)):
            console.print(f"[red]no failed mail {retry} with a recipient address to send it to[/red]")
            raise typer.Exit(1)
        console.print(f"mail {retry} will be sent again")
        return

    async def work(sm: async_sessionmaker[AsyncSession]) -> outbox.OutboxSummary:
        async with sm() as session:
            return await outbox.summary(session)

    found = asyncio.run(_with_sessionmaker(work, read_only=True))
    console.print(", ".join(f"{status.value}: {n}" for status, n in found.counts.items()))
    if found.failed:
        table = Table(title="Failed mails")
        for column in ("id", "recipient", "address", "kind", "attempts", "reason"):
            table.add_column(column)
        for row in found.failed:
            table.add_row(str(row.id), row.recipient, row.to_address, row.kind, str(row.attempts), row.last_error)
        console.print(table)


def set_email(
    username: str,
    address: Annotated[str | None, typer.Argument(help="The address; leave out to clear it.")] = None,
) -> None:
    """Set the address a user's notices are e-mailed to (or clear it: no mail at all)."""
    from cli.main import _with_sessionmaker
    from services import mail_outbox as outbox

    async def work(sm: async_sessionmaker[AsyncSession]) -> None:
        async with sm.begin() as session:
            await outbox.set_email(session, username, address, actor="cli")

    try:
        asyncio.run(_with_sessionmaker(work))
    except (outbox.BadAddress, LookupError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"{username}: {address or 'no address'}")
