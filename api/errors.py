"""Error responses every endpoint documents, and the mapping of workflow refusals to HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode


class ErrorOut(BaseModel):
    """A refusal: our own reasons are a sentence; request validation lists each field's problem."""

    detail: str | list[dict[str, Any]]


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Bad request",
        401: "Not authenticated (missing, invalid or expired token)",
        403: "Authenticated, but this role may not do this",
        404: "Not found, or not visible to this user",
        409: "Refused in the project's current state (the reason says why)",
        422: "The request is invalid (the reason says why)",
        429: "Too many failed sign-ins for this username or from this address: locked for a while",
        503: "A backing service (database or Temporal) is unavailable",
    }
    headers = {
        429: {"Retry-After": {"description": "Seconds until the lock ends", "schema": {"type": "integer"}}},
    }
    return {
        code: {"model": ErrorOut, "description": text[code], **({"headers": headers[code]} if code in headers else {})}
        for code in codes
    }


AUTH = responses(401, 403)


def refusal(err: Exception) -> HTTPException:
    """A workflow Update refused by its validator (or failed in its handler) becomes 409 + reason."""
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        return HTTPException(status.HTTP_409_CONFLICT, detail=message)
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        return HTTPException(
            status.HTTP_409_CONFLICT, detail="the workflow is not running (finished, or not started yet)"
        )
    if isinstance(err, RPCError) and err.status == RPCStatusCode.FAILED_PRECONDITION:
        # The workflow closed (a stop, a cancelled gate round) while this command was in flight.
        return HTTPException(
            status.HTTP_409_CONFLICT, detail=f"the workflow closed before this command completed: {err}"
        )
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"Temporal is unavailable: {err}")
