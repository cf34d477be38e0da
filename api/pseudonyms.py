"""Closed projects in the fund's views: every amount stays (totals must add up), but a closed
project the reader may not read (storage/access.project_access) appears under a pseudonym.

The pseudonym is `closed-` and the first 12 hex digits of an HMAC-SHA256 of the project id, keyed
with a key derived from the server's JWT secret: the same in every request and for every reader
(finance can follow one project across exports), and not reversible without the server's secret.
Cleared and granted readers see the real id. The decisions are audited like any list of closed work.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from fastapi import Request
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record
from domain.proposal import Classification
from storage.access import closed_decisions
from storage.models import Project, User

PREFIX = "closed-"


def pseudonym(secret: str, project_id: str) -> str:
    key = hashlib.sha256(b"trlgate closed-project pseudonym\x00" + secret.encode()).digest()
    return PREFIX + hmac.new(key, project_id.encode(), hashlib.sha256).hexdigest()[:12]


class Pseudonyms:
    def __init__(self, hidden: dict[str, str], known: set[str]) -> None:
        self.hidden = hidden  # real id -> pseudonym, for the closed projects this reader may not read
        ids = sorted(known | hidden.keys(), key=len, reverse=True)
        # A project id is letters, digits and hyphens: one is found where no letter or digit
        # touches it (in `pay:<id>:1:2`, `reservation:<id>`, `project-<id>`), and a longer id that
        # starts with a hidden one is matched whole first.
        alternatives = "|".join(map(re.escape, ids))
        self.pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])") if ids else None

    def text(self, value: str) -> str:
        """The text with every hidden project id replaced by its pseudonym."""
        if not self.hidden or self.pattern is None or not value:
            return value
        return self.pattern.sub(lambda m: self.hidden.get(m.group(0), m.group(0)), value)

    def resolve(self, project_id: str) -> str | None:
        """The project a filter names: a pseudonym names its project; a hidden project's real id
        names nothing (as an unknown id would), so the filter confirms no closed project."""
        if project_id in self.hidden:
            return None
        for real, alias in self.hidden.items():
            if alias == project_id:
                return real
        return project_id


async def pseudonyms_for(request: Request, session: AsyncSession, user: User, action: str) -> Pseudonyms:
    """Decide every closed project for this reader; audit what was shown and what withheld. Only
    the closed projects are loaded (not the whole portfolio), and of the others only the ids that
    a hidden id begins (`_extending`)."""
    closed = (await session.scalars(select(Project).where(Project.classification == Classification.CLOSED.value))).all()
    decisions = await closed_decisions(session, user, closed)
    shown = [pid for pid, decision in decisions.items() if decision]
    hidden = {pid: pseudonym(request.app.state.jwt_secret, pid) for pid, decision in decisions.items() if not decision}
    known = {p.id for p in closed} | await _extending(session, hidden)
    if shown or hidden:
        await record(
            request, user.username, f"list_closed:{action}", "projects", "ok", shown=shown, withheld=sorted(hidden)
        )
    return Pseudonyms(hidden, known)


async def _extending(session: AsyncSession, hidden: dict[str, str]) -> set[str]:
    """The ids that begin with a hidden id and a hyphen (`KP-7-B` beside a hidden `KP-7`): a text
    naming one must keep it whole, not pseudonymise its first part. Ids only, not rows."""
    lengths = {len(h) for h in hidden}  # ids share a format: a few lengths, and few ids pass this
    if not lengths:
        return set()
    ids = await session.scalars(
        select(Project.id).where(or_(*(func.substr(Project.id, n + 1, 1) == "-" for n in lengths)))
    )
    return {i for i in ids if any(len(i) > n and i[n] == "-" and i[:n] in hidden for n in lengths)}
