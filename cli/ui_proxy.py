"""The Temporal UI's front door on the dev stack: one origin for the UI and the codec.

The dev server's UI calls its codec endpoint from the browser. On another origin (the API's port)
that call carries no credentials and the UI shows "Codec Server could not connect"; served from
the UI's own origin, the browser sends the codec cookie the workbench set at sign-in (cookies are
per host, not per port). So this proxy listens where users open the UI and forwards /codec/* to
the API and everything else to the dev server's UI on an internal port.

The dev server has no flag to disable terminate (the UI server's own config does,
`workflowTerminateDisabled`): terminate skips the workflow's clean stop (the close-out, the
reservation's release), so the proxy says it is disabled in the UI's settings and refuses its API
calls. Cancel, the clean stop, passes.

`python -m cli.ui_proxy --port P --ui URL --api URL`, a child of `trlgate up`, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

import httpx
import uvicorn
from fastapi_proxy_lib.core.http import ReverseHttpProxy
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

SETTINGS_PATH = "/api/v1/settings"
# The UI's settings that hide what bypasses the clean stop (the UI server's names).
DISABLED = ("WorkflowTerminateDisabled", "WorkflowResetDisabled", "BatchActionsDisabled")
# Signals, Updates and starts reach a workflow without the API's checks (who may decide a gate,
# approve a tranche, read closed work), so their calls are refused below. They are not disabled in
# the settings: with every other action off the UI greys out its whole actions menu, cancel too.
# Terminate, reset (a reset terminates the current run) and delete of one workflow; any batch
# operation (batch terminate and reset among them; the UI's batch actions are disabled anyway).
_REFUSED = re.compile(
    r"^/api/v1/namespaces/[^/]+/"
    r"(workflows/.+/(terminate|reset|signal/.+|update/.+|signal-with-start/.+)|workflows/[^/]+|batch-operations(/.*)?)/?$"
)
REFUSAL = (
    "terminate, reset, signals, Updates, starts and batch operations are disabled in this UI: they skip "
    "the project's clean stop (close-out, release of the reservation) or the API's checks. Cancel the "
    "workflow, or act in the workbench."
)


# The codec endpoints the UI calls; nothing else of the API is reachable through here.
CODEC_PATHS = frozenset({"decode", "encode", "session"})


def unsafe_path(raw_path: bytes) -> str | None:
    """Why a request's path is refused before any rule reads it (None: it is not). The rules match
    the decoded path, but httpx collapses dot segments and re-reads encoded separators on the way
    upstream: `/x/../api/.../terminate` or `/codec/../auth/token` would reach what the rules had
    not seen."""
    text = raw_path.decode("latin-1")
    lowered = text.lower()
    if "//" in text or any(seg in (".", "..") for seg in unquote(text).split("/")):
        return "the path holds an empty, '.' or '..' segment"
    if any(code in lowered for code in ("%2f", "%5c", "%3f", "%23", "%00", "%2e")) or "\\" in text:
        return "the path holds an encoded separator ('/', '\\', '?', '#', '.') or NUL"
    return None


class CheckedPaths:
    """Refuses an unsafe path (400) before any route or rule reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = unsafe_path(scope.get("raw_path") or scope["path"].encode())
            if reason is not None:
                await JSONResponse({"message": f"refused: {reason}"}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def refused(method: str, path: str) -> bool:
    if method == "DELETE" and path.startswith("/api/v1/namespaces/") and "/workflows/" in path:
        return True
    return method not in ("GET", "HEAD", "OPTIONS") and _REFUSED.match(path) is not None


def create_app(ui_url: str, api_url: str, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """`transport`: the tests' stand-in for both upstreams."""
    # No read timeout: the UI's history views may long-poll for new events through here.
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(None, connect=5))
    ui = ReverseHttpProxy(client, base_url=ui_url.rstrip("/") + "/")
    api = ReverseHttpProxy(client, base_url=api_url.rstrip("/") + "/codec/")

    async def codec(request: Request) -> Response:
        if request.path_params["path"] not in CODEC_PATHS:
            return JSONResponse({"message": "only the codec's decode, encode and session pass here"}, status_code=404)
        return await upstream(api, request)

    async def upstream(proxy: ReverseHttpProxy, request: Request) -> Response:
        try:
            return await proxy.proxy(request=request, path=request.path_params.get("path", ""))
        except httpx.InvalidURL as err:
            return JSONResponse({"message": f"the request's address cannot be forwarded: {err}"}, status_code=400)

    async def settings(request: Request) -> Response:
        try:
            upstream = await client.get(ui_url.rstrip("/") + SETTINGS_PATH, params=request.query_params)
        except httpx.HTTPError as err:
            return JSONResponse({"message": f"the Temporal UI does not answer: {err!r}"}, status_code=502)
        if upstream.status_code != 200:
            return Response(upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type"))
        body = upstream.json()
        body.update(dict.fromkeys(DISABLED, True))
        return Response(json.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"})

    async def rest(request: Request) -> Response:
        if refused(request.method, request.url.path):
            return JSONResponse({"code": 7, "message": REFUSAL}, status_code=403)
        return await upstream(ui, request)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(
        middleware=[Middleware(CheckedPaths)],
        routes=[
            Route("/codec/{path:path}", codec, methods=every),
            Route(SETTINGS_PATH, settings, methods=["GET"]),
            Route("/{path:path}", rest, methods=every),
        ],
        lifespan=lifespan,
    )

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ui", required=True, help="the dev server's UI, e.g. http://127.0.0.1:18233")
    parser.add_argument("--api", required=True, help="the API, e.g. http://127.0.0.1:8000")
    args = parser.parse_args()
    # A browser's open connection (the UI keeps requests in flight to the dev server) held the
    # graceful shutdown until `trlgate up` killed the proxy after its 15 s grace: Ctrl-C then took
    # that long. What is still in flight after two seconds is cut.
    uvicorn.run(
        create_app(args.ui, args.api),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
