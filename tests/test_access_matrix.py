"""Protection of closed work, through real HTTP and a real Temporal server.

A table-driven access matrix: for each role and clearance, each endpoint on an open and on a closed
project answers what it should. The codec endpoint opens a closed project's payloads only for a
cleared ops user with a grant; everyone else sees ciphertext. And the raw Temporal history of the
closed project holds no plaintext of its hand-off package.
"""

from __future__ import annotations

import base64
import csv
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from sqlalchemy import select
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.pseudonyms import pseudonym
from connection.codec import ENCODING, FORMAT, WORKFLOW
from domain.gate_review import GateDecisionInput
from domain.handoff import HandoffBrief, HandoffKind, handoff_id, handoff_workflow_id
from domain.project import Decision
from domain.proposal import Proposal
from storage.models import AuditEntry, Notification
from tests.api_stack import JWT_SECRET, ApiStack, api_stack
from tests.support import PM, TEST_KEYRING, decide_gate, handoff_offered, proposal, review_round
from tests.unit.test_codec import sealed_v1
from workflows.project import workflow_id_for

SECRET = "SECRET-RESULT-7734: fibre-laser gyroscope drift below 0.001 deg/h"


def one_stage(**overrides: Any) -> Proposal:
    stages = [{"name": "Demonstration", "trl_in": 6, "trl_out": 7, "duration_days": 5, "budget": 100_000_000,
               "tranches": [{"offset_days": 0, "amount": 100_000_000}]}]  # fmt: skip
    data: dict[str, Any] = {
        "start_trl": 6,
        "target_trl": 7,
        "total_budget": 100_000_000,
        "stages": stages,
        "reviewers": ["rev.ito", "rev.kato"],
        "performer": "perf.aoki",
    }
    data.update(overrides)
    return proposal(**data)


@dataclass
class World:
    stack: ApiStack
    ids: dict[str, str]  # "open" / "closed" -> project id


async def test_a_closed_proposal_needs_a_cleared_pm_and_panel(world: World) -> None:
    closed = {"classification": "closed", "label": {"level": "SECRET", "compartments": ["QS"]}}
    for overrides, reason in (
        ({"reviewers": ["rev.ito", "rev.mori"]}, "reviewer 'rev.mori' is not cleared for the label SECRET QS"),
        ({"programme_manager": "pm.tanaka"}, "programme_manager 'pm.tanaka' is not cleared"),
        ({"classification": "open", "label": {"level": 1}}, "an open project carries no security label"),
    ):
        body = one_stage().model_dump(mode="json", exclude_none=True) | closed | overrides
        who = "pm.tanaka" if "programme_manager" in overrides else PM
        r = await world.stack.call("POST", "/projects", who, json=body)
        assert r.status_code == 422 and reason in r.text, r.text


async def to_handoff(stack: ApiStack, p: Proposal) -> str:
    r = await stack.call("POST", "/projects", PM, json=p.model_dump(mode="json", exclude_none=True))
    assert r.status_code == 201, r.text
    assert p.project_id is not None
    return p.project_id


@asynccontextmanager
async def made_world(client: Client, database_url: str) -> AsyncIterator[World]:
    async with api_stack(client, database_url, f"tq-{uuid.uuid4().hex[:8]}", seconds_per_day=0.0) as stack:
        ids: dict[str, str] = {}
        for kind in ("open", "closed"):
            extra: dict[str, Any] = (
                {"classification": "closed", "label": {"level": 2, "compartments": ["QS"]}} if kind == "closed" else {}
            )
            p = one_stage(**extra)
            pid = await to_handoff(stack, p)
            ids[kind] = pid
            if kind == "closed":
                for user in ("rev.ito", "rev.kato", "liaison.mod", "ops.hayashi"):
                    r = await stack.call(
                        "POST", f"/projects/{pid}/grants", "admin", json={"username": user, "reason": "panel/receiver"}
                    )
                    assert r.status_code == 201, r.text
                for user in ("rev.mori", "ops.kimura"):  # a grant never stands in for a clearance
                    r = await stack.call(
                        "POST", f"/projects/{pid}/grants", "admin", json={"username": user, "reason": "x" * 3}
                    )
                    assert r.status_code == 422 and "clearance does not cover" in r.text
            gate = await review_round(stack.client, p, 1)
            brief = HandoffBrief(results_summary=SECRET, ip_terms="Licensed to MOD only")
            await decide_gate(
                stack.client, p, gate, GateDecisionInput(decided_by=PM, decision=Decision.GO, handoff=brief)
            )
            for m in p.public_use_ministries:
                await handoff_offered(stack.client, pid, m)
        # rev.kato reviewed under a grant that is now revoked: cleared, but no longer need-to-know.
        r = await stack.call("DELETE", f"/projects/{ids['closed']}/grants/rev.kato", "admin")
        assert r.status_code == 200 and r.json()["revoked_by"] == "admin"
        yield World(stack, ids)


@pytest.fixture(scope="module")
async def world(local_env: WorkflowEnvironment, module_sqlite_url: str) -> AsyncIterator[World]:
    """One world for the module's tests that change no clearance and no grant (they read it; what
    they write, audit entries, each test tells apart), built once."""
    async with made_world(local_env.client, module_sqlite_url) as w:
        yield w


@pytest.fixture
async def own_world(local_client: Client, sqlite_url: str) -> AsyncIterator[World]:
    """A world of the test's own, for a test that clears users or grants need-to-know."""
    async with made_world(local_client, sqlite_url) as w:
        yield w


USERS = [
    "pm.sato",  # the projects' PM; SECRET/QS, granted
    "pm.tanaka",  # another PM: no role reaches these projects
    "rev.ito",  # on the panel; SECRET/QS, granted
    "rev.kato",  # on the panel; SECRET/QS, grant revoked
    "ops.hayashi",  # ops; SECRET/QS, granted
    "ops.kimura",  # ops; no clearance
    "fin.suzuki",  # finance; no clearance
    "liaison.mod",  # receiving ministry; SECRET/QS, granted
    "liaison.mlit",  # receiving ministry; no clearance
    "perf.aoki",  # the performer; no clearance
]
# Expected status per user: on the open project, on the closed one.
MATRIX: dict[str, dict[str, tuple[int, int]]] = {
    "project": {
        "pm.sato": (200, 200), "pm.tanaka": (404, 404), "rev.ito": (200, 200), "rev.kato": (200, 403),
        "ops.hayashi": (200, 200), "ops.kimura": (200, 403), "fin.suzuki": (200, 403),
        "liaison.mod": (200, 200), "liaison.mlit": (200, 403), "perf.aoki": (200, 403),
    },
    "package": {  # the MOD hand-off package (a document)
        "pm.sato": (200, 200), "pm.tanaka": (404, 404), "rev.ito": (200, 200), "rev.kato": (200, 403),
        "ops.hayashi": (200, 200), "ops.kimura": (200, 403), "fin.suzuki": (200, 403),
        "liaison.mod": (200, 200), "liaison.mlit": (200, 403), "perf.aoki": (200, 403),
    },
    "handoff": {  # the MOD hand-off record: another ministry's liaison does not see it at all
        "pm.sato": (200, 200), "pm.tanaka": (404, 404), "rev.ito": (200, 200), "rev.kato": (200, 403),
        "ops.hayashi": (200, 200), "ops.kimura": (200, 403), "fin.suzuki": (200, 403),
        "liaison.mod": (200, 200), "liaison.mlit": (404, 404), "perf.aoki": (200, 403),
    },
    "statement": {  # money lines: finance, ops and the PM; closed work needs clearance too
        "pm.sato": (200, 200), "pm.tanaka": (404, 404), "rev.ito": (403, 403), "rev.kato": (403, 403),
        "ops.hayashi": (200, 200), "ops.kimura": (200, 403), "fin.suzuki": (200, 403),
        "liaison.mod": (403, 403), "liaison.mlit": (403, 403), "perf.aoki": (403, 403),
    },
    "gate": {  # the gate's decision round view (decided: 409 for whoever may see the project)
        "pm.sato": (409, 409), "pm.tanaka": (404, 404), "rev.ito": (409, 409), "rev.kato": (409, 403),
        "ops.hayashi": (409, 409), "ops.kimura": (409, 403), "fin.suzuki": (409, 403),
        "liaison.mod": (409, 409), "liaison.mlit": (409, 403), "perf.aoki": (409, 403),
    },
    "listed": {  # 200 when GET /projects lists it, 404 when the list leaves it out
        "pm.sato": (200, 200), "pm.tanaka": (404, 404), "rev.ito": (200, 200), "rev.kato": (200, 404),
        "ops.hayashi": (200, 200), "ops.kimura": (200, 404), "fin.suzuki": (200, 404),
        "liaison.mod": (200, 200), "liaison.mlit": (200, 404), "perf.aoki": (200, 404),
    },
}  # fmt: skip


async def status_of(stack: ApiStack, endpoint: str, user: str, pid: str) -> int:
    if endpoint == "listed":
        r = await stack.call("GET", "/projects", user)
        assert r.status_code == 200
        return 200 if pid in {p["id"] for p in r.json()["items"]} else 404
    path = {
        "project": f"/projects/{pid}",
        "package": f"/documents/{handoff_id(pid, 'MOD')}-package",
        "handoff": f"/handoffs/{handoff_id(pid, 'MOD')}",
        "statement": f"/projects/{pid}/statement",
        "gate": f"/projects/{pid}/gates/1",
    }[endpoint]
    r = await stack.call("GET", path, user)
    if r.status_code == 403 and endpoint != "statement":
        assert "closed project" in r.text  # the refusal says why
    return r.status_code


async def test_the_access_matrix(own_world: World) -> None:
    world = own_world
    stack = world.stack
    got: dict[str, dict[str, tuple[int, int]]] = {}
    for endpoint, expected in MATRIX.items():
        got[endpoint] = {}
        for user in USERS:
            got[endpoint][user] = (
                await status_of(stack, endpoint, user, world.ids["open"]),
                await status_of(stack, endpoint, user, world.ids["closed"]),
            )
        assert got[endpoint] == expected, endpoint
    closed = world.ids["closed"]
    r = await stack.call("GET", f"/documents/{handoff_id(closed, 'MOD')}-package", "liaison.mod")
    assert SECRET in r.text and "SECRET QS" in r.text  # the cleared receiver reads the labelled package
    async with stack.sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.target == f"project:{closed}"))).all()
        denied = {e.actor for e in entries if e.action.startswith("read_closed") and e.outcome == "denied"}
        allowed = {e.actor for e in entries if e.action.startswith("read_closed") and e.outcome == "ok"}
        assert denied == {"pm.tanaka", "rev.kato", "ops.kimura", "fin.suzuki", "liaison.mlit", "perf.aoki"}
        assert {"pm.sato", "rev.ito", "ops.hayashi", "liaison.mod"} <= allowed
        lists = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "list_closed:projects"))).all()
        assert any(closed in e.detail["withheld"] for e in lists if e.actor == "ops.kimura")
        assert any(closed in e.detail["shown"] for e in lists if e.actor == "ops.hayashi")
        # A closed package goes only to a cleared liaison: MLIT has none, so its PM is told instead.
        notes = (await session.scalars(select(Notification).where(Notification.project_id == closed))).all()
        offered = {n.recipient for n in notes if n.kind == "handoff_offered"}
        assert offered == {"liaison.mod"}
        assert any(n.kind == "handoff_no_liaison" and n.recipient == PM for n in notes)

    # The security officer clears rev.mori by level name; then a grant opens the closed project.
    body = {"level": "SECRET", "compartments": ["QS"]}
    assert (await stack.call("PUT", "/users/rev.mori/clearance", PM, json=body)).status_code == 403
    bad = await stack.call("PUT", "/users/rev.mori/clearance", "admin", json={"level": "COSMIC"})
    assert bad.status_code == 422 and "unknown level" in bad.text
    r = await stack.call("PUT", "/users/rev.mori/clearance", "admin", json=body)
    assert r.status_code == 200 and r.json() == {"username": "rev.mori", **body}
    assert (await stack.call("GET", f"/projects/{closed}", "rev.mori")).status_code == 404  # not on its panel
    r = await stack.call(
        "POST", f"/projects/{closed}/grants", "admin", json={"username": "rev.mori", "reason": "x" * 3}
    )
    assert r.status_code == 201, r.text
    grants = (await stack.call("GET", f"/projects/{closed}/grants", "admin")).json()
    assert {g["username"] for g in grants if g["revoked_at"] is None} == {
        "pm.sato", "rev.ito", "liaison.mod", "ops.hayashi", "rev.mori"
    }  # fmt: skip


def _payloads(history: Any) -> list[dict[str, Any]]:
    """Every payload in a history, in the codec endpoint's JSON shape, but the two kinds Temporal
    must read itself: search attributes (indexed for the UI's queries) and patch markers."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "metadata" in node and "data" in node and "encoding" in node["metadata"]:
                found.append({"metadata": node["metadata"], "data": node["data"]})
                return
            for key, value in node.items():
                if key not in ("searchAttributes", "patch-data"):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for event in history.events:
        walk(MessageToDict(event))
    return found


async def test_raw_history_has_no_plaintext_and_the_codec_opens_it_only_for_cleared_ops(world: World) -> None:
    stack = world.stack
    closed = world.ids["closed"]
    histories = [
        await stack.client.get_workflow_handle(wid).fetch_history()
        for wid in (workflow_id_for(closed), handoff_workflow_id(closed, "MOD", HandoffKind.FINAL))
    ]
    for history in histories:  # the raw bytes Temporal stores and its UI shows
        raw = b"".join(event.SerializeToString() for event in history.events)
        assert b"SECRET-RESULT-7734" not in raw and b"fibre-laser" not in raw
    # What ops see beside the payloads: the summary (even decoded) names no closed work.
    described = await stack.client.get_workflow_handle(workflow_id_for(closed)).describe()
    summary = await described.static_summary() or ""
    assert summary.startswith(f"{closed}: closed project (SECRET)") and one_stage().title not in summary
    open_described = await stack.client.get_workflow_handle(workflow_id_for(world.ids["open"])).describe()
    assert one_stage().title in (await open_described.static_summary() or "")
    payloads = [p for h in histories for p in _payloads(h)]
    assert payloads and all(base64.b64decode(p["metadata"]["encoding"]) == ENCODING for p in payloads)
    # Each is stamped with its workflow (bound into its tag), so the codec can decide per project.
    assert all(WORKFLOW in p["metadata"] and FORMAT in p["metadata"] for p in payloads)

    def plaintext(body: dict[str, Any]) -> bytes:
        return b"".join(base64.b64decode(p.get("data", "")) for p in body["payloads"])

    cleared = await stack.call("POST", "/codec/decode", "ops.hayashi", json={"payloads": payloads})
    assert cleared.status_code == 200, cleared.text
    assert b"SECRET-RESULT-7734" in plaintext(cleared.json())  # it was there all along, sealed
    uncleared = await stack.call("POST", "/codec/decode", "ops.kimura", json={"payloads": payloads})
    assert uncleared.status_code == 200
    assert b"SECRET-RESULT-7734" not in plaintext(uncleared.json())
    assert uncleared.json()["payloads"] == payloads  # left sealed: ciphertext in the UI
    not_ops = await stack.call("POST", "/codec/decode", PM, json={"payloads": payloads})
    assert not_ops.status_code == 403 and "ops" in not_ops.text
    assert (await stack.http.post("/codec/decode", json={"payloads": payloads})).status_code == 401
    # The open project's payloads open for any ops user.
    open_history = await stack.client.get_workflow_handle(workflow_id_for(world.ids["open"])).fetch_history()
    opened = await stack.call("POST", "/codec/decode", "ops.kimura", json={"payloads": _payloads(open_history)})
    assert b"SECRET-RESULT-7734" in plaintext(opened.json())
    # Encode seals; the sealed payload opens again through decode.
    sealed = await stack.call(
        "POST",
        "/codec/encode",
        "ops.kimura",
        json={
            "payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": "eyJ4IjogMX0="}]
        },
    )
    [one] = sealed.json()["payloads"]
    assert base64.b64decode(one["metadata"]["encoding"]) == ENCODING
    # Sealed without a workflow, it could be any project's: it opens for whoever may read them all.
    back = await stack.call("POST", "/codec/decode", "ops.hayashi", json={"payloads": [one]})
    assert back.json()["payloads"][0]["data"] == "eyJ4IjogMX0="
    bad = await stack.call("POST", "/codec/decode", "ops.kimura", json={"payloads": [{"metadata": {}, "data": "!!"}]})
    assert bad.status_code == 422 and "base64" in bad.text
    # In a browser without the UI's login: a codec session cookie, sent with the UI's requests.
    async with httpx.AsyncClient(base_url=stack.base_url) as browser:
        origin = {"Origin": "http://127.0.0.1:8233", "Access-Control-Request-Method": "POST"}
        preflight = await browser.options("/codec/decode", headers=origin)
        assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert (await browser.post("/codec/decode", json={"payloads": payloads})).status_code == 401
        refused = await browser.post("/codec/session", headers=await stack.login(PM))
        assert refused.status_code == 403 and "trlgate_codec" not in browser.cookies
        r = await browser.post("/codec/session", headers=await stack.login("ops.hayashi"))
        assert r.status_code == 204 and "httponly" in r.headers["set-cookie"].lower()
        by_cookie = await browser.post("/codec/decode", json={"payloads": payloads})  # no Authorization header
        assert by_cookie.status_code == 200 and b"SECRET-RESULT-7734" in plaintext(by_cookie.json())
        await browser.delete("/codec/session")
        assert (await browser.post("/codec/decode", json={"payloads": payloads})).status_code == 401
    async with stack.sessionmaker() as session:
        refusals = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "codec_decode", AuditEntry.outcome == "denied")
            )
        ).all()
        assert refusals and {e.actor for e in refusals} == {"ops.kimura"}


def _relabel(payload: dict[str, Any], drop: str | None = None, **changes: bytes) -> dict[str, Any]:
    metadata = {k: v for k, v in payload["metadata"].items() if k != drop}
    metadata |= {k.replace("_", "-"): base64.b64encode(v).decode() for k, v in changes.items()}
    return {"metadata": metadata, "data": payload["data"]}


async def test_the_codec_endpoint_opens_nothing_a_stamp_cannot_prove(world: World) -> None:
    """The workflow stamp is bound into the tag: stripped or rewritten, the payload does not open
    (422). A payload of unknown workflow (unstamped, or sealed before the stamp was bound) opens
    only for someone who may read every closed project."""
    stack = world.stack
    closed, opened = world.ids["closed"], world.ids["open"]
    history = await stack.client.get_workflow_handle(
        handoff_workflow_id(closed, "MOD", HandoffKind.FINAL)
    ).fetch_history()
    payloads = _payloads(history)
    cleared = (await stack.call("POST", "/codec/decode", "ops.hayashi", json={"payloads": payloads})).json()
    secret = next(
        p for p, c in zip(payloads, cleared["payloads"], strict=True) if b"SECRET-RESULT" in base64.b64decode(c["data"])
    )
    assert base64.b64decode(secret["metadata"][WORKFLOW]).startswith(workflow_id_for(closed).encode())
    for tampered in (
        _relabel(secret, drop=WORKFLOW),  # stamp stripped
        _relabel(secret, trlgate_workflow=workflow_id_for(opened).encode()),  # stamp of an open project
        _relabel(secret, drop=FORMAT),  # downgraded to format 1, whose tag bound only the key id
        _relabel(secret, encryption_key_id=b"other"),  # relabelled to another key
        {"metadata": secret["metadata"], "data": base64.b64encode(b"short").decode()},  # truncated
    ):
        for user in ("ops.kimura", "ops.hayashi"):
            r = await stack.call("POST", "/codec/decode", user, json={"payloads": [tampered]})
            assert r.status_code == 422 and "does not open" in r.text, r.text
            assert "SECRET-RESULT" not in r.text

    # Format 1 (before the fix): its stamp proves nothing, so it counts as "any project's".
    old = sealed_v1(
        TEST_KEYRING, Payload(metadata={"encoding": b"json/plain"}, data=SECRET.encode()), workflow_id_for(opened)
    )
    old_json = {
        "metadata": {k: base64.b64encode(v).decode() for k, v in old.metadata.items()},
        "data": base64.b64encode(old.data).decode(),
    }
    r = await stack.call("POST", "/codec/decode", "ops.hayashi", json={"payloads": [old_json]})
    assert r.status_code == 200 and base64.b64decode(r.json()["payloads"][0]["data"]) == SECRET.encode()
    r = await stack.call("POST", "/codec/decode", "ops.kimura", json={"payloads": [old_json]})
    assert r.status_code == 200 and r.json()["payloads"] == [old_json]  # left sealed
    # Sealed without a workflow (the UI's encode): the same rule.
    plain_in = {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(b'"x"').decode(),
    }
    [unstamped] = (await stack.call("POST", "/codec/encode", "ops.kimura", json={"payloads": [plain_in]})).json()[
        "payloads"
    ]
    assert WORKFLOW not in unstamped["metadata"]
    r = await stack.call("POST", "/codec/decode", "ops.kimura", json={"payloads": [unstamped]})
    assert r.status_code == 200 and r.json()["payloads"] == [unstamped]
    r = await stack.call("POST", "/codec/decode", "ops.hayashi", json={"payloads": [unstamped]})
    assert r.json()["payloads"] == [plain_in]
    async with stack.sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).where(AuditEntry.target == "codec:unattributed"))).all()
        assert {(e.actor, e.outcome) for e in rows} == {("ops.kimura", "denied"), ("ops.hayashi", "ok")}
        assert all(closed in e.detail["denied"] for e in rows if e.outcome == "denied")


def _ledger(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))  # Excel's byte-order mark


async def test_finance_sees_a_closed_project_it_may_not_read_under_a_pseudonym(own_world: World) -> None:
    world = own_world
    stack = world.stack
    closed = world.ids["closed"]
    # fin.yamada is cleared and granted by the security officer; fin.suzuki is not.
    r = await stack.call(
        "PUT", "/users/fin.yamada/clearance", "admin", json={"level": "SECRET", "compartments": ["QS"]}
    )
    assert r.status_code == 200
    r = await stack.call(
        "POST", f"/projects/{closed}/grants", "admin", json={"username": "fin.yamada", "reason": "audit"}
    )
    assert r.status_code == 201, r.text
    uncleared = await stack.call("GET", "/fund/ledger.csv", "fin.suzuki")
    granted = await stack.call("GET", "/fund/ledger.csv", "fin.yamada")
    assert uncleared.status_code == granted.status_code == 200
    assert closed in granted.text and closed not in uncleared.text
    rows, real = _ledger(uncleared.text), _ledger(granted.text)
    assert len(rows) == len(real) and sum(int(r["amount"]) for r in rows) == sum(int(r["amount"]) for r in real)
    by_kind = {(r["kind"], r["account"].split(":")[0]): int(r["amount"]) for r in real if r["project_id"] == closed}
    alias = pseudonym(JWT_SECRET, closed)
    hidden = [r for r in rows if r["project_id"] == alias]
    assert hidden and {(r["kind"], r["account"].split(":")[0]): int(r["amount"]) for r in hidden} == by_kind
    assert any(r["account"] == f"reservation:{alias}" for r in hidden)
    assert any(r["business_key"].startswith(f"pay:{alias}:") for r in hidden)
    # Stable: the same pseudonym in the next export, for the next reader who may not read it.
    r = await stack.call(
        "PUT", "/users/fin.suzuki/clearance", "admin", json={"level": "SECRET", "compartments": ["QS"]}
    )
    assert (await stack.call("GET", "/fund/ledger.csv", "fin.suzuki")).text == uncleared.text  # cleared, no grant
    # A filter by the real id confirms nothing (as an unknown id); by the pseudonym it finds the rows.
    as_unknown = await stack.call("GET", "/fund/ledger.csv?project_id=NO-SUCH-PROJECT", "fin.suzuki")
    by_real = await stack.call("GET", f"/fund/ledger.csv?project_id={closed}", "fin.suzuki")
    assert by_real.status_code == 200 and _ledger(by_real.text) == _ledger(as_unknown.text) == []
    by_alias = await stack.call("GET", f"/fund/ledger.csv?project_id={alias}", "fin.suzuki")
    assert _ledger(by_alias.text) == hidden
    assert len(_ledger((await stack.call("GET", f"/fund/ledger.csv?project_id={closed}", "fin.yamada")).text)) == len(
        hidden
    )
    # Correcting a closed project's books needs what reading it needs, and the refusal names no project.
    [reservation] = [r["transaction_id"] for r in hidden if r["kind"] == "reserve" and r["amount"].startswith("-")]
    r = await stack.call("POST", f"/fund/transactions/{reservation}/reverse", "fin.suzuki", json={"reason": "typo"})
    assert r.status_code == 403 and "closed work" in r.text and closed not in r.text, r.text
    r = await stack.call("POST", f"/fund/transactions/{reservation}/reverse", "fin.yamada", json={"reason": "typo"})
    assert r.status_code == 409 and f"reserve:{closed}:1" in r.text, r.text  # paid from: refused on its merits
    # A filter that is no project id is a 422, not a header the server cannot write.
    for bad in ("%E2%98%83", "a%0D%0Ab", "x" * 41):
        assert (await stack.call("GET", f"/fund/ledger.csv?project_id={bad}", "fin.suzuki")).status_code == 422
    async with stack.sessionmaker() as session:
        rows_audited = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "list_closed:ledger"))
        ).all()
        assert all(closed in e.detail["withheld"] for e in rows_audited if e.actor == "fin.suzuki")
        assert any(closed in e.detail["shown"] for e in rows_audited if e.actor == "fin.yamada")
        corrections = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "read_closed:reverse"))
        ).all()
        assert {(e.actor, e.outcome) for e in corrections} == {("fin.suzuki", "denied"), ("fin.yamada", "ok")}


async def test_a_closed_projects_search_attributes_and_summary_name_no_closed_work(world: World) -> None:
    """Search attributes are never sealed (Temporal indexes them, `temporal workflow list` shows
    them to anyone with namespace access): a closed project's carry only generic values."""
    p = one_stage()
    words = (p.title, p.organisation, p.research_vision, p.stage_plan[0].name)
    seen: dict[str, dict[str, object]] = {}
    for kind, pid in world.ids.items():
        described = await world.stack.client.get_workflow_handle(workflow_id_for(pid)).describe()
        seen[kind] = {pair.key.name: pair.value for pair in described.typed_search_attributes}
        seen[kind]["details"] = await described.static_details()
    closed = seen["closed"]
    assert closed["Stage"] == "stage 1" and closed["TRL"] == 7 and closed["ProjectStatus"] == "handoff"
    assert closed["details"] is None
    assert not [w for w in words for v in closed.values() if w in str(v)], closed
    # An open project still says what it is.
    assert seen["open"]["Stage"] == "Demonstration" and p.research_vision in str(seen["open"]["details"])
