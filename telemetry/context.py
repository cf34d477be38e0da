"""The ids every log record of one request carries (request_id, user, project_id, workflow_id...).

One mutable dict per request in a ContextVar: code deeper in the request (an authentication
dependency, a route that starts a workflow) adds to it, and the additions are seen by the request's
last log lines too, across the task boundaries that copy contexts (a copied context shares the dict)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("trlgate_log_fields", default=None)


def start(**fields: Any) -> None:
    """A new request's (or job's) fields, replacing whatever this context held."""
    _fields.set({k: v for k, v in fields.items() if v is not None})


def bind(**fields: Any) -> None:
    """Add to the current request's fields; outside a request, nothing to add to."""
    current = _fields.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def current() -> dict[str, Any]:
    return dict(_fields.get() or {})


def clear() -> None:
    _fields.set(None)
