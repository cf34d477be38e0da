"""A national portfolio written straight into a migrated, seeded database, for the benchmarks.

    await load(url, Shape(projects=100_000, pms=1000, reviewers=2000))

Every project gets what the engine would have written by the time it reached its stage: its
stages, its gates (decided ones with their decision and submitted reviews; an open one, some
overdue, with its panel's review tasks), reservations with their tranche schedule, paid tranches
with their payment instructions, releases for stopped projects, hand-offs with their packages,
notifications, audit entries (hash-chained and anchored), and for closed (保全) work a label and
need-to-know grants. The ledger rows are built with storage/ledger's own account names and keys,
the running balances and ministry-year totals are summed from the very entries written, and
`load` can run the full invariant scan afterwards to prove the books sound.

Rows go in bulk: COPY (asyncpg `copy_records_to_table`) on PostgreSQL, with the session's
triggers off for the load (session_replication_role = replica: the ledger's zero-sum and the
foreign-key triggers would otherwise run per row; the invariant scan checks the result instead),
and multi-row INSERTs on SQLite (its "last transaction complete" trigger is dropped for the load
and put back as it was)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.fiscal import fiscal_year
from domain.programme import ALLOCATIONS, PROGRAMME_CODE
from domain.proposal import StagePlan, TranchePlan
from domain.roles import Role
from domain.security import Level
from gates.definitions import gate_for_stage
from storage import ledger
from storage.audit import GENESIS, anchor_of, entry_hash
from storage.db import is_sqlite, make_engine, make_sessionmaker
from storage.ledger.accounts import Account, pay_key, release_key, reserve_key
from storage.models import (
    AccountBalance,
    AuditChainHead,
    AuditEntry,
    Base,
    Document,
    Gate,
    GateDecision,
    Handoff,
    LedgerEntry,
    LedgerTransaction,
    MinistryYearTotal,
    NeedToKnowGrant,
    Notification,
    PaymentInstruction,
    Project,
    ResearchVision,
    Reservation,
    Review,
    ReviewTask,
    Stage,
    TechnologyArea,
    Tranche,
    User,
)
from storage.seed import seed_demo

DEMO_PMS = ("pm.sato", "pm.tanaka")
DEMO_REVIEWERS = ("rev.ito", "rev.kato", "rev.mori")
# Who reads closed work in the benchmark: cleared, and granted (some grants revoked): admin and the
# cleared ops user on every closed project, the reviewer and the liaison where they work, its PM.
GRANTEES = ("admin", "ops.hayashi", "rev.ito", "liaison.mod")
PUBLIC_USE = ("MOD", "MLIT", "NPA", "JCG", "MIC", "MHLW")
FUNDERS = ("MEXT", "METI")
STAGES = ((1, "Concept", 2, 4), (2, "Prototype", 4, 6), (3, "Demonstration", 6, 8))
VISIONS, AREAS = 8, 12
# Project i's status by i % 20: 70% active, 5% on hold, 5% in hand-off, 10% completed, 10% stopped.
STATUS_BY_20 = ["active"] * 14 + ["on_hold", "handoff", "completed", "completed", "terminated", "terminated"]
FIRST_DAY = date(2024, 4, 1)
# Each stage's gate as the engine defines it (gates/definitions), stored with the gate.
GATES = {
    s: gate_for_stage(
        s,
        StagePlan(
            name=name,
            trl_in=a,
            trl_out=b,
            duration_days=200,
            budget=10,
            tranches=[TranchePlan(offset_days=0, amount=10)],
        ),
    )
    for s, name, a, b in STAGES
}
DEFINITIONS = {s: gate.model_dump(mode="json") for s, gate in GATES.items()}
MUST_MEET = {s: {c.key: True for c in gate.must_meet} for s, gate in GATES.items()}


@dataclass(frozen=True)
class Shape:
    projects: int
    pms: int = 1  # programme managers sharing the projects round-robin (pm.sato first)
    reviewers: int = 3  # the reviewer pool (the demo reviewers first); each panel has 3
    closed_every: int = 20  # every n-th project is closed work (保全)


def shape_for(projects: int) -> Shape:
    """A realistic spread: about 100 projects per programme manager, 150 review panels per reviewer."""
    return Shape(projects, pms=max(2, projects // 100), reviewers=max(3, projects // 50))


@dataclass
class Rows:
    """The rows of one batch of projects, by table, plus the running sums the ledger keeps."""

    tables: dict[Table, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, model: type[Base], **row: Any) -> None:
        self.tables[model.__table__].append(row)  # type: ignore[index]


@dataclass
class Books:
    """The ledger's counters and the sums the running balances must equal."""

    next_txn: int
    next_entry: int
    balances: dict[tuple[str, int], list[Any]] = field(default_factory=dict)  # (account, fy) -> [kind, ministry, v]
    committed: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))

    def post(
        self,
        rows: Rows,
        key: str,
        kind: str,
        project_id: str,
        legs: list[tuple[Account, str, int, int]],
        day: date,
        at: datetime,
    ) -> int:
        assert sum(leg[3] for leg in legs) == 0, key
        txn = self.next_txn
        self.next_txn += 1
        rows.add(
            LedgerTransaction, id=txn, business_key=key, kind=kind, project_id=project_id, created_at=at,
            booked_on=day, reverses_id=None, memo="", actor="system", legs=len(legs),
        )  # fmt: skip
        for account, ministry, fy, amount in legs:
            name = str(account)
            rows.add(
                LedgerEntry, id=self.next_entry, transaction_id=txn, account=name, ministry=ministry,
                amount=amount, fiscal_year=fy,
            )  # fmt: skip
            self.next_entry += 1
            slot = self.balances.setdefault((name, fy), [account.kind.value, ministry, 0])
            slot[2] += amount
            if account.kind.committed:
                self.committed[(ministry, fy)] += amount
        return txn


@dataclass
class Chain:
    """The audit log's hash chain, continued from its head."""

    next_id: int
    prev: str
    key: bytes | None

    def add(self, rows: Rows, at: datetime, actor: str, action: str, target: str, **detail: Any) -> None:
        digest = entry_hash(self.prev, at, actor, action, target, "ok", detail)
        rows.add(
            AuditEntry, id=self.next_id, at=at, actor=actor, action=action, target=target, outcome="ok",
            detail=detail, prev_hash=self.prev, hash=digest, anchor=anchor_of(self.key, digest) if self.key else "",
            command_key=None,
        )  # fmt: skip
        self.next_id += 1
        self.prev = digest


def pm_of(shape: Shape, i: int) -> str:
    n = i % shape.pms
    return DEMO_PMS[n] if n < len(DEMO_PMS) else f"pm.b{n:05d}"


def reviewer(shape: Shape, n: int) -> str:
    n %= shape.reviewers
    return DEMO_REVIEWERS[n] if n < len(DEMO_REVIEWERS) else f"rev.b{n:05d}"


def panel_of(shape: Shape, i: int) -> list[str]:
    return sorted({reviewer(shape, 3 * i + k) for k in range(3)})


def project_id(i: int) -> str:
    return f"KP-B{i:07d}"


def is_closed(shape: Shape, i: int) -> bool:
    return i % shape.closed_every == shape.closed_every // 3


def grant_revoked(i: int, n: int) -> bool:
    """Whether the n-th grantee's grant on project i was revoked (one in seven)."""
    return (i + n) % 7 == 0


def closed_readable_by(shape: Shape, grantee: str) -> int:
    """The first closed project the grantee holds a live grant for."""
    n = GRANTEES.index(grantee)
    return next(i for i in range(shape.projects) if is_closed(shape, i) and not grant_revoked(i, n))


def _project(rows: Rows, books: Books, chain: Chain, shape: Shape, i: int, now: datetime, unit: int) -> None:
    pid, status, pm = project_id(i), STATUS_BY_20[i % 20], pm_of(shape, i)
    funder, panel = FUNDERS[i % 2], panel_of(shape, i)
    ministries = (PUBLIC_USE[i % 6], PUBLIC_USE[(i + 3) % 6])
    closed = is_closed(shape, i)
    current = 3 if status in ("handoff", "completed") else (1 + i % 3 if status != "terminated" else 1 + i % 2)
    budgets = {s: unit * (1 + i % 5) * s for s, *_ in STAGES}
    start = FIRST_DAY + timedelta(days=i % 700)
    created = datetime(start.year, start.month, start.day, 1, tzinfo=UTC) + timedelta(seconds=i)
    in_gate = status == "active" and i % 3 != 0
    ended = status in ("completed", "terminated")
    trl = STAGES[current - 1][2] + (2 if status in ("handoff", "completed") else 0)
    rows.add(
        Project, id=pid, programme_code=PROGRAMME_CODE, workflow_id=f"project-{pid}",
        title=f"{('量子センシング', '耐量子暗号', '海洋無人機', '宇宙状況把握', '先端半導体')[i % 5]}実証 {pid}",
        organisation=f"Consortium {i % 997}", performer="perf.aoki" if i % 500 == 0 else None,
        programme_manager=pm, funding_ministry=funder, research_vision="bench",
        vision_id=None if i % 10 == 0 else 1 + i % VISIONS, area_id=None if i % 10 == 0 else 1 + i % AREAS,
        classification="closed" if closed else "open", start_trl=2, target_trl=8, current_trl=trl,
        stage_no=current, status=status, total_budget=sum(budgets.values()), reviewers=panel,
        public_use_ministries=list(ministries),
        stop_reason="Kill at gate: the prototype missed its must-meet criteria" if status == "terminated" else None,
        lessons="Test the sensor in the field before the gate." if status == "terminated" else "",
        closed_at=created + timedelta(days=500) if ended else None,
        public_use_achieved=(i % 40 < 30) if status == "completed" else None,
        label_level=int(Level.SECRET) if closed else 0, label_compartments=["QS"] if closed else [],
        created_at=created, updated_at=created,
    )  # fmt: skip
    chain.add(rows, created, pm, "start_project", f"project:{pid}")
    if closed:
        for n, user in enumerate((*GRANTEES, pm)):
            # The security officers (admin, cleared ops) on all closed work; the others where they work.
            if (user == "rev.ito" and user not in panel) or (user == "liaison.mod" and "MOD" not in ministries):
                continue
            revoked = created + timedelta(days=30) if grant_revoked(i, n) else None
            rows.add(
                NeedToKnowGrant, project_id=pid, username=user, granted_by="admin", reason="bench",
                granted_at=created, revoked_at=revoked, revoked_by="admin" if revoked else None,
            )  # fmt: skip
    for s, name, trl_in, trl_out in STAGES:
        passed = s < current or status in ("handoff", "completed")
        here = s == current and not passed
        stage_status = (
            "passed"
            if passed
            else ("planned" if not here else {"on_hold": "on_hold", "terminated": "stopped"}.get(status, "active"))
        )
        rows.add(
            Stage, project_id=pid, stage_no=s, name=name, trl_in=trl_in, trl_out=trl_out,
            duration_days=200, budget=budgets[s], status=stage_status,
        )  # fmt: skip
        if not (passed or here):
            continue
        day = start + timedelta(days=200 * (s - 1))
        at = created + timedelta(days=200 * (s - 1))
        _money(
            rows, books, pid, s, funder, budgets[s], day, at, settled=passed, stopped=here and status == "terminated"
        )
        gate_open = here and in_gate
        if passed or gate_open or (here and status == "terminated"):
            decided = passed or status == "terminated"
            due = now + timedelta(days=(i % 60) - 10) if gate_open else at + timedelta(days=180)
            rows.add(
                Gate, project_id=pid, gate_no=s, status="decided" if decided else "open", round=1, due_at=due,
                workflow_id=f"project-{pid}-gate-{s}-r1", definition=DEFINITIONS[s], recommendation=None,
                opened_at=at + timedelta(days=150),
            )  # fmt: skip
            _panel(rows, pid, s, panel, at + timedelta(days=150), i, decided)
            if decided:
                rows.add(
                    GateDecision, project_id=pid, gate_no=s, round=1, decision="go" if passed else "kill",
                    terms=None, decided_by=pm, justification="bench", recommendation=None,
                    decided_at=at + timedelta(days=185),
                )  # fmt: skip
                chain.add(rows, at + timedelta(days=185), pm, "decide_gate", f"project:{pid}", gate=s)
    for n, user in enumerate([pm, *panel]):
        rows.add(
            Notification, key=f"{pid}-bench-{n}", project_id=pid, recipient=user,
            kind=("reminder", "escalation", "decision")[(i + n) % 3], message=f"Gate of {pid} is due",
            at=created + timedelta(days=n), created_at=created + timedelta(days=n),
            read_at=created + timedelta(days=n + 1) if (i + n) % 2 else None,
        )  # fmt: skip
    if status in ("handoff", "completed"):
        for ministry in ministries:
            doc = f"{pid}-h-{ministry}"
            rows.add(
                Document, id=doc, project_id=pid, kind="handoff_package", template="handoff_package.md",
                content=f"# Hand-off package {pid}", sha256=hashlib.sha256(doc.encode()).hexdigest(), created_at=created,
            )  # fmt: skip
            accepted = status == "completed"
            rows.add(
                Handoff, id=doc, project_id=pid, ministry=ministry, kind="final",
                status="accepted" if accepted else "pending", document_id=doc, workflow_id=f"project-{pid}-handoff-{ministry}",
                accepted_by=f"liaison.{ministry.lower()}" if accepted else None, decided_by=None,
                receiving_programme="", reason="", note="", deadline_at=now + timedelta(days=i % 30 - 5),
                escalated_at=None, rerouted_from=None, rerouted_to=None, created_at=created + timedelta(days=600),
                resolved_at=created + timedelta(days=620) if accepted else None,
            )  # fmt: skip
    if status == "terminated":
        doc = f"{pid}-closeout"
        rows.add(
            Document, id=doc, project_id=pid, kind="closeout", template="closeout.md", content=f"# Close-out {pid}",
            sha256=hashlib.sha256(doc.encode()).hexdigest(), created_at=created + timedelta(days=500),
        )  # fmt: skip
        chain.add(rows, created + timedelta(days=500), pm, "terminate", f"project:{pid}", reason="kill")


def _panel(rows: Rows, pid: str, gate: int, panel: list[str], at: datetime, i: int, decided: bool) -> None:
    for n, user in enumerate(panel):
        task = f"{pid}-g{gate}-{user}"
        status = "submitted" if decided else ("invited", "accepted", "submitted")[(i + n) % 3]
        rows.add(
            ReviewTask, id=task, project_id=pid, gate_no=gate, round=1, reviewer=user, status=status,
            conflict_statement="", created_at=at, closed_at=at + timedelta(days=20) if status == "submitted" else None,
        )  # fmt: skip
        if status == "submitted":
            rows.add(
                Review, task_id=task, must_meet=MUST_MEET[gate],
                scores={c.key: 3 + (i + n) % 3 for c in GATES[gate].should_meet},
                comment="bench", submitted_at=at + timedelta(days=20), version=1, amended_at=None,
            )  # fmt: skip


def _money(
    rows: Rows,
    books: Books,
    pid: str,
    stage: int,
    funder: str,
    amount: int,
    day: date,
    at: datetime,
    *,
    settled: bool,
    stopped: bool,
) -> None:
    """A stage's reservation in two tranches (60/40, paid 10 and 190 days after it), as
    storage/ledger's reserve, pay_tranche and release_open would post them."""
    first = amount * 6 // 10
    plan = [(1, day + timedelta(days=10), first), (2, day + timedelta(days=190), amount - first)]
    booked = fiscal_year(day)
    by_year: dict[int, int] = defaultdict(int)
    for _, paid_on, v in plan:
        by_year[fiscal_year(paid_on)] += v
    books.post(
        rows, reserve_key(pid, stage), "reserve", pid,
        [(Account.allocation(funder), funder, booked, -amount)]
        + [(Account.reservation(pid), funder, fy, v) for fy, v in sorted(by_year.items())],
        day, at,
    )  # fmt: skip
    paid_tranches = plan if settled else plan[:1] if stage % 2 or stopped else []
    for tranche, paid_on, v in paid_tranches:
        fy = fiscal_year(paid_on)
        txn = books.post(
            rows, pay_key(pid, stage, tranche), "pay", pid,
            [(Account.reservation(pid), funder, fy, -v), (Account.paid(pid), funder, fy, v)], paid_on, at,
        )  # fmt: skip
        paid_at = at + timedelta(days=(paid_on - day).days)
        rows.add(
            Tranche, project_id=pid, stage_no=stage, tranche_no=tranche, amount=v, transaction_id=txn,
            due_at=paid_at, paid_at=paid_at, part=0, fiscal_year=fy, planned_fiscal_year=fy, reversal_transaction_id=None,
        )  # fmt: skip
        rows.add(
            PaymentInstruction, key=pay_key(pid, stage, tranche), transaction_id=txn, project_id=pid, payee=pid,
            amount=v, kind="pay", status="sent", attempts=1, created_at=paid_at, sent_at=paid_at,
        )  # fmt: skip
    paid = sum(v for _, _, v in paid_tranches)
    released = 0
    if stopped and paid < amount:
        released = amount - paid
        release_day = day + timedelta(days=185)
        unpaid = [(fiscal_year(d), v) for _, d, v in plan[len(paid_tranches) :]]
        books.post(
            rows, release_key(pid, stage, 0), "release", pid,
            [(Account.reservation(pid), funder, fy, -v) for fy, v in unpaid]
            + [(Account.allocation(funder), funder, fiscal_year(release_day), released)],
            release_day, at,
        )  # fmt: skip
    status = "settled" if paid == amount else ("released" if stopped else "open")
    rows.add(
        Reservation, project_id=pid, stage_no=stage, part=0, ministry=funder, amount=amount, paid=paid,
        released=released, status=status, created_at=at,
        schedule=[{"tranche_no": t, "fiscal_year": fiscal_year(d), "amount": v} for t, d, v in plan],
        resolved_at=None if status == "open" else at + timedelta(days=190),
    )  # fmt: skip


def _people(shape: Shape, password_hash: str) -> Rows:
    rows = Rows()
    for n in range(len(DEMO_PMS), shape.pms):
        name = pm_of(shape, n)
        rows.add(User, username=name, full_name=f"Bench PM {n}", password_hash=password_hash, roles=[Role.PM.value])
    for n in range(len(DEMO_REVIEWERS), shape.reviewers):
        name = reviewer(shape, n)
        rows.add(
            User,
            username=name,
            full_name=f"Bench reviewer {n}",
            password_hash=password_hash,
            roles=[Role.REVIEWER.value],
        )
    for n in range(1, VISIONS + 1):
        rows.add(ResearchVision, id=n, title=f"Vision {n}", ministry=FUNDERS[n % 2])
    for n in range(1, AREAS + 1):
        rows.add(TechnologyArea, id=n, title=f"Area {n}", ministry=FUNDERS[n % 2])
    return rows


def _defaults(table: Table) -> dict[str, Any]:
    """The Python-side defaults of the columns a batch leaves out (COPY applies none of them)."""
    out: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if default is None or (not getattr(default, "is_scalar", False) and not getattr(default, "is_callable", False)):
            continue
        # A callable (utcnow, list, dict) is wrapped to take the execution context, which none reads.
        out[column.name] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
    return out


class Writer:
    """Bulk rows into one connection: COPY on PostgreSQL, multi-row INSERT on SQLite."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self.written = 0

    async def write(self, rows: Rows) -> None:
        texts: dict[int, str] = {}  # shared values (a gate's definition) are encoded once

        def encoded(value: Any) -> str | None:
            if value is None:
                return None
            if id(value) not in texts:
                texts[id(value)] = json.dumps(value)
            return texts[id(value)]

        # Parents before children: the tables in the metadata's dependency order.
        for table in Base.metadata.sorted_tables:
            batch = rows.tables.get(table)
            if not batch:
                continue
            base = _defaults(table)
            self.written += len(batch)
            if not self.postgres:
                await self.conn.execute(insert(table), [{**base, **row} for row in batch])
                continue
            names = list({**base, **batch[0]})
            json_columns = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
            columns = [(n, base.get(n), n in json_columns) for n in names]
            records = [tuple(encoded(r.get(n, d)) if j else r.get(n, d) for n, d, j in columns) for r in batch]
            raw = await self.conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(table.name, records=records, columns=names)  # type: ignore[union-attr]


async def _head(conn: AsyncConnection) -> tuple[int, int, int, str]:
    txn = await conn.scalar(select(func.coalesce(func.max(LedgerTransaction.id), 0)))
    entry = await conn.scalar(select(func.coalesce(func.max(LedgerEntry.id), 0)))
    head = (await conn.execute(select(AuditChainHead.last_id, AuditChainHead.last_hash))).one()
    audit = await conn.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))
    assert head.last_hash == GENESIS or audit == head.last_id, "the audit chain head is behind the log"
    return int(txn or 0) + 1, int(entry or 0) + 1, int(audit or 0) + 1, head.last_hash


def batches(total: int, size: int) -> Iterator[range]:
    for begin in range(0, total, size):
        yield range(begin, min(total, begin + size))


async def _finish(conn: AsyncConnection, books: Books, chain: Chain) -> None:
    """Running balances and ministry-year totals from the entries written (and those the seed
    posted), the audit chain's head, and PostgreSQL's sequences past the ids given."""
    existing = (await conn.execute(select(AccountBalance))).all()
    for b in existing:
        slot = books.balances.setdefault((b.account, b.fiscal_year), [b.kind, b.ministry, 0])
        slot[2] += b.balance
    for t in (await conn.execute(select(MinistryYearTotal))).all():
        books.committed[(t.ministry, t.fiscal_year)] += t.committed
    await conn.execute(delete(AccountBalance))
    await conn.execute(delete(MinistryYearTotal))
    rows = Rows()
    for (account, fy), (kind, ministry, v) in books.balances.items():
        rows.add(AccountBalance, account=account, fiscal_year=fy, kind=kind, ministry=ministry, balance=v)
    for (ministry, fy), v in books.committed.items():
        rows.add(MinistryYearTotal, ministry=ministry, fiscal_year=fy, committed=v)
    await Writer(conn).write(rows)
    await conn.execute(update(AuditChainHead).values(last_id=chain.next_id - 1, last_hash=chain.prev))
    if conn.dialect.name == "postgresql":
        for table in ("ledger_transactions", "ledger_entries", "audit_log", "research_visions", "technology_areas"):
            await conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
        await conn.execute(text("ANALYZE"))


SQLITE_LOAD_TRIGGER = "ledger_transactions_after_complete"


async def load(
    url: str,
    shape: Shape,
    *,
    audit_key: bytes | None = None,
    batch: int = 2000,
    check: bool = True,
    progress: bool = False,
) -> dict[str, float]:
    """Write the portfolio into the migrated database at `url` (the demo users are seeded first).
    Returns the seconds the load and the invariant scan took and the rows written."""
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    await seed_demo(sm, "bench-password")
    started = time.perf_counter()
    now = datetime.now(UTC)
    per_ministry = min(ALLOCATIONS.values())
    # Every project's stages at most 30 units, half the projects per funder: within half of each allocation.
    unit = max(1, min(10**8, per_ministry // max(1, shape.projects) // 30))
    async with engine.begin() as conn:
        restore = None
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            restore = await conn.scalar(
                text(f"SELECT sql FROM sqlite_master WHERE type='trigger' AND name='{SQLITE_LOAD_TRIGGER}'")
            )
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {SQLITE_LOAD_TRIGGER}"))
        password_hash = await conn.scalar(select(User.password_hash).where(User.username == "admin"))
        next_txn, next_entry, next_audit, last_hash = await _head(conn)
        books, chain = Books(next_txn, next_entry), Chain(next_audit, last_hash, audit_key)
        writer = Writer(conn)
        await writer.write(_people(shape, str(password_hash)))
        for numbers in batches(shape.projects, batch):
            rows = Rows()
            for i in numbers:
                _project(rows, books, chain, shape, i, now, unit)
            await writer.write(rows)
            if progress and numbers.stop % max(batch, shape.projects // 10 // batch * batch) == 0:
                print(
                    f"  {numbers.stop:,} projects, {writer.written:,} rows, {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
        await _finish(conn, books, chain)
        if restore:
            await conn.execute(text(restore))
    loaded = time.perf_counter() - started
    scanned = 0.0
    if check:
        t0 = time.perf_counter()
        async with sm() as s:
            problems = await ledger.invariant_violations(s, PROGRAMME_CODE)
        scanned = time.perf_counter() - t0
        if problems:
            raise SystemExit(f"the loaded books do not balance: {problems[:5]}")
    await engine.dispose()
    return {"load_s": loaded, "rows": float(writer.written), "check_s": scanned}


def sqlite_url(directory: str) -> str:
    return f"sqlite+aiosqlite:///{directory}/bench.db"


__all__ = ["Shape", "closed_readable_by", "is_sqlite", "load", "pm_of", "project_id", "shape_for", "sqlite_url"]
