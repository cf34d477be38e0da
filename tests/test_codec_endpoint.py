"""The codec endpoint's decisions at their edges, through real HTTP: stamps that could name more
than one project, stamps that name no project row, bounded and aggregated requests, and refusals
that name nothing of the keyring. Projects are inserted as rows (no workflow runs): the endpoint
decides from the stamp and the rows alone."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from api.proposals import proposal_problems
from api.routes.codec import MAX_PAYLOADS
from connection.codec import EncryptionCodec, Keyring
from domain.programme import PROGRAMME_CODE
from storage.models import AuditEntry
from storage.projects import insert_project
from tests.api_stack import ApiStack, api_stack
from tests.support import proposal
from tests.test_api_lifecycle import proposal_body
from workflows.gate_review import gate_workflow_id
from workflows.project import workflow_id_for

# The API's keyring, with ids no other text in a response contains.
RING = Keyring.generate("ring-alpha-7f3a").rotated("ring-beta-9c2e")
SECRET = b'"closed result: drift below 0.001 deg/h"'
CLOSED = {"classification": "closed", "label": {"level": 2, "compartments": ["QS"]}}
CLEARED, UNCLEARED = "ops.hayashi", "ops.kimura"  # SECRET/QS and granted below; no clearance


@pytest.fixture
async def stack(local_client: Client, flow_db_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, flow_db_url, task_queue, seconds_per_day=0.0, codec_keys=RING.dump()) as s:
        yield s


async def add_project(stack: ApiStack, project_id: str, closed: bool) -> None:
    """A project's row as the API writes it at the start; a closed one granted to the cleared ops user."""
    async with stack.sessionmaker.begin() as session:
        await insert_project(
            session,
            PROGRAMME_CODE,
            workflow_id_for(project_id),
            proposal(project_id=project_id, **(CLOSED if closed else {})),
        )
    if closed:
        r = await stack.call(
            "POST", f"/projects/{project_id}/grants", "admin", json={"username": CLEARED, "reason": "ops"}
        )
        assert r.status_code == 201, r.text


def sealed(workflow_id: str | None, data: bytes = SECRET, ring: Keyring = RING) -> dict[str, Any]:
    payload = EncryptionCodec(ring, workflow_id).seal(Payload(metadata={"encoding": b"json/plain"}, data=data))
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


async def decode(stack: ApiStack, user: str, payloads: list[dict[str, Any]]) -> list[bytes | None]:
    """Each payload's opened data, or None where it came back sealed."""
    r = await stack.call("POST", "/codec/decode", user, json={"payloads": payloads})
    assert r.status_code == 200, r.text
    return [
        None if out == sent else base64.b64decode(out["data"])
        for sent, out in zip(payloads, r.json()["payloads"], strict=True)
    ]


async def codec_audit(stack: ApiStack) -> list[AuditEntry]:
    async with stack.sessionmaker() as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.action == "codec_decode"))).all())


async def test_a_stamp_two_projects_could_own_opens_only_for_who_may_read_both(stack: ApiStack) -> None:
    """Project ids hold hyphens: `project-C-gate-1-r1` is closed C's gate child, and also the
    project workflow of an open project with the id `C-gate-1-r1`. Fail closed: the payload opens
    only for someone the closed candidate allows."""
    closed = "CX-closed"
    squatter = f"{closed}-gate-1-r1"  # a project id that is the closed project's child workflow's
    await add_project(stack, closed, closed=True)
    await add_project(stack, squatter, closed=False)
    child = sealed(gate_workflow_id(closed, 1, 1))
    assert workflow_id_for(squatter) == gate_workflow_id(closed, 1, 1)
    assert await decode(stack, UNCLEARED, [child]) == [None]
    assert await decode(stack, CLEARED, [child]) == [SECRET]
    entries = await codec_audit(stack)
    assert {(e.actor, e.target, e.outcome) for e in entries} == {
        (UNCLEARED, f"project:{closed}", "denied"),
        (CLEARED, f"project:{closed}", "ok"),
    }


async def test_a_project_id_that_would_share_child_workflow_ids_is_refused(stack: ApiStack) -> None:
    """A project id hyphen-prefixed by an existing one, or the hyphen-prefix of one, would squat on
    the other's child workflow ids (`project-<id>-gate-N-rM`, ...): 422, naming no other project."""
    await add_project(stack, "SQ-closed", closed=True)
    await add_project(stack, "SQ2-a-b", closed=False)
    for squatter in ("SQ-closed-gate-1-r1", "SQ-closed-handoff-MOD", "SQ2-a", "SQ2"):
        r = await stack.call("POST", "/projects", "pm.sato", json=proposal_body(project_id=squatter))
        assert r.status_code == 422 and "would share workflow ids with another project" in r.text, r.text
        assert "SQ-closed" not in r.text.replace(squatter, "") and "SQ2-a-b" not in r.text
    # Nor may one take the prefix of the ids the API generates (`KP-<year>-<hex>`).
    for reserved in ("KP-2026", "KP-1999"):
        r = await stack.call("POST", "/projects", "pm.sato", json=proposal_body(project_id=reserved))
        assert r.status_code == 422 and "is reserved" in r.text, r.text
    async with stack.sessionmaker() as session:
        # A shared prefix that is not a whole hyphen-separated part, or the same id, is no such problem.
        # Workflow ids are case-sensitive: `sq2-a` shares none with `SQ2-a-b`.
        for fine in ("SQ-closedX", "SQ2-ab", "SQ2-a-bc", "SQ-close", "sq2-a", "sq-closed-gate-1-r1"):
            problems = await proposal_problems(session, proposal(project_id=fine))
            assert not any("share workflow ids" in p for p in problems), (fine, problems)


async def test_a_closed_project_id_is_generic(stack: ApiStack) -> None:
    """Workflow ids are shown in clear in the Temporal UI: a closed project's id is KP- and groups
    of digits and a-f (as generated), refused (422, with the rule) otherwise; open ones choose."""
    for named in ("KP-RAILGUN-1", "SONAR-2026", "KP-2026-Quantum"):
        r = await stack.call("POST", "/projects", "pm.sato", json=proposal_body(project_id=named) | CLOSED)
        assert r.status_code == 422 and "closed project's id is KP-" in r.text, r.text
    panel = {"reviewers": ["rev.ito", "rev.kato"]} | CLOSED  # cleared for the label
    generic = await stack.call("POST", "/projects", "pm.sato", json=proposal_body(project_id="KP-2026-0a1b") | panel)
    generated = await stack.call("POST", "/projects", "pm.sato", json=proposal_body() | panel)
    opened = await stack.call("POST", "/projects", "pm.sato", json=proposal_body(project_id="OPEN-SONAR-1"))
    assert [r.status_code for r in (generic, generated, opened)] == [201, 201, 201], (generic.text, generated.text)


async def test_a_stamp_naming_no_project_row_is_of_unknown_workflow(stack: ApiStack) -> None:
    """The API writes a project's row after its workflow starts: a payload stamped `project-<id>...`
    with no row yet (or a stamp of no project at all) could be any project's. It opens only for
    someone who may read every closed project, audited as unattributed."""
    await add_project(stack, "NR-closed", closed=True)
    await add_project(stack, "NR-open", closed=False)
    no_row = [sealed(workflow_id_for("NR-unwritten")), sealed(gate_workflow_id("NR-unwritten", 1, 1)), sealed("other")]
    opened = sealed(workflow_id_for("NR-open"), b'"open"')
    assert await decode(stack, UNCLEARED, [*no_row, opened]) == [None, None, None, b'"open"']
    assert await decode(stack, CLEARED, [*no_row, opened]) == [SECRET, SECRET, SECRET, b'"open"']
    entries = await codec_audit(stack)
    assert {(e.actor, e.target, e.outcome) for e in entries} == {
        (UNCLEARED, "codec:unattributed", "denied"),
        (CLEARED, "codec:unattributed", "ok"),
    }
    assert all(e.detail["payloads"] == 3 for e in entries)


async def test_one_request_is_bounded_and_audited_once_per_project(stack: ApiStack) -> None:
    await add_project(stack, "AG-closed", closed=True)
    await add_project(stack, "AG-open", closed=False)
    open_payload = sealed(workflow_id_for("AG-open"), b'"open"')
    closed = [sealed(workflow_id_for("AG-closed")), sealed(gate_workflow_id("AG-closed", 1, 1))] * 20
    assert await decode(stack, UNCLEARED, [*closed, open_payload]) == [None] * 40 + [b'"open"']
    assert (
        await decode(stack, CLEARED, [open_payload] * (MAX_PAYLOADS - 40) + closed)
        == [b'"open"'] * (MAX_PAYLOADS - 40) + [SECRET] * 40
    )
    entries = await codec_audit(stack)
    assert sorted((e.actor, e.target, e.outcome) for e in entries) == [
        (CLEARED, "project:AG-closed", "ok"),
        (UNCLEARED, "project:AG-closed", "denied"),
    ]
    for e in entries:
        assert e.detail["payloads"] == 40
        assert e.detail["workflow_ids"] == sorted([workflow_id_for("AG-closed"), gate_workflow_id("AG-closed", 1, 1)])
    # Bounded: at most MAX_PAYLOADS in one request (each decision is audited).
    r = await stack.call("POST", "/codec/decode", UNCLEARED, json={"payloads": [open_payload] * (MAX_PAYLOADS + 1)})
    assert r.status_code == 422 and f"at most {MAX_PAYLOADS}" in r.text, r.text[:500]
    r = await stack.call("POST", "/codec/encode", UNCLEARED, json={"payloads": [open_payload] * (MAX_PAYLOADS + 1)})
    assert r.status_code == 422


async def test_a_payload_of_a_key_the_keyring_lacks_is_refused_naming_no_key_ids(stack: ApiStack) -> None:
    stranger = sealed(None, ring=Keyring.generate("ring-gamma-0d41"))
    r = await stack.call("POST", "/codec/decode", CLEARED, json={"payloads": [stranger]})
    assert r.status_code == 422 and "a key this keyring does not hold" in r.text, r.text
    assert not any(kid in r.text for kid, _ in RING.keys)
