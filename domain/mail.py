"""E-mail rules: which notices ask someone to act (always mailed) and which only inform (the
recipient may opt out of those), the states of an outbox row, and the keyed Message-ID."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator


class MailStatus(StrEnum):
    PENDING = "pending"  # waiting for a sender (again, after a transient failure)
    SENDING = "sending"  # claimed by a sender until its lease runs out
    SENT = "sent"  # the SMTP server accepted it
    FAILED = "failed"  # refused for good (5xx) or given up after the retry cap: see last_error


# Notices that only inform: the recipient may opt out of their mails. Every other kind asks its
# recipient to do something (review, decide, approve, report, accept or re-route a hand-off,
# resume a hold), and a kind added later is mailed until it is listed here: when in doubt, mail.
INFORMATIONAL_KINDS = frozenset({"report_accepted", "project_stopped", "handoff_rerouted"})


def asks_to_act(kind: str) -> bool:
    return kind not in INFORMATIONAL_KINDS


def message_id(notification_key: str, domain: str) -> str:
    """The Message-ID of a notice's mail: the same for every send of it, so a re-send after a
    crash is recognisable as the same message. Hashed: a key can hold characters a Message-ID
    may not (timestamps' colons), and it names a project, which a closed one's mail must not."""
    digest = hashlib.sha256(notification_key.encode()).hexdigest()[:32]  # 128 bits; the header stays one line
    return f"<notification-{digest}@{domain}>"


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling from `base`, at most `cap`."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


# One address, as an administrator types it: a local part, one @, a domain with a dot; no spaces,
# no display name, nothing a header could be injected through.
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]+")


def valid_address(address: str) -> bool:
    return len(address) <= 320 and _ADDRESS.fullmatch(address) is not None


def _address(value: str) -> str:
    if not valid_address(value):
        raise ValueError("is not one e-mail address (name@example.org: no spaces, no display name)")
    return value


# An address an administrator sets for a user (services/users_admin), checked as valid_address does.
EmailAddress = Annotated[str, AfterValidator(_address)]
