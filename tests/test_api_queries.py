"""Lists answer with a bounded number of SQL statements, however many rows they hold (no N+1):
each list is read with N rows and with 3N, and the statement count must not grow. And rows of the
first design (a gate or a hand-off without a workflow of its own) are refused with 409 and why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from domain.programme import PROGRAMME_CODE
from domain.security import Level
from gates.definitions import gate_for_stage
from storage import ledger
from storage.models import AccountBalance, Document, Gate, Handoff, NeedToKnowGrant, Project, Reservation, ReviewTask
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.support import PM, ledger_project, proposal, review_for
from tests.test_codec_endpoint import RING, sealed

N = 4
REVIEWER = "rev.ito"
LIAISON = "liaison.mod"


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    # A stand-in client: these requests are refused or answered before anything reaches Temporal.
    async with inprocess_api(sqlite_url, temporal=object()) as a:
        yield a


def _project(n: int, *, closed: bool = False, status: str = "active") -> Project:
    """Every other project is closed work (SECRET/QS), so the need-to-know rule is decided too."""
    p = ledger_project(f"KP-Q{n:03d}", PROGRAMME_CODE, "MEXT", 1_000_000)
    p.status = status
    p.reviewers = [REVIEWER]
    p.public_use_ministries = ["MOD"]
    if closed:
        p.classification, p.label_level, p.label_compartments = "closed", int(Level.SECRET), ["QS"]
    return p


async def _add_projects(api: InProcessApi, start: int, stop: int, status: str = "active") -> None:
    """Projects `start`..`stop`-1; each closed one is granted to its PM, the reviewer and the liaison."""
    async with api.sessionmaker.begin() as session:
        for n in range(start, stop):
            p = _project(n, closed=n % 2 == 1, status=status)
            session.add(p)
            await session.flush()
            if p.classification == "closed":
                for username in (PM, REVIEWER, LIAISON):
                    session.add(NeedToKnowGrant(project_id=p.id, username=username, granted_by="admin", reason="test"))


async def _add_closed_out(api: InProcessApi, start: int, stop: int) -> None:
    await _add_projects(api, start, stop, status="terminated")
    async with api.sessionmaker.begin() as session:
        for n in range(start, stop):
            pid = f"KP-Q{n:03d}"
            project = await session.get(Project, pid)
            assert project is not None
            project.stop_reason, project.closed_at = f"killed at gate {n}", datetime.now(UTC) - timedelta(days=n)
            for stage_no in (1, 2):
                session.add(
                    Reservation(
                        project_id=pid,
                        stage_no=stage_no,
                        ministry="MEXT",
                        amount=500,
                        released=100 * n,
                        status="released",
                    )
                )
            session.add(
                AccountBalance(
                    account=ledger.paid_account(pid), fiscal_year=2026, kind="paid", ministry="MEXT", balance=7 * n
                )
            )
            if n % 3 == 0:
                session.add(_document(pid, f"{pid}-closeout", "closeout"))


def _document(project_id: str, document_id: str, kind: str) -> Document:
    return Document(id=document_id, project_id=project_id, kind=kind, template="t", content="<p/>", sha256="0" * 64)


async def _add_tasks(api: InProcessApi, start: int, stop: int) -> None:
    await _add_projects(api, start, stop)
    async with api.sessionmaker.begin() as session:
        session.add_all(
            ReviewTask(
                id=f"KP-Q{n:03d}-g1-{REVIEWER}", project_id=f"KP-Q{n:03d}", gate_no=1, reviewer=REVIEWER, status="open"
            )
            for n in range(start, stop)
        )


async def _add_handoffs(api: InProcessApi, start: int, stop: int) -> None:
    await _add_projects(api, start, stop)
    async with api.sessionmaker.begin() as session:
        for n in range(start, stop):
            pid = f"KP-Q{n:03d}"
            session.add(_document(pid, f"{pid}-handoff-MOD", "handoff_package"))
            await session.flush()
            session.add(
                Handoff(
                    id=f"{pid}-h-MOD",
                    project_id=pid,
                    ministry="MOD",
                    status="pending",
                    document_id=f"{pid}-handoff-MOD",
                    workflow_id=f"project-{pid}-handoff-MOD",
                )
            )


Seed = Callable[[InProcessApi, int, int], Awaitable[None]]
LISTS: list[tuple[str, str, Seed]] = [
    ("/closed-out", PM, _add_closed_out),
    ("/projects", PM, _add_projects),  # the need-to-know grants of every closed project
    ("/projects", REVIEWER, _add_projects),
    ("/tasks", REVIEWER, _add_tasks),
    ("/tasks", PM, _add_tasks),
    ("/handoffs", LIAISON, _add_handoffs),
    ("/handoffs", PM, _add_handoffs),
]


@pytest.mark.parametrize(("path", "user", "seed"), LISTS, ids=[f"{p}-{u}" for p, u, _ in LISTS])
async def test_a_list_makes_as_many_queries_for_3n_rows_as_for_n(
    api: InProcessApi, path: str, user: str, seed: Seed
) -> None:
    await seed(api, 0, N)
    await api.call("GET", path, user)  # the audit log's first entry takes one statement fewer than the next
    small, queries_n = await api.counted("GET", path, user)
    assert small.status_code == 200, small.text
    await seed(api, N, 3 * N)
    large, queries_3n = await api.counted("GET", path, user)
    assert large.status_code == 200, large.text
    # Every row is listed (the reader is granted every closed project), each once.
    assert (small.json()["total"], len(large.json()["items"])) == (N, 3 * N)
    assert queries_3n == queries_n, api.statements


async def test_closed_out_figures_are_each_projects_own(api: InProcessApi) -> None:
    await _add_closed_out(api, 0, N)
    r = await api.call("GET", "/closed-out", PM)
    assert r.status_code == 200, r.text
    by_id = {row["project_id"]: row for row in r.json()["items"]}
    for n in range(N):
        row = by_id[f"KP-Q{n:03d}"]
        assert (row["released"], row["paid"]) == (200 * n, 7 * n)
        assert row["closeout_document_id"] == (f"KP-Q{n:03d}-closeout" if n % 3 == 0 else None)


async def test_a_reader_without_the_grant_sees_no_closed_project(api: InProcessApi) -> None:
    """The set-based decision still withholds: rev.kato is cleared but holds no grant."""
    await _add_tasks(api, 0, N)
    async with api.sessionmaker.begin() as session:
        for n in range(N):
            session.add(
                ReviewTask(
                    id=f"KP-Q{n:03d}-g1-rev.kato",
                    project_id=f"KP-Q{n:03d}",
                    gate_no=1,
                    reviewer="rev.kato",
                    status="open",
                )
            )
            (await session.get(Project, f"KP-Q{n:03d}")).reviewers = [REVIEWER, "rev.kato"]  # type: ignore[union-attr]
    listed = {t["project_id"] for t in (await api.call("GET", "/tasks", "rev.kato")).json()["items"]}
    assert listed == {f"KP-Q{n:03d}" for n in range(N) if n % 2 == 0}


async def test_the_codec_decides_every_stamp_with_as_many_reads_for_3n_workflows_as_for_n(sqlite_url: str) -> None:
    """Each closed project's decision is audited (a write per project, by design); the reads that
    find the projects of the stamps and the reader's grants do not grow with them."""
    async with inprocess_api(sqlite_url, codec_keys=RING.dump()) as api:

        async def reads(start: int, stop: int) -> int:
            await _add_projects(api, start, stop)
            payloads = [sealed(f"project-KP-Q{n:03d}") for n in range(stop)]
            r, _ = await api.counted("POST", "/codec/decode", "ops.hayashi", json={"payloads": payloads})
            assert r.status_code == 200, r.text
            return sum(1 for s in api.statements if s.lstrip().upper().startswith("SELECT"))

        await reads(0, 2)  # the audit log's first entry takes one statement fewer than the next
        assert await reads(2, N) == await reads(N, 3 * N)


# ---- the first design's rows ----------------------------------------------------------------


async def _first_design_gate(api: InProcessApi) -> str:
    """An open gate (and its review task) without a gate-round workflow, as the first design made."""
    await _add_projects(api, 0, 1)
    p = proposal()
    async with api.sessionmaker.begin() as session:
        session.add(
            Gate(
                project_id="KP-Q000",
                gate_no=1,
                status="open",
                workflow_id=None,
                definition=gate_for_stage(1, p.stage_plan[0]).model_dump(mode="json"),
                opened_at=datetime.now(UTC),
            )
        )
        session.add(
            ReviewTask(id="KP-Q000-g1-rev.ito", project_id="KP-Q000", gate_no=1, reviewer=REVIEWER, status="open")
        )
    return "KP-Q000"


async def test_a_first_design_gate_can_no_longer_be_decided(api: InProcessApi) -> None:
    pid = await _first_design_gate(api)
    r = await api.call("POST", f"/projects/{pid}/gates/1/decision", PM, json={"decision": "go"})
    assert r.status_code == 409, r.text
    assert "predates gate rounds" in r.json()["detail"]


async def test_a_first_design_gate_takes_no_reviews(api: InProcessApi) -> None:
    await _first_design_gate(api)
    review = review_for(proposal(), 1, REVIEWER)
    body = {"must_meet": review.must_meet, "scores": review.scores, "comment": review.comment}
    for method in ("POST", "PUT"):
        r = await api.call(method, "/tasks/KP-Q000-g1-rev.ito/review", REVIEWER, json=body)
        assert r.status_code == 409, r.text
        assert "predates gate rounds" in r.json()["detail"]


async def test_a_first_design_handoff_takes_no_answer(api: InProcessApi) -> None:
    await _add_handoffs(api, 0, 1)
    async with api.sessionmaker.begin() as session:
        handoff = await session.get(Handoff, "KP-Q000-h-MOD")
        assert handoff is not None
        handoff.workflow_id = None
    accept = await api.call("POST", "/handoffs/KP-Q000-h-MOD/accept", LIAISON, json={"receiving_programme": "X"})
    decline = await api.call("POST", "/handoffs/KP-Q000-h-MOD/decline", LIAISON, json={"reason": "not for us"})
    for r in (accept, decline):
        assert r.status_code == 409, r.text
        assert "predates hand-off workflows" in r.json()["detail"]
