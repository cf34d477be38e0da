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
from storage.access import decided
from storage.models import Project, User

PREFIX = "closed-"


def pseudonym(secret: str, project_id: str) -> str:
    key = hashlib.sha256(b"trlgate closed-project pseudonym\x00" + secret.encode()).digest()
    return PREFIX + hmac.new(key, project_id.encode(), hashlib.sha256).hexdigest()[:12]


# A run of letters and digits in hyphen-joined parts: where a project id can stand (an id is
# letters, digits and hyphens, found where no letter or digit touches it: in `pay:<id>:1:2`,
# `reservation:<id>`, `project-<id>-gate-1`).
_RUN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


class Pseudonyms:
    def __init__(self, hidden: dict[str, str], known: set[str]) -> None:
        self.hidden = hidden  # real id -> pseudonym, for the closed projects this reader may not read
        self.aliases = {alias: real for real, alias in hidden.items()}
        self.known = known | hidden.keys()
        # Not one alternation of every id (thousands at a national scale: compiling it and running
        # it over each text cost more than the view's queries): each run's hyphen-joined parts are
        # looked up instead, the longest id first, so `KP-7-B` beside a hidden `KP-7` stays whole.
        self.longest = max((id_.count("-") + 1 for id_ in self.known), default=0)

    def text(self, value: str) -> str:
        """The text with every hidden project id replaced by its pseudonym."""
        if not self.hidden or not value:
            return value
        return _RUN.sub(self._run, value)

    def _run(self, match: re.Match[str]) -> str:
        parts = match.group(0).split("-")
        out: list[str] = []
        i = 0
        while i < len(parts):
            for j in range(min(len(parts), i + self.longest), i, -1):
                found = "-".join(parts[i:j])
                if found in self.known:
                    out.append(self.hidden.get(found, found))
                    i = j
                    break
            else:
                out.append(parts[i])
                i += 1
        return "-".join(out)

    def resolve(self, project_id: str) -> str | None:
        """The project a filter names: a pseudonym names its project; a hidden project's real id
        names nothing (as an unknown id would), so the filter confirms no closed project."""
        if project_id in self.hidden:
            return None
        return self.aliases.get(project_id, project_id)


async def pseudonyms_for(request: Request, session: AsyncSession, user: User, action: str) -> Pseudonyms:
    """Decide every closed project for this reader; audit what was shown and what withheld. Only
    the closed projects' ids are read (not the whole portfolio), and of the others only the ids
    that a hidden id begins (`_extending`)."""
    # The one policy decides each closed project in SQL (readable_sql, held to `decide` by
    # tests/test_access_sql.py): ids and verdicts only, not thousands of rows decided in Python.
    verdicts = (
        await session.execute(
            select(Project.id, decided(user))
            .where(Project.classification == Classification.CLOSED.value)
            .order_by(Project.id)
        )
    ).all()
    shown = [pid for pid, readable in verdicts if readable]
    hidden = {pid: pseudonym(request.app.state.jwt_secret, pid) for pid, readable in verdicts if not readable}
    known = {pid for pid, _ in verdicts} | await _extending(session, hidden)
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
