"""Who may read a project: the role rules (function level) and, for closed work, the need-to-know
rule of domain/security.py (data level). One function, `project_access`, decides for the API, the
codec endpoint and the activities that hand closed packages out; `role_scope` and `readable` say
the same as SQL conditions over Project, for every list (API and pages), so that a list's count,
totals and pages agree with what the policy lets the user read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, cast, false, literal, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from domain.proposal import Classification
from domain.roles import Role
from domain.security import AccessDecision, decide
from storage.models import NeedToKnowGrant, Project, User
from storage.paging import AnySelect, Order, Page, keyset

SEE_ALL = (Role.ADMIN, Role.OPS, Role.FINANCE)


def role_allows(user: User, project: Project) -> bool:
    roles = set(user.roles)
    if roles & {r.value for r in SEE_ALL}:
        return True
    if Role.PM.value in roles and project.programme_manager == user.username:
        return True
    if Role.REVIEWER.value in roles and user.username in project.reviewers:
        return True
    if Role.PERFORMER.value in roles and project.performer == user.username:
        return True
    return Role.MINISTRY.value in roles and user.ministry in project.public_use_ministries


class json_lists(FunctionElement[bool]):
    """`value` is an element of the JSON list in `column`. PostgreSQL: JSONB containment, which
    the GIN indexes of migration 0008 serve; elsewhere (SQLite): the element as a quoted token of
    the list's text, a LIKE."""

    type = Boolean()
    inherit_cache = True
    name = "json_lists"


@compiles(json_lists)
def _json_lists_like(element: json_lists, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, pattern = element.clauses
    return compiler.process(cast(column, String).like(pattern, escape="\\"), **kw)


@compiles(json_lists, "postgresql")
def _json_lists_contains(element: json_lists, compiler: SQLCompiler, **kw: Any) -> str:
    column, array, _ = element.clauses
    return compiler.process(cast(column, JSONB).op("@>")(cast(array, JSONB)), **kw)


def _listed(column: InstrumentedAttribute[list[Any]], value: str) -> ColumnElement[bool]:
    token = '"' + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"'
    return json_lists(column, literal(json.dumps([value])), literal(f"%{token}%"))


def role_scope(user: User) -> ColumnElement[bool]:
    """`role_allows` as a condition over Project: the projects the user's roles reach."""
    roles = set(user.roles)
    if roles & {r.value for r in SEE_ALL}:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if Role.PM.value in roles:
        conditions.append(Project.programme_manager == user.username)
    if Role.REVIEWER.value in roles:
        conditions.append(_listed(Project.reviewers, user.username))
    if Role.PERFORMER.value in roles:
        conditions.append(Project.performer == user.username)
    if Role.MINISTRY.value in roles and user.ministry:
        conditions.append(_listed(Project.public_use_ministries, user.ministry))
    return or_(*conditions) if conditions else false()


def is_closed(project: Project) -> bool:
    return project.classification == Classification.CLOSED.value


async def granted_users(session: AsyncSession, project_id: str) -> set[str]:
    rows = await session.scalars(
        select(NeedToKnowGrant.username).where(
            NeedToKnowGrant.project_id == project_id, NeedToKnowGrant.revoked_at.is_(None)
        )
    )
    return set(rows.all())


def decide_for(user: User, project: Project, granted: bool, role_ok: bool | None = None) -> AccessDecision:
    return decide(
        closed=is_closed(project),
        label_level=project.label_level,
        label_compartments=project.label_compartments,
        clearance_level=user.clearance_level,
        compartments=user.compartments,
        granted=granted,
        role_allows=role_allows(user, project) if role_ok is None else role_ok,
    )


async def closed_decisions(
    session: AsyncSession, user: User, projects: Iterable[Project], role_ok: bool | None = None
) -> dict[str, AccessDecision]:
    """The user's decision for each closed project among `projects`, with one query for the
    user's grants (not one per project)."""
    granted = set(
        (
            await session.scalars(
                select(NeedToKnowGrant.project_id).where(
                    NeedToKnowGrant.username == user.username, NeedToKnowGrant.revoked_at.is_(None)
                )
            )
        ).all()
    )
    return {p.id: decide_for(user, p, p.id in granted, role_ok) for p in projects if is_closed(p)}


async def project_access(
    session: AsyncSession, user: User, project: Project, role_ok: bool | None = None
) -> AccessDecision:
    granted = is_closed(project) and user.username in await granted_users(session, project.id)
    return decide_for(user, project, granted, role_ok)


async def readable(session: AsyncSession, user: User) -> ColumnElement[bool]:
    """A condition over a query joined with Project: open work, and closed work the user may read.

    Only closed work the user holds a grant for can pass, so the policy (`decide`: role, clearance,
    compartments) is asked about those few projects, found with one query, in Python - bounded by the user's grants, not by
    the list's length - and the answer is an id list in the SQL. A grant the clearance no longer
    covers keeps the project out of the count too, not only out of the rows."""
    granted = select(NeedToKnowGrant.project_id).where(
        NeedToKnowGrant.username == user.username, NeedToKnowGrant.revoked_at.is_(None)
    )
    held = await session.scalars(
        select(Project).where(Project.classification == Classification.CLOSED.value, Project.id.in_(granted))
    )
    # Each of them is granted (that is how it was found): one query, not a second for the grants.
    allowed = [p.id for p in held.all() if decide_for(user, p, granted=True)]
    return or_(Project.classification != Classification.CLOSED.value, Project.id.in_(allowed))


def refused_in(query: AnySelect, allowed: ColumnElement[bool]) -> AnySelect:
    """Of `query`'s rows (a query joined with Project, narrowed by role and filters), the ids of
    the closed projects the policy refuses: what a list withheld, for its audit."""
    return (
        query.with_only_columns(Project.id, maintain_column_froms=True)
        .where(Project.classification == Classification.CLOSED.value, ~allowed)
        .distinct()
    )


async def readable_page(
    session: AsyncSession,
    user: User,
    query: AnySelect,
    order: Order,
    cursor: str | None,
    limit: int,
) -> Page[Any]:
    """One keyset page of `query` (joined with Project, narrowed by role and filters) as the
    policy lets the user read it, its total counted alike, and the query of what it withheld
    within the page's key range (for the caller's audit)."""
    allowed = await readable(session, user)
    page = await keyset(session, query.where(allowed), order, cursor, limit)
    return replace(page, withheld=refused_in(query.where(page.window(order)), allowed))
