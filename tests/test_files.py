"""Uploads and downloads over the API and the pages, in this process on a test database: the size
limit (413), the type read from the content (415), sanitised names, nothing half-stored when an
upload breaks off, the same bytes stored once, a closed project's files sealed at rest and read
only under need-to-know, every download audited, CSRF on the pages' upload forms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from domain.programme import PROGRAMME_CODE
from domain.security import Level
from services import files as files_service
from storage.models import AuditEntry, Document, Gate, NeedToKnowGrant, ProgressReport, Project, ReviewTask, StoredFile
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_web_pages import EN, sign_in

OPEN, CLOSED = "KP-FILES-OPEN", "KP-FILES-CLOSED"
PM, CLEARED, UNCLEARED = "pm.sato", "rev.ito", "rev.mori"
LIMIT = 200_000
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 4000


def project(pid: str, closed: bool = False) -> Project:
    return Project(
        id=pid,
        programme_code=PROGRAMME_CODE,
        workflow_id=f"project-{pid}",
        title="量子センサー" if not closed else "秘匿センサー",
        organisation="Tokai Quantum Consortium",
        performer="perf.aoki",
        programme_manager=PM,
        funding_ministry="METI",
        research_vision="sensing",
        classification="closed" if closed else "open",
        label_level=int(Level.SECRET) if closed else 0,
        label_compartments=["QS"] if closed else [],
        start_trl=1,
        target_trl=6,
        current_trl=2,
        status="active",
        total_budget=300_000_000,
        reviewers=[CLEARED, UNCLEARED],
        public_use_ministries=["METI"],
    )


async def seed(api: InProcessApi) -> None:
    """Both projects with gate 1 open; the two reviewers have accepted its review (so the rule
    that decides their downloads is clearance and need-to-know); the closed one granted to the
    PM and the cleared reviewer."""
    async with api.sessionmaker.begin() as s:
        s.add_all([project(OPEN), project(CLOSED, closed=True)])
        await s.flush()
        s.add_all([NeedToKnowGrant(project_id=CLOSED, username=u, granted_by="admin") for u in (PM, CLEARED)])
        for pid in (OPEN, CLOSED):
            s.add(Gate(project_id=pid, gate_no=1, status="open", round=1, definition={}, opened_at=datetime.now(UTC)))
            for reviewer in (CLEARED, UNCLEARED):
                s.add(
                    ReviewTask(
                        id=f"{pid}-g1-{reviewer}", project_id=pid, gate_no=1, reviewer=reviewer, status="accepted"
                    )
                )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def api(sqlite_url: str, data_dir: Path) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, data_dir=data_dir, max_upload_bytes=LIMIT) as api:
        await seed(api)
        yield api


async def upload(
    api: InProcessApi, content: bytes, name: str = "result.pdf", pid: str = OPEN, ref: str = "1", user: str = PM
) -> httpx.Response:
    return await api.call(
        "POST",
        f"/projects/{pid}/files",
        user,
        params={"kind": "evidence", "ref": ref},
        files={"file": (name, content, "application/pdf")},
    )


def blobs(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


async def rows(api: InProcessApi) -> int:
    async with api.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(StoredFile)) or 0)


async def nothing_stored(api: InProcessApi, data_dir: Path) -> None:
    # No blob, no row, and no temporary file left in the incoming folder.
    assert blobs(data_dir) == []
    assert await rows(api) == 0


async def test_an_upload_is_listed_with_its_hash_and_downloads_the_same_bytes_audited(
    api: InProcessApi, data_dir: Path
) -> None:
    import hashlib

    answer = await upload(api, PDF, "試験結果.pdf")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest() and body["size"] == len(PDF)
    assert body["content_type"] == "application/pdf" and body["name"] == "試験結果.pdf" and not body["encrypted"]
    listed = await api.call("GET", f"/projects/{OPEN}/files", PM, params={"kind": "evidence", "ref": "1"})
    assert [f["id"] for f in listed.json()] == [body["id"]]
    got = await api.call("GET", f"/files/{body['id']}", CLEARED)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["x-trlgate-sha256"] == body["sha256"]
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    async with api.sessionmaker() as s:
        audited = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "file_download"))).all()
    assert [(a.actor, a.target, a.outcome) for a in audited] == [(CLEARED, f"file:{body['id']}", "ok")]


async def test_the_same_bytes_uploaded_twice_are_stored_once(api: InProcessApi, data_dir: Path) -> None:
    first = await upload(api, PDF, "a.pdf")
    again = await upload(api, PDF, "renamed.pdf")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]  # one attachment
    other_gate = await upload(api, PDF, "a.pdf", ref="2")
    assert other_gate.status_code == 201 and other_gate.json()["id"] != first.json()["id"]
    assert len(blobs(data_dir)) == 1 and await rows(api) == 2  # two attachments, one blob
    assert blobs(data_dir)[0].read_bytes() == PDF


async def test_a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored(
    api: InProcessApi, data_dir: Path
) -> None:
    big = await upload(api, PDF * (LIMIT // len(PDF) + 1))
    assert big.status_code == 413
    assert f"larger than the {LIMIT} bytes" in big.json()["detail"]
    await nothing_stored(api, data_dir)
    assert list((data_dir / "blobs" / ".incoming").iterdir()) == []


async def test_a_program_disguised_by_its_name_is_refused_with_415(api: InProcessApi, data_dir: Path) -> None:
    refused = await upload(api, EXE, "report.pdf")
    assert refused.status_code == 415
    assert "report.pdf" in refused.json()["detail"] and "allowed: PDF" in refused.json()["detail"]
    await nothing_stored(api, data_dir)


async def test_path_traversal_names_are_sanitised(api: InProcessApi, data_dir: Path, tmp_path: Path) -> None:
    answer = await upload(api, b"a,b\n1,2\n", "../../../../etc/cron.d/evil.csv")
    assert answer.status_code == 201 and answer.json()["name"] == "evil.csv"
    assert answer.json()["content_type"] == "text/csv"
    windows = await upload(api, b"plain words\n", "..\\..\\boot.ini\u202etxt.exe", ref="2")
    assert windows.json()["name"] == "boot.initxt.exe"
    assert not (tmp_path / "etc").exists() and not (data_dir / "etc").exists()
    assert all((data_dir / "blobs") in p.parents for p in blobs(data_dir))


def _multipart(content: bytes, name: str = "result.pdf") -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", files={"file": (name, content, "application/pdf")})
    return request.read(), request.headers["content-type"]


async def _asgi(api: InProcessApi, path: str, headers: list[tuple[bytes, bytes]], receive: Any) -> list[dict[str, Any]]:
    """Call the application directly (to break the body off the way a client going away does)."""
    app = api.http._transport.app  # type: ignore[attr-defined]
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"trlgate.test"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("trlgate.test", 80),
        "app": app,
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception:  # the app may raise after a disconnect: the test looks at what is stored
        pass
    return sent


async def test_an_upload_the_client_breaks_off_leaves_no_blob_and_no_row(api: InProcessApi, data_dir: Path) -> None:
    body, content_type = _multipart(PDF * 4)
    messages = [
        {"type": "http.request", "body": body[:5000], "more_body": True},
        {"type": "http.request", "body": body[5000:9000], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    auth = api.headers(PM)["Authorization"].encode()
    await _asgi(
        api,
        f"/projects/{OPEN}/files?kind=evidence&ref=1",
        [(b"authorization", auth), (b"content-type", content_type.encode())],
        receive,
    )
    assert messages == []  # the body was read up to the break
    await nothing_stored(api, data_dir)
    assert list((data_dir / "blobs" / ".incoming").iterdir()) == []


async def test_an_error_mid_stream_or_at_the_row_leaves_nothing_half_stored(
    api: InProcessApi, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = 0
    original = files_service._Incoming.write

    async def disk_full(self: Any, data: bytes) -> None:
        nonlocal written
        written += 1
        if written > 1:
            raise OSError(28, "No space left on device")
        await original(self, data)

    monkeypatch.setattr(files_service._Incoming, "write", disk_full)
    body, content_type = _multipart(PDF * 3)
    failed = await api.http.post(
        f"/projects/{OPEN}/files",
        params={"kind": "evidence", "ref": "1"},
        headers={**api.headers(PM), "content-type": content_type},
        content=_chunked(body),
    )
    assert failed.status_code == 500 and written > 1
    await nothing_stored(api, data_dir)
    monkeypatch.setattr(files_service._Incoming, "write", original)

    def audit_fails(*_: Any, **__: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(files_service, "audit", audit_fails)
    assert (await upload(api, PDF)).status_code == 500
    await nothing_stored(api, data_dir)  # the blob stored for the row that failed is taken back
    assert list((data_dir / "blobs" / ".incoming").iterdir()) == []

    def conflict(*_: Any, **__: Any) -> None:  # a constraint that is not the same bytes' at once
        raise IntegrityError("INSERT INTO files", {}, Exception("some other constraint"))

    monkeypatch.setattr(files_service, "audit", conflict)
    assert (await upload(api, PDF)).status_code == 500
    await nothing_stored(api, data_dir)


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 4096):
        yield body[i : i + 4096]


async def test_a_closed_projects_file_is_sealed_on_disk_and_read_only_under_need_to_know(
    api: InProcessApi, data_dir: Path
) -> None:
    secret = b"%PDF-1.7\n" + "秘匿の試験結果".encode() * 2000 + b"\n%%EOF\n"
    answer = await upload(api, secret, "秘.pdf", pid=CLOSED)
    assert answer.status_code == 201 and answer.json()["encrypted"] is True
    (stored,) = blobs(data_dir)
    assert "sealed" in stored.parts
    on_disk = stored.read_bytes()
    assert on_disk != secret and "秘匿の試験結果".encode() not in on_disk and not on_disk.startswith(b"%PDF")
    file_id = answer.json()["id"]
    got = await api.call("GET", f"/files/{file_id}", CLEARED)
    assert got.status_code == 200 and got.content == secret
    refused = await api.call("GET", f"/files/{file_id}", UNCLEARED)
    assert refused.status_code in (403, 404) and "秘" not in refused.text
    assert (await api.call("GET", f"/projects/{CLOSED}/files", UNCLEARED)).status_code in (403, 404)
    outsider = await api.call("GET", f"/files/{file_id}", "pm.tanaka")  # no role reaches the project
    assert outsider.status_code == 404
    async with api.sessionmaker() as s:
        audited = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "file_download"))).all()
    assert [(a.actor, a.outcome) for a in audited] == [(CLEARED, "ok"), (UNCLEARED, "denied"), ("pm.tanaka", "denied")]


async def test_only_the_projects_pm_attaches_evidence(api: InProcessApi, data_dir: Path) -> None:
    assert (await upload(api, PDF, user=CLEARED)).status_code == 403
    assert (await upload(api, PDF, user="pm.tanaka")).status_code == 404  # not their project
    bad_ref = await upload(api, PDF, ref="../1")
    assert bad_ref.status_code == 422
    await nothing_stored(api, data_dir)


async def test_a_reviewer_reads_a_gates_evidence_only_after_accepting_its_review(api: InProcessApi) -> None:
    first = (await upload(api, PDF, ref="1")).json()["id"]
    second = (await upload(api, PDF + b"2", ref="2")).json()["id"]
    async with api.sessionmaker.begin() as s:
        s.add(Gate(project_id=OPEN, gate_no=2, status="open", round=1, definition={}, opened_at=datetime.now(UTC)))
        s.add(ReviewTask(id=f"{OPEN}-g2-{CLEARED}", project_id=OPEN, gate_no=2, reviewer=CLEARED, status="invited"))
    assert (await api.call("GET", f"/files/{first}", CLEARED)).status_code == 200  # accepted
    refused = await api.call("GET", f"/files/{second}", CLEARED)  # invited: no conflict declared yet
    assert refused.status_code == 403 and "after accepting" in refused.json()["detail"]
    listed = await api.call("GET", f"/projects/{OPEN}/files", CLEARED)
    assert [f["id"] for f in listed.json()] == [first]
    assert len((await api.call("GET", f"/projects/{OPEN}/files", PM)).json()) == 2


async def test_a_reports_attachment_is_read_by_those_who_read_its_report(api: InProcessApi) -> None:
    attached = await api.call(
        "POST",
        f"/projects/{OPEN}/files",
        "perf.aoki",
        params={"kind": "report", "ref": "2026"},
        files={"file": ("r.pdf", PDF)},
    )
    assert attached.status_code == 201, attached.text
    file_id = attached.json()["id"]
    for reader in ("perf.aoki", PM, "admin"):
        assert (await api.call("GET", f"/files/{file_id}", reader)).status_code == 200, reader
    # A reviewer of the project's gates (who reads its evidence) does not read its reports.
    assert (await api.call("GET", f"/files/{file_id}", CLEARED)).status_code in (403, 404)
    assert file_id not in [f["id"] for f in (await api.call("GET", f"/projects/{OPEN}/files", CLEARED)).json()]


async def test_no_file_joins_evidence_or_a_report_that_has_gone_in(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        s.add(
            Document(
                id=f"{OPEN}-g1-r1-evidence",
                project_id=OPEN,
                kind="gate_evidence",
                template="evidence.json",
                content="{}",
                sha256="0" * 64,
            )
        )
        s.add(
            ProgressReport(
                project_id=OPEN,
                fiscal_year=2026,
                status="accepted",
                summary="a good year",
                submitted_by=PM,
                submitted_at=datetime.now(UTC),
            )
        )
    late = await upload(api, PDF, ref="1")
    assert late.status_code == 409 and "is in already" in late.json()["detail"]
    report = await api.call(
        "POST", f"/projects/{OPEN}/files", PM, params={"kind": "report", "ref": "2026"}, files={"file": ("r.pdf", PDF)}
    )
    assert report.status_code == 409 and "accepted" in report.json()["detail"]
    assert await rows(api) == 0


# ---- the pages -----------------------------------------------------------------------------------


@asynccontextmanager
async def _signed_in(api: InProcessApi, user: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = api.http._transport  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, user, DEMO_PASSWORD, EN)).status_code == 303
        yield http


def _form(token: str | None, content: bytes, name: str, token_first: bool = True) -> tuple[bytes, str]:
    boundary = "----trlgate-test-boundary"
    token_part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\n{token}\r\n'.encode()
        if token is not None
        else b""
    )
    file_part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + b"\r\n"
    )
    parts = token_part + file_part if token_first else file_part + token_part
    return parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def test_the_pages_upload_form_is_csrf_protected_and_its_refusals_have_reasons(
    api: InProcessApi, data_dir: Path
) -> None:
    async with _signed_in(api, PM) as http:
        token = http.cookies["csrftoken"]
        url = f"/app/projects/{OPEN}/files?kind=evidence&ref=1"
        for bad in (
            _form(None, PDF, "a.pdf"),
            _form("forged", PDF, "a.pdf"),
            _form(token, PDF, "a.pdf", token_first=False),
        ):
            refused = await http.post(url, content=bad[0], headers={"content-type": bad[1], **EN})
            assert refused.status_code == 403 and "CSRF" in refused.text
        await nothing_stored(api, data_dir)
        body, content_type = _form(token, PDF, "../試験.pdf")
        done = await http.post(url, content=body, headers={"content-type": content_type, **EN})
        assert done.status_code == 303, done.text
        assert done.headers["location"].startswith(f"/app/projects/{OPEN}/gates/1?uploaded=f-")
        file_id = done.headers["location"].rsplit("=", 1)[1]
        got = await http.get(f"/app/files/{file_id}")
        assert got.status_code == 200 and got.content == PDF
        assert "試験.pdf" in got.headers["content-disposition"] or "%E8%A9%A6" in got.headers["content-disposition"]
        exe, content_type = _form(token, EXE, "report.pdf")
        wrong = await http.post(url, content=exe, headers={"content-type": content_type, **EN})
        assert wrong.status_code == 415 and "allowed: PDF" in wrong.text and 'type="file"' in wrong.text
        huge, content_type = _form(token, PDF * (LIMIT // len(PDF) + 1), "big.pdf")
        too_big = await http.post(url, content=huge, headers={"content-type": content_type, **EN})
        assert too_big.status_code == 413 and f"larger than the {LIMIT} bytes" in too_big.text
    assert await rows(api) == 1
