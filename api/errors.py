"""Error responses every endpoint documents, and the mapping of workflow refusals to HTTP."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
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
        413: "The request body is larger than the API accepts",
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


# ---- refusals FastAPI and Starlette make before a route runs --------------------------------

ECHO_LIMIT = 200  # characters of a refused input a 422 repeats; more would echo a megabyte back


def _bounded(value: Any) -> Any:
    text = value if isinstance(value, str) else json.dumps(jsonable_encoder(value), default=str)
    if len(text) <= ECHO_LIMIT:
        return value
    return f"{text[:ECHO_LIMIT]}... ({len(text)} characters)"


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 listing each field's problem, as FastAPI does, but never echoing a large input."""
    assert isinstance(exc, RequestValidationError)
    errors = [{**e, "input": _bounded(e["input"])} if "input" in e else e for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _allowed_methods(request: Request) -> str:
    """Every method the spec documents on this path: Starlette's 405 names only the methods of
    the first route whose path matched, not of every route on the path."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            methods |= {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return ", ".join(sorted(methods))


async def http_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        # FastAPI's "There was an error parsing the body" (a body that is not UTF-8, say): it is
        # invalid input like any other, so the 422 every operation with a body documents, with why.
        cause = exc.__cause__ or exc
        problem = {"type": "body_unreadable", "loc": ["body"], "msg": f"the body cannot be read: {cause}"}
        return JSONResponse({"detail": [problem]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        exc = StarletteHTTPException(exc.status_code, exc.detail, headers={"Allow": _allowed_methods(request)})
    return await http_exception_handler(request, exc)
