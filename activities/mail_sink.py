"""The local SMTP sink of the embedded default (`trlgate mail-sink`, started by ./run.sh): an
aiosmtpd server on 127.0.0.1 that writes every message it accepts as an .eml file in the mail
folder, for developers to open in any mail reader.

Like a real mail server it refuses a recipient it cannot deliver to: an address in a `.invalid`
domain (RFC 6761: never resolvable) or no address at all, with 550. It accepts a message with a
Message-ID it already holds again (250) without storing a second copy: a sender that died after
the first acceptance and sent again (at-least-once, activities/mail_sender.py) leaves one .eml.
`received.log` lists each message taken in and each duplicate recognised."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import uuid
from email.parser import BytesHeaderParser
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)


def deliverable(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    domain = domain.rstrip(".").lower()
    return bool(at and local and domain) and not (domain == "invalid" or domain.endswith(".invalid"))


class EmlSink:
    """The aiosmtpd handler: one .eml per Message-ID under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not deliverable(address):
            return f"550 5.1.2 <{address}>: recipient address rejected: no such domain"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not content:
            content = envelope.content
        mid = BytesHeaderParser(policy=SMTP_POLICY).parsebytes(content).get("Message-ID")
        mid = str(mid).strip() if mid else ""
        stored = await asyncio.to_thread(self.store, mid, envelope, content)
        return "250 2.0.0 OK: queued" if stored else "250 2.0.0 OK: duplicate of a message already accepted"

    def _path(self, mid: str) -> Path:
        key = mid or f"no-message-id-{uuid.uuid4()}"
        return self.folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".eml")

    def store(self, mid: str, envelope: Envelope, content: bytes) -> bool:
        """Write the message once per Message-ID: written aside and linked into place, so a reader
        never sees half a file and the second of two concurrent copies finds the first."""
        path = self._path(mid)
        head = (
            f"Return-Path: <{envelope.mail_from}>\r\n"
            + "".join(f"Delivered-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        ).encode()
        fd, draft = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(head + content)
                f.flush()
                os.fsync(f.fileno())
            os.link(draft, path)
            stored = True
        except FileExistsError:
            stored = False
        finally:
            os.unlink(draft)
        with (self.folder / "received.log").open("a") as f:
            f.write(f"{'accepted' if stored else 'duplicate'} {mid or '-'} {path.name}\n")
        log.info("mail %s %s", "accepted" if stored else "duplicate", path.name)
        return stored

    def received(self) -> list[tuple[str, str]]:
        """(accepted|duplicate, Message-ID) for each message taken in, oldest first."""
        path = self.folder / "received.log"
        if not path.exists():
            return []
        return [(line.split()[0], line.split()[1]) for line in path.read_text().splitlines() if line.strip()]

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))


async def start_sink(folder: Path, host: str, port: int) -> asyncio.Server:
    """Listen on host:port (port 0: a free one, see the server's sockets)."""
    handler = EmlSink(folder)

    def protocol() -> Any:
        return SMTP(handler, hostname="trlgate-mail-sink", enable_SMTPUTF8=True, data_size_limit=32 * 1024 * 1024)

    return await asyncio.get_running_loop().create_server(protocol, host, port)


async def serve(folder: Path, host: str, port: int, stop: asyncio.Event) -> None:
    server = await start_sink(folder, host, port)
    log.info("mail sink listening on %s:%s, writing .eml files to %s", host, port, folder)
    async with server:
        await stop.wait()
