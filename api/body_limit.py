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

# An upload's body is its file plus the multipart framing and a few small fields.
UPLOAD_OVERHEAD = 64 * 1024


def is_upload(scope: Scope) -> bool:
    """A file upload (services/files.py streams it and limits the file itself)."""
    return scope.get("method") == "POST" and str(scope.get("path", "")).endswith("/files")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if self.max_upload_bytes is not None and is_upload(scope):
            limit = self.max_upload_bytes + UPLOAD_OVERHEAD
        reason = f"the request body is larger than the {limit} bytes allowed"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            # Refused before a byte of it is read, and before anything else is looked at.
            await JSONResponse({"detail": reason}, status.HTTP_413_CONTENT_TOO_LARGE)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI lets an HTTPException from reading the body through to the handlers.
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=reason)
            return message

        await self.app(scope, counted, send)
