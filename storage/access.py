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

from sqlalchemy import Boolean, ColumnElement, String, and_, cast, false, func, literal, not_, or_, select, true
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


class json_subset(FunctionElement[bool]):
    """Every element of the JSON list in `column` is one of `values` (an empty list is a subset of
    anything). PostgreSQL: JSONB containment the other way round; SQLite: no element of json_each
    outside the values."""

    type = Boolean()
    inherit_cache = True
    name = "json_subset"


@compiles(json_subset)
def _json_subset_each(element: json_subset, compiler: SQLCompiler, **kw: Any) -> str:
    column, array = element.clauses
    col, values = compiler.process(column, **kw), compiler.process(array, **kw)
    return (
        f"NOT EXISTS (SELECT 1 FROM json_each({col}) AS e WHERE e.value NOT IN (SELECT value FROM json_each({values})))"
    )


@compiles(json_subset, "postgresql")
def _json_subset_contained(element: json_subset, compiler: SQLCompiler, **kw: Any) -> str:
    column, array = element.clauses
    return compiler.process(cast(column, JSONB).op("<@")(cast(array, JSONB)), **kw)


def readable_sql(user: User) -> ColumnElement[bool]:
    """`decide` as a condition over Project (tests/test_access_sql.py holds the two to the same
    answers): open work, and closed work the user's roles reach, whose label the clearance and
    compartments dominate, under a grant not revoked. No rows are read to build it, so its cost
    does not grow with the user's grants (an admin may hold thousands)."""
    # The grant as a correlated EXISTS (the grant's primary key is (project, user)), not
    # `id IN (the user's grants)`: PostgreSQL charges that IN's hashed subplan again for every
    # project a nested loop probes, and so scanned the whole portfolio for a reviewer's 250 tasks.
    granted = (
        select(NeedToKnowGrant.project_id)
        .where(
            NeedToKnowGrant.project_id == Project.id,
            NeedToKnowGrant.username == user.username,
            NeedToKnowGrant.revoked_at.is_(None),
        )
        .exists()
    )
    return or_(
        Project.classification != Classification.CLOSED.value,
        and_(
            role_scope(user),
            Project.label_level <= user.clearance_level,
            json_subset(Project.label_compartments, literal(json.dumps(sorted(user.compartments or [])))),
            granted,
        ),
    )


def decided(user: User) -> ColumnElement[bool]:
    """`readable_sql` as a value (a column, a negation): true or false, never NULL, since a
    condition that cannot be decided refuses."""
    return func.coalesce(readable_sql(user), false())


def refused_projects(user: User) -> AnySelect:
    """The ids of the closed projects `user` may not read: few beside the portfolio, so a list of
    other rows (the audit log) leaves out those naming them as a hashed NOT IN, not a join of every
    row with its project."""
    return select(Project.id).where(
        Project.classification == Classification.CLOSED.value,
        not_(decided(user)),
    )


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
    allowed = readable_sql(user)
    page = await keyset(session, query.where(allowed), order, cursor, limit)
    return replace(page, withheld=refused_in(query.where(page.window(order)), allowed))
