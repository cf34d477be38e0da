"""The API's telemetry middleware: a request id (an incoming X-Request-ID if sane, else a new one,
echoed in the response), the ids its log records carry, the HTTP metrics by route template, and
one log line per request."""

from __future__ import annotations

import re
import time
import uuid

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry import context
from telemetry.gauges import exposition, read_snapshot
from telemetry.logs import get_logger
from telemetry.metrics import HTTP_DURATION, HTTP_REQUESTS

REQUEST_ID_HEADER = "x-request-id"
# An id from outside is kept only when it cannot forge log structure or blow up a field.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PROJECT_IN_PATH = re.compile(r"/projects/([A-Za-z0-9._-]{1,64})(?:/|$)")
UNMATCHED = "unmatched"
# Middlewares between the two of ours copy the scope; this holder, shared by the copies, carries
# the route the router matched back out to the outermost one.
_ROUTE_HOLDER = "trlgate.route"
log = get_logger("trlgate.http")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def route_template(route: object) -> str:
    """The matched route's template (/projects/{project_id}), never the raw path."""
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RouteRecorder:
    """The innermost middleware: hands the matched route to TelemetryMiddleware's holder."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            holder = scope.get(_ROUTE_HOLDER)
            if holder is not None:
                holder["route"] = scope.get("route")


class TelemetryMiddleware:
    """The outermost middleware (RouteRecorder must be the innermost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        found = _PROJECT_IN_PATH.search(scope.get("path", ""))
        context.start(request_id=request_id, project_id=found.group(1) if found else None)
        status = 500  # what the client gets when the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        holder: dict[str, object] = {}
        scope[_ROUTE_HOLDER] = holder
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method, route = scope.get("method", ""), route_template(holder.get("route"))
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope.get("path", ""),
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 1),
            )
            context.clear()


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: Prometheus text exposition, the gauges read from the database now."""
    async with request.app.state.read_sessionmaker() as session:
        snap = await read_snapshot(session)
    return Response(exposition(snap), media_type=CONTENT_TYPE_LATEST)
