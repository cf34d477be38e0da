"""The audit log: who did what, when (UTC), to what, and how it ended; tamper-evident.

Each entry's `hash` is SHA-256 over the previous entry's hash and its own content, so changing or
removing any entry breaks every link after it; `verify_chain` finds the first broken link. The
hashes are filled in as the entries are flushed, under a lock on the one-row `audit_chain_head`,
so entries chain in commit order whatever transaction they come from. (Transactions take that
lock last, after any ledger lock, because audit entries are always added after the work they
record; keep it that way, or two transactions could wait on each other.)

The chain alone does not stop someone who can write to the database: they can rewrite an entry and
recompute every hash after it. So each entry is also *anchored*: `anchor` is an HMAC of its hash
under the audit key, which lives outside the database (settings.audit_key or data_dir/audit-key).
Without the key no valid anchor can be made. Since an entry's hash covers every entry before it,
the first anchored entry also vouches for older ones written before anchoring began (by a process
without the key); those are reported as un-anchored, not broken. An un-anchored entry after an anchored one
is broken: anchors are never dropped once they start.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from domain.command import Command
from storage.db import AUDIT_KEY_INFO
from storage.models import AuditChainHead, AuditEntry, utcnow

GENESIS = "0" * 64
# Marks the anchored entry that vouches for the un-anchored ones before it: the first entry a
# process with the key writes after entries written without it.
ANCHORING_BEGAN = "anchoring_began"


def audit(
    session: AsyncSession,
    actor: str,
    action: str,
    target: str,
    outcome: str = "ok",
    **detail: Any,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, target=target, outcome=outcome, detail=detail))


async def audit_command(session: AsyncSession, command: Command | None, **detail: Any) -> bool:
    """Append a person's command, once per key, in the transaction that writes its effect.

    The activity carrying the command out may run again (a retry after a crash past its commit):
    it then finds the entry by its key and adds none. False when there is nothing to append."""
    if command is None:
        return False
    key = command.key or None
    if key is not None and await session.scalar(select(AuditEntry.id).where(AuditEntry.command_key == key)):
        return False
    session.add(
        AuditEntry(
            actor=command.actor,
            action=command.action,
            target=command.target,
            outcome="ok",
            detail={**detail, **command.detail},
            command_key=key,
        )
    )
    return True


async def audit_effect(
    session: AsyncSession, command: Command | None, actor: str, action: str, target: str, **detail: Any
) -> None:
    """The one entry of an effect: the command's, when a person's command caused it, or else the
    write's own."""
    if command is None:
        audit(session, actor, action, target, **detail)
    else:
        await audit_command(session, command, **detail)


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str, at: datetime, actor: str, action: str, target: str, outcome: str, detail: dict[str, Any] | None
) -> str:
    """SHA-256 over the previous hash and the entry's content, in a canonical JSON form."""
    content = json.dumps(
        [prev_hash, _utc_text(at), actor, action, target, outcome, detail or {}],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(content.encode()).hexdigest()


def anchor_of(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def _hash_of(prev_hash: str, entry: AuditEntry) -> str:
    return entry_hash(prev_hash, entry.at, entry.actor, entry.action, entry.target, entry.outcome, entry.detail)


@event.listens_for(Session, "before_flush")
def _chain(session: Session, _context: Any, _instances: Any) -> None:
    new = [o for o in session.new if isinstance(o, AuditEntry)]
    if not new:
        return
    key: bytes | None = session.info.get(AUDIT_KEY_INFO)
    with session.no_autoflush:
        head = session.execute(select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()).scalar_one()
        prev = head.last_hash
        ordered = sorted(new, key=lambda o: inspect(o).insert_order or 0)
        if key and prev != GENESIS and not _last_anchor(session):
            # The log so far was written without the key (before anchoring began). The first
            # anchored entry says so in its (hashed, anchored) detail and so vouches for all of
            # it: the verifier can tell "anchoring began here" from "someone stripped the anchors".
            ordered[0].detail = {**(ordered[0].detail or {}), ANCHORING_BEGAN: True}
        for entry in ordered:
            if entry.at is None:
                entry.at = utcnow()
            entry.prev_hash = prev
            entry.hash = prev = _hash_of(prev, entry)
            entry.anchor = anchor_of(key, entry.hash) if key else ""
        head.last_hash = prev


def _last_anchor(session: Session) -> str:
    """The anchor of the newest entry ('' for one written without the key). The caller holds the
    chain head's lock, so no entry can be appended meanwhile."""
    return session.execute(select(AuditEntry.anchor).order_by(AuditEntry.id.desc()).limit(1)).scalar_one_or_none() or ""


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_at: int | None = None
    problem: str = ""
    anchored: int = 0
    # Entries written before anchoring began (a prefix of the log); `vouched_by` is the first
    # anchored entry after them, whose anchor covers them too, or None if there is none yet.
    unanchored: int = 0
    vouched_by: int | None = None
    anchors_checked: bool = False
    last_id: int = 0  # the newest entry verified, and its hash (for the checkpoint)
    last_hash: str = GENESIS


@dataclass(frozen=True)
class ChainStart:
    """Where a verification may begin instead of the genesis: an entry an earlier verification
    found sound (its id and hash), and whether anchoring had begun by then."""

    entry_id: int
    hash: str
    anchored: bool


# A live log grows while it is verified: the walk follows new entries this many times at most.
_FOLLOW_ROUNDS = 100


async def verify_chain(
    session: AsyncSession, key: bytes | None = None, batch: int = 1000, start: ChainStart | None = None
) -> ChainReport:
    """Walk the log in id order; report the first entry whose link, content or anchor does not
    hold. Without the key only the hash chain is checked. From `start` (an entry verified before,
    whose hash vouches for all before it) only the entries after it are walked, and counted."""
    prev, last_id = (start.hash, start.entry_id) if start else (GENESIS, 0)
    checked = 0
    anchored = 1 if start is not None and start.anchored else 0
    unanchored = 1 if start is not None and start.entry_id and not start.anchored else 0
    first_id = 0
    vouched_by: int | None = None

    def broken(entry_id: int, problem: str) -> ChainReport:
        return ChainReport(checked, entry_id, problem, anchored, unanchored, vouched_by, key is not None)

    for _round in range(_FOLLOW_ROUNDS):
        while True:
            rows = (
                await session.scalars(
                    select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
                )
            ).all()
            if not rows:
                break
            for entry in rows:
                if entry.prev_hash != prev:
                    return broken(entry.id, f"entry {entry.id} does not follow entry {last_id or 'genesis'}")
                if _hash_of(prev, entry) != entry.hash:
                    return broken(entry.id, f"entry {entry.id} was changed after it was written")
                if key is not None:
                    if entry.anchor:
                        if not hmac.compare_digest(entry.anchor, anchor_of(key, entry.hash)):
                            return broken(
                                entry.id,
                                f"entry {entry.id}'s anchor does not match: the log was rewritten by someone "
                                "without the audit key (or this is not the deployment's key)",
                            )
                        vouches = (entry.detail or {}).get(ANCHORING_BEGAN) is True
                        if unanchored and not anchored and not vouches:
                            return broken(
                                entry.id,
                                f"the {unanchored} entries before entry {entry.id} carry no anchor and entry "
                                f"{entry.id} does not vouch for them: their anchors were stripped",
                            )
                        anchored += 1
                        vouched_by = vouched_by or entry.id
                    elif anchored:
                        return broken(entry.id, f"entry {entry.id} has no anchor though entries before it have")
                    else:
                        unanchored += 1
                first_id = first_id or entry.id
                prev, last_id, checked = entry.hash, entry.id, checked + 1
        head = await session.scalar(select(AuditChainHead.last_hash).where(AuditChainHead.id == 1))
        if head is None or head == prev:
            break
        # Entries committed since the walk read past them move the head on: follow them (a
        # verification of a live log), and only a head no entry leads to is a cut.
        if await session.scalar(select(AuditEntry.id).where(AuditEntry.id > last_id).limit(1)) is None:
            return broken(last_id + 1, f"entries after {last_id} were removed (the chain's head is elsewhere)")
    if key is not None and unanchored and not anchored:
        # Every process writing with the key anchors what it writes (and vouches for what came
        # before): a log with no anchor at all had its anchors stripped, or was never written
        # with this key.
        checked = 0
        return broken(
            first_id or last_id,
            "no entry carries an anchor under this audit key: the anchors were stripped, or no process "
            "has written with this key (is it the deployment's key?)",
        )
    return ChainReport(checked, None, "", anchored, unanchored, vouched_by, key is not None, last_id, prev)
