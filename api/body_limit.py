"""A limit on request bodies: 413 with the reason, whether the body announces its length or is
sent in chunks without one.

FastAPI's own `max_body_size` would do the counting, but it answers a body whose Content-Length
is over the limit with a plain-text "Content Too Large" that replaces any response, so that 413
could not carry the JSON reason every other refusal (and the spec) has. This is the same small
pure-ASGI check with our error shape.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.reason = f"the request body is larger than the {max_bytes} bytes allowed"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            # Refused before a byte of it is read, and before anything else is looked at.
            await JSONResponse({"detail": self.reason}, status.HTTP_413_CONTENT_TOO_LARGE)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI lets an HTTPException from reading the body through to the handlers.
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=self.reason)
            return message

        await self.app(scope, counted, send)
