"""The fund's pseudonyms read only the closed projects and the ids a hidden one begins, not the
whole portfolio: what they rewrite stays as before (the hidden id, also inside a workflow id; a
longer open id that begins with it kept whole), on both databases."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from api.pseudonyms import pseudonym, pseudonyms_for
from domain.programme import PROGRAMME_CODE
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry, User
from tests.support import ledger_project

SECRET = "pseudonym-test-secret-of-thirty-two-bytes"


async def test_pseudonyms_load_the_closed_projects_only(db_url: str) -> None:
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    closed = ledger_project("KP-PSX", PROGRAMME_CODE, "MEXT", 1)
    closed.classification, closed.label_level = "closed", 2
    async with sm.begin() as s:
        s.add_all(
            [closed, *(ledger_project(pid, PROGRAMME_CODE, "MEXT", 1) for pid in ("KP-PSX-B", "KP-PSY", "KP-PS1"))]
        )
    request: Any = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(jwt_secret=SECRET, sessionmaker=sm)))
    try:
        async with make_sessionmaker(engine, read_only=True)() as s:
            request.state = SimpleNamespace(read_session=s)  # handed back before the audit's write, as in the API
            finance = await s.get(User, "fin.suzuki")
            assert finance is not None
            names = await pseudonyms_for(request, s, finance, "fund")
            alias = pseudonym(SECRET, "KP-PSX")
            assert names.text("paid:KP-PSX and project-KP-PSX-gate-1") == f"paid:{alias} and project-{alias}-gate-1"
            assert names.text("reservation:KP-PSX-B, KP-PSY") == "reservation:KP-PSX-B, KP-PSY"
            assert names.resolve(alias) == "KP-PSX" and names.resolve("KP-PSX") is None
            withheld = await s.scalar(select(AuditEntry.detail).where(AuditEntry.action == "list_closed:fund"))
            assert withheld == {"shown": [], "withheld": ["KP-PSX"]}
    finally:
        await engine.dispose()
