"""CSRF on the pages' upload forms (multipart/form-data), without buffering the file.

asgi-csrf looks for the token in a multipart body with python-multipart's FormParser, whose
FileClass argument python-multipart no longer takes (every multipart post would fail with a 500),
and it would keep the body read so far in memory. An upload form therefore carries its token as
its FIRST field (HTML sends fields in document order); only that first part is read here (at
most 64 KiB of the body), the token is checked against the signed double-submit cookie exactly
as asgi-csrf checks it (its itsdangerous signer, its namespace, a constant-time comparison), and
the request goes on to asgi-csrf with the token in asgi-csrf's own header (x-csrftoken), so
asgi-csrf makes the same decision again. The part already read is replayed to the route, which
then streams the rest (api/multipart.py)."""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie

from asgi_csrf import DEFAULT_COOKIE_NAME, DEFAULT_FORM_INPUT, DEFAULT_HTTP_HEADER, DEFAULT_SIGNING_NAMESPACE
from fastapi import HTTPException
from itsdangerous import BadSignature
from itsdangerous.url_safe import URLSafeSerializer
from starlette.types import Message, Receive, Scope

from api.multipart import MAX_FIELD_BYTES, PartReader, boundary_of

MAX_PREFIX_BYTES = 64 * 1024


class UploadCsrfRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


def _cookie(scope: Scope) -> str:
    jar: SimpleCookie = SimpleCookie()
    for key, value in scope.get("headers", []):
        if key.lower() == b"cookie":
            jar.load(value.decode("latin-1"))
    morsel = jar.get(DEFAULT_COOKIE_NAME)
    return morsel.value if morsel else ""


async def _first_field(scope: Scope, receive: Receive) -> tuple[str | None, list[Message]]:
    """The token in the body's first part (None: the first part is not the token), and the
    messages read to find it."""
    content_type = next((v for k, v in scope["headers"] if k.lower() == b"content-type"), b"")
    try:
        reader = PartReader(boundary_of(content_type))
    except HTTPException as err:
        raise UploadCsrfRefused(err.status_code, str(err.detail)) from err
    read: list[Message] = []
    value = bytearray()
    seen = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return None, read
        seen += len(message.get("body", b""))
        try:
            events = reader.feed(message.get("body", b""))
        except HTTPException:
            return None, read
        for kind, item in events:
            if kind == "start" and (
                getattr(item, "filename", None) is not None or getattr(item, "name", "") != DEFAULT_FORM_INPUT
            ):
                return None, read
            if kind == "data" and isinstance(item, bytes):
                value += item
                if len(value) > MAX_FIELD_BYTES:
                    return None, read
            if kind == "end":
                return value.decode("utf-8", "replace"), read
        if not message.get("more_body", False) or seen > MAX_PREFIX_BYTES:
            return None, read


async def vouch(scope: Scope, receive: Receive, secret: str) -> tuple[Scope, Receive]:
    """The upload's scope with its token in asgi-csrf's header, and a receive that replays what
    was read; UploadCsrfRefused (403) where the token is missing, not first, or no match."""
    token, read = await _first_field(scope, receive)
    cookie = _cookie(scope)
    try:
        URLSafeSerializer(secret).loads(cookie, DEFAULT_SIGNING_NAMESPACE)
    except BadSignature as err:
        raise UploadCsrfRefused(403, "CSRF check failed: the form's session cookie is missing or invalid") from err
    if token is None or not secrets.compare_digest(token.encode(), cookie.encode()):
        raise UploadCsrfRefused(403, "CSRF check failed: the upload form's token must be its first field and match")

    async def replay() -> Message:
        return read.pop(0) if read else await receive()

    headers = [*scope["headers"], (DEFAULT_HTTP_HEADER.encode("latin-1"), token.encode("latin-1", "replace"))]
    return {**scope, "headers": headers}, replay
