"""Links into the Temporal UI's workflow list, filtered by a visibility query on the search
attributes every workflow keeps current (domain/search_attributes.py)."""

from __future__ import annotations

from urllib.parse import quote

from domain.project import ProjectStatus
from domain.search_attributes import (
    AWAITING_FOUR_EYES,
    FUNDING_MINISTRY,
    GATE_OVERDUE,
    HANDOFF_OVERDUE,
    PROJECT_ID,
    PROJECT_STATUS,
    TRL,
)

# A finished workflow keeps its last search attributes: the sections' lists are of live work.
_RUNNING = 'ExecutionStatus="Running"'


def workflows_url(base: str, namespace: str, query: str) -> str:
    return f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows?query={quote(query, safe='')}"


def workflow_url(base: str, namespace: str, workflow_id: str) -> str:
    """One workflow's own page in the UI."""
    return f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"


def _keyword(value: str) -> str:
    # A visibility query's string literal: a project id holds no quote, but a value is never trusted.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def project_query(project_id: str) -> str:
    return f"{PROJECT_ID.name}={_keyword(project_id)}"


def overdue_gates_query() -> str:
    return f"{GATE_OVERDUE.name}=true AND {_RUNNING}"


def on_hold_query() -> str:
    return f"{PROJECT_STATUS.name}={_keyword(ProjectStatus.ON_HOLD.value)} AND {_RUNNING}"


def four_eyes_query() -> str:
    return f"{AWAITING_FOUR_EYES.name}=true AND {_RUNNING}"


def overdue_handoffs_query() -> str:
    return f"{HANDOFF_OVERDUE.name}=true AND {_RUNNING}"


def ministry_query(ministry: str) -> str:
    return f"{FUNDING_MINISTRY.name}={_keyword(ministry)} AND {_RUNNING}"


def trl_query(trl: int) -> str:
    return f"{TRL.name}={int(trl)} AND {_RUNNING}"
