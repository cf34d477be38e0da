"""Who may see what: one place for data-level rules, used by every read and command."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, false, or_

from domain.roles import Role
from storage.models import Project, User

SEE_ALL = (Role.ADMIN, Role.OPS, Role.FINANCE)


def can_see_project(user: User, project: Project) -> bool:
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


def visible_projects(user: User, query: Select[Any]) -> Select[Any]:
    """Filter a project query down to what `user` may see (JSON list membership is checked in Python
    by the caller for reviewers and ministries, since SQLite and PostgreSQL spell it differently)."""
    roles = set(user.roles)
    if roles & {r.value for r in SEE_ALL}:
        return query
    conditions = []
    if Role.PM.value in roles:
        conditions.append(Project.programme_manager == user.username)
    if Role.PERFORMER.value in roles:
        conditions.append(Project.performer == user.username)
    if Role.REVIEWER.value in roles or Role.MINISTRY.value in roles:
        return query  # narrowed by can_see_project afterwards
    return query.where(or_(*conditions) if conditions else false())


def is_project_pm(user: User, project: Project) -> bool:
    return Role.ADMIN.value in user.roles or project.programme_manager == user.username
