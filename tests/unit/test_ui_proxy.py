"""The dev stack's Temporal UI front door (cli/ui_proxy.py): codec to the API with the browser's
cookie, everything else to the UI, terminate refused and said to be disabled, cancel passed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import unquote

import httpx
import pytest

from cli.ui_proxy import DISABLED, create_app, refused

UI = "http://ui.internal:18233"
API = "http://api.internal:8000"


class Streamed(httpx.AsyncByteStream):
    """A body the proxy streams on (httpx reads a plain `content=` body at once)."""

    def __init__(self, body: object) -> None:
        self.body = json.dumps(body).encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


def upstream(request: httpx.Request) -> httpx.Response:
    """Both upstreams: they echo what reached them."""
    if request.url.path == "/api/v1/settings":
        return httpx.Response(200, json={"Codec": {"Endpoint": "x"}, "WorkflowTerminateDisabled": False})
    seen = {
        "host": request.url.host,
        "path": request.url.path,
        "query": request.url.query.decode(),
        "cookie": request.headers.get("cookie"),
        "body": request.content.decode(),
    }
    headers = {"set-cookie": "_csrf=t; Path=/", "content-type": "application/json"}
    return httpx.Response(200, headers=headers, stream=Streamed(seen))


@pytest.fixture
async def proxy() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(UI, API, transport=httpx.MockTransport(upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8233") as client:
        yield client


async def test_codec_goes_to_the_api_with_the_cookie(proxy: httpx.AsyncClient) -> None:
    r = await proxy.post("/codec/decode", json={"payloads": []}, headers={"cookie": "trlgate_codec=tok"})
    assert r.status_code == 200
    seen = r.json()
    assert (seen["host"], seen["path"]) == ("api.internal", "/codec/decode")
    assert seen["cookie"] == "trlgate_codec=tok" and json.loads(seen["body"]) == {"payloads": []}


async def test_the_rest_goes_to_the_ui(proxy: httpx.AsyncClient) -> None:
    r = await proxy.get("/api/v1/namespaces/default/workflows", params={"query": 'ProjectId="A"'})
    seen = r.json()
    assert (seen["host"], seen["path"]) == ("ui.internal", "/api/v1/namespaces/default/workflows")
    assert "ProjectId" in httpx.QueryParams(seen["query"])["query"]
    assert r.headers["set-cookie"].startswith("_csrf=")  # the UI's own cookies come back


async def test_settings_say_terminate_is_disabled(proxy: httpx.AsyncClient) -> None:
    r = await proxy.get("/api/v1/settings")
    body = r.json()
    assert all(body[name] is True for name in DISABLED)
    assert body["Codec"] == {"Endpoint": "x"}  # the rest as the UI said


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/default/workflows/project-A/terminate",
        "/api/v1/namespaces/default/workflows/project-A/runs/r1/terminate",
        "/api/v1/namespaces/default/workflows/project-A/reset",
        "/api/v1/namespaces/default/batch-operations/job-1",
        "/api/v1/namespaces/default/workflows/project-A/signal/hold",
        "/api/v1/namespaces/default/workflows/project-A/update/decide_gate",
        "/api/v1/namespaces/default/workflows/project-B",  # a start
    ],
)
async def test_terminate_and_friends_are_refused_with_a_reason(proxy: httpx.AsyncClient, path: str) -> None:
    r = await proxy.post(path, json={})
    assert r.status_code == 403 and "clean stop" in r.json()["message"]


async def test_cancel_passes(proxy: httpx.AsyncClient) -> None:
    r = await proxy.post("/api/v1/namespaces/default/workflows/project-A/cancel", json={})
    assert r.status_code == 200 and r.json()["path"].endswith("/cancel")


def test_rules() -> None:
    assert refused("DELETE", "/api/v1/namespaces/default/workflows/project-A")
    assert not refused("GET", "/api/v1/namespaces/default/batch-operations")  # listing them is reading
    assert not refused("POST", "/api/v1/namespaces/default/workflows/project-A/cancel")
    assert not refused("POST", "/api/v1/namespaces/default/workflows/project-A/query/status")  # reading


async def test_a_ui_out_of_reach_is_a_bad_gateway() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    app = create_app(UI, API, transport=httpx.MockTransport(down))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8233") as client:
        assert (await client.get("/api/v1/settings")).status_code == 502
        assert (await client.get("/namespaces/default/workflows")).status_code == 502


async def raw_status(path: bytes, method: str = "POST") -> int:
    """The proxy's answer to a path exactly as a client like `curl --path-as-is` sends it (httpx
    would collapse its dot segments before sending)."""
    app = create_app(UI, API, transport=httpx.MockTransport(upstream))
    sent: list[dict[str, object]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path.decode()),
        "raw_path": path,
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8233")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8233),
    }

    bodies = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, object]:
        if bodies:
            return bodies.pop()
        await asyncio.Event().wait()  # the client stays connected until the answer is sent
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(str(sent[0]["status"]))


@pytest.mark.parametrize(
    "path",
    [
        b"/x/../api/v1/namespaces/default/workflows/project-A/terminate",  # the rules saw /x/..
        b"/codec/../auth/token",  # the API beyond the codec
        b"//api/v1/namespaces/default/workflows/project-A/terminate",
        b"/api/v1/namespaces/default/workflows/project-A/%2e%2e/x",
        b"/api/v1/namespaces/default/workflows/a%2Fb/history",  # would reach the UI as a/b
        b"/codec/decode%3Fx=1",  # InvalidURL upstream: was a 500
        b"/api/v1/namespaces/default/workflows/a%23b",
        b"/codec/%00",
    ],
)
async def test_paths_the_rules_cannot_read_safely_are_refused(path: bytes) -> None:
    assert await raw_status(path) == 400


async def test_only_the_codec_endpoints_pass_to_the_api() -> None:
    assert await raw_status(b"/codec/decode") == 200
    assert await raw_status(b"/codec/anything-else") == 404
