"""What workflows are sent of the files: references and hashes, never bytes. The progress report
and the evidence package carry the files attached to them when they are submitted; the hand-off
package lists the annexes it was rendered with, by SHA-256."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from activities.documents import render
from activities.handoffs import HANDOFF_PACKAGE_TEMPLATE
from domain.files import FileRef
from domain.gate_review import EvidenceInput
from domain.handoff import HandoffBrief
from domain.project import ProgressReportInput
from storage.models import Gate
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.test_files import OPEN, PDF, PM, project


class Recording:
    """Temporal's client as far as a command goes: the Update's argument is kept, then refused
    (what the workflow answers does not matter here)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def get_workflow_handle(self, _workflow_id: str) -> Recording:
        return self

    async def execute_update(self, _update: Any, arg: Any, **_: Any) -> Any:
        self.sent.append(arg)
        raise RuntimeError("recorded")


@pytest.fixture
def temporal() -> Recording:
    return Recording()


@pytest.fixture
async def api(sqlite_url: str, tmp_path: Path, temporal: Recording) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=temporal, data_dir=tmp_path / "data") as api:
        async with api.sessionmaker.begin() as s:
            s.add(project(OPEN))
            await s.flush()
            s.add(
                Gate(
                    project_id=OPEN,
                    gate_no=1,
                    status="open",
                    round=1,
                    workflow_id=f"project-{OPEN}-gate-1-r1",
                    definition={},
                    opened_at=datetime.now(UTC),
                )
            )
        yield api


async def _attach(api: InProcessApi, kind: str, ref: str, content: bytes, name: str) -> FileRef:
    answer = await api.call(
        "POST", f"/projects/{OPEN}/files", PM, params={"kind": kind, "ref": ref}, files={"file": (name, content)}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return FileRef(file_id=body["id"], sha256=body["sha256"], name=body["name"], size=body["size"])


async def test_the_evidence_and_the_report_carry_their_files_by_reference_and_hash(
    api: InProcessApi, temporal: Recording
) -> None:
    evidence = await _attach(api, "evidence", "1", PDF, "stage-report.pdf")
    report = await _attach(api, "report", "2026", b"year,result\n2026,ok\n", "results.csv")
    await _attach(api, "report", "2027", PDF, "next-year.pdf")  # another year's: not in this report
    await api.call(
        "POST",
        f"/projects/{OPEN}/gates/1/evidence",
        PM,
        json={"claimed_trl": 3, "deliverables": ["Stage report"], "criteria_evidence": {"trl_exit_evidence": "ok"}},
    )
    await api.call(
        "POST", f"/projects/{OPEN}/reports", PM, json={"fiscal_year": 2026, "summary": "a year of good work"}
    )
    sent_evidence, sent_report = temporal.sent
    assert isinstance(sent_evidence, EvidenceInput) and sent_evidence.attachments == [evidence]
    assert isinstance(sent_report, ProgressReportInput) and sent_report.attachments == [report]
    # What travels is the reference: no byte of the file is in the payload.
    assert PDF[:64].decode("latin-1") not in sent_evidence.model_dump_json()


async def test_an_annex_sent_by_the_client_is_replaced_by_the_attached_ones(
    api: InProcessApi, temporal: Recording
) -> None:
    annex = await _attach(api, "handoff", "demonstration", PDF, "licence.pdf")
    forged = {"file_id": "f-x", "sha256": "0" * 64, "name": "forged.pdf", "size": 1}
    await api.call(
        "POST",
        f"/projects/{OPEN}/demo-handoffs",
        PM,
        json={"ministry": "METI", "brief": {"purpose": "trial", "annexes": [forged]}},
    )
    (sent,) = temporal.sent
    assert sent.brief.annexes == [annex]


def test_the_handoff_package_lists_its_annexes_with_their_hashes() -> None:
    annexes = [FileRef(file_id="f-1", sha256="a" * 64, name="試験データ.csv", size=1234)]
    project = SimpleNamespace(
        id="KP-1",
        title="t",
        organisation="o",
        funding_ministry="METI",
        research_vision="v",
        classification="open",
        programme_manager="pm.sato",
        performer=None,
    )
    content = render(
        HANDOFF_PACKAGE_TEMPLATE,
        project=project,
        ministry=SimpleNamespace(code="MOD", name="Defence"),
        kind="final",
        brief=HandoffBrief(annexes=annexes),
        trl=9,
        trl_text="proven",
        paid=0,
        decisions=[],
        stage_names={},
        trl_out={},
        evidence={},
        label=None,
        deadline_at=datetime(2027, 1, 1, tzinfo=UTC),
        rerouted_from=None,
        liaisons=[],
    )
    assert "<h2>Annexes</h2>" in content and "a" * 64 in content and "試験データ.csv" in content
    plain = render(HANDOFF_PACKAGE_TEMPLATE, **{**locals_for(project), "brief": HandoffBrief()})
    assert "Annexes" not in plain  # a package without annexes renders as before


def locals_for(project: Any) -> dict[str, Any]:
    return {
        "project": project,
        "ministry": SimpleNamespace(code="MOD", name="Defence"),
        "kind": "final",
        "trl": 9,
        "trl_text": "proven",
        "paid": 0,
        "decisions": [],
        "stage_names": {},
        "trl_out": {},
        "evidence": {},
        "label": None,
        "deadline_at": datetime(2027, 1, 1, tzinfo=UTC),
        "rerouted_from": None,
        "liaisons": [],
    }
