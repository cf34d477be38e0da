"""The ledger's commands: endow, reserve, pay a tranche, release, reverse (set_ceiling is in
ceilings.py). Each takes a session inside a transaction (callers own commit and retry) and is
idempotent by its business key: a repeat returns what the first call did, a repeat with other
figures is an IdempotencyConflict."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from domain.fiscal import fiscal_year
from domain.statuses import PaymentStatus, ReservationStatus
from storage.ledger.accounts import (
    ENDOWMENT_ACCOUNT,
    UNSCHEDULED,
    Account,
    endow_key,
    pay_key,
    release_key,
    reserve_key,
    reverse_key,
)
from storage.ledger.ceilings import breaches_with, commitments, lock_allocation
from storage.ledger.posting import (
    IdempotencyConflict,
    InsufficientFunds,
    LedgerError,
    Leg,
    NoOpenReservation,
    NotReversible,
    post,
    today,
)
from storage.ledger.schedules import ScheduledAmount, planned_year, unpaid_by_year
from storage.models import (
    FundAllocation,
    LedgerEntry,
    LedgerTransaction,
    PaymentInstruction,
    Project,
    Reservation,
    Tranche,
    utcnow,
)


@dataclass(frozen=True)
class ReservationView:
    project_id: str
    stage_no: int
    part: int
    amount: int
    paid: int
    released: int
    status: str
    created: bool


@dataclass(frozen=True)
class TrancheView:
    project_id: str
    stage_no: int
    tranche_no: int
    amount: int
    transaction_id: int
    created: bool
    fiscal_year: int | None = None


@dataclass(frozen=True)
class ReversalView:
    transaction_id: int
    reverses_id: int
    kind: str
    amount: int
    created: bool


async def endow(
    session: AsyncSession, *, programme_code: str, ministry: str, amount: int, booked_on: date | None = None
) -> bool:
    """Credit a ministry's allocation from the endowment once. Returns False when already done."""
    key = endow_key(programme_code, ministry)
    if await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.business_key == key)):
        return False
    day = booked_on or today()
    fy = fiscal_year(day)
    await post(
        session,
        key,
        "endow",
        None,
        [Leg(ENDOWMENT_ACCOUNT, ministry, fy, -amount), Leg(Account.allocation(ministry), ministry, fy, amount)],
        day,
    )
    return True


async def reserve(
    session: AsyncSession,
    *,
    programme_code: str,
    project_id: str,
    stage_no: int,
    ministry: str,
    amount: int,
    part: int = 0,
    schedule: list[ScheduledAmount] | None = None,
    booked_on: date | None = None,
) -> ReservationView:
    """Reserve a stage's budget (or a recycle's extra budget: `part` > 0) from its ministry's
    allocation, once per (project, stage, part). The schedule says in which fiscal years the money
    is planned to be paid; each of those years must stay within its ceiling (with carry-over).

    Three statements on PostgreSQL, seven on SQLite (tests/test_ledger_statements.py): the
    allocation lock with any earlier reservation of the key, one read of what the checks need,
    the posting with the reservation row (see `post`)."""
    day = booked_on or today()
    # Unscheduled (tranche 0): any tranche may draw on it; it is planned for its booking year.
    planned = schedule or [ScheduledAmount(UNSCHEDULED, fiscal_year(day), amount)]
    if amount <= 0 or sum(s.amount for s in planned) != amount or any(s.amount <= 0 for s in planned):
        raise LedgerError(f"the schedule of stage {stage_no} of {project_id} does not add up to {amount} yen")
    key = (project_id, stage_no, part)
    locked = (
        await session.execute(
            select(*_RESERVATION_COLUMNS)
            .select_from(FundAllocation)
            .outerjoin(Reservation, _reservation_key(*key))
            .where(FundAllocation.programme_code == programme_code, FundAllocation.ministry == ministry)
            .with_for_update(of=FundAllocation)
        )
    ).first()
    existing = locked if locked is not None and locked.amount is not None else None
    if locked is None:  # no allocation to lock: a repeat of a reservation still answers as one
        existing = (await session.execute(select(*_RESERVATION_COLUMNS).where(_reservation_key(*key)))).first()
    if existing is not None:
        if existing.amount != amount or existing.ministry != ministry:
            raise IdempotencyConflict(
                f"stage {stage_no} of {project_id} was reserved with {existing.amount} yen from "
                f"{existing.ministry}, not {amount} yen from {ministry}"
            )
        return ReservationView(
            project_id, stage_no, part, amount, existing.paid, existing.released, existing.status, created=False
        )
    if locked is None:
        raise LedgerError(f"programme {programme_code} has no allocation for {ministry}")
    # Read after the lock (its own statement, so its snapshot follows the lock on PostgreSQL).
    state = await commitments(session, programme_code, ministry)
    if state.available < amount:
        raise InsufficientFunds(
            f"{ministry} allocation has {state.available} yen available; stage {stage_no} of {project_id} needs {amount}"
        )
    by_year: dict[int, int] = defaultdict(int)
    for s in planned:
        by_year[s.fiscal_year] += s.amount
    breaches = await breaches_with(session, programme_code, ministry, extra=dict(by_year), known=state)
    if breaches:
        raise InsufficientFunds(
            f"{ministry}: stage {stage_no} of {project_id} ({amount} yen) would exceed a fiscal-year ceiling: "
            + "; ".join(breaches)
        )
    booking_fy = fiscal_year(day)
    reservation = insert(Reservation).values(
        project_id=project_id,
        stage_no=stage_no,
        part=part,
        ministry=ministry,
        amount=amount,
        paid=0,
        released=0,
        status=ReservationStatus.OPEN,
        schedule=[s.__dict__ for s in planned],
        created_at=utcnow(),
    )
    await post(
        session,
        reserve_key(project_id, stage_no, part),
        "reserve",
        project_id,
        [Leg(Account.allocation(ministry), ministry, booking_fy, -amount)]
        + [Leg(Account.reservation(project_id), ministry, fy, v) for fy, v in sorted(by_year.items())],
        day,
        also=[reservation],
    )
    return ReservationView(project_id, stage_no, part, amount, 0, 0, ReservationStatus.OPEN, created=True)


# A reservation as the hot paths read it: Core columns, not ORM objects (nothing to flush).
_RESERVATION_COLUMNS = (
    Reservation.project_id,
    Reservation.stage_no,
    Reservation.ministry,
    Reservation.amount,
    Reservation.paid,
    Reservation.released,
    Reservation.status,
    Reservation.schedule,
    Reservation.created_at,
)


def _reservation_key(project_id: str, stage_no: int, part: int) -> ColumnElement[bool]:
    return and_(Reservation.project_id == project_id, Reservation.stage_no == stage_no, Reservation.part == part)


def _refresh_loaded(session: AsyncSession, key: tuple[str, int, int], **values: object) -> None:
    """A Core UPDATE bypasses the session: a copy of the row it loaded earlier gets the new
    figures (set as loaded, so nothing is flushed back and no attribute is reloaded lazily)."""
    loaded = session.identity_map.get(identity_key(Reservation, key))
    for name, value in values.items() if loaded is not None else ():
        set_committed_value(loaded, name, value)


async def pay_tranche(
    session: AsyncSession,
    *,
    project_id: str,
    stage_no: int,
    tranche_no: int,
    amount: int,
    due_at: datetime,
    part: int = 0,
    paid_on: date | None = None,
    payee: str | None = None,
) -> TrancheView:
    """Pay one tranche out of the stage's reservation, and put its payment instruction in the
    outbox in the same transaction. The (project, stage, tranche) key pays once.

    Two statements on PostgreSQL, seven on SQLite (tests/test_ledger_statements.py): the
    reservation locked with its project and any earlier payment of the key; the posting with the
    tranche, the outbox row and the reservation's figures (see `post`). A tranche paid in another
    fiscal year than planned adds the allocation lock and the ceiling check."""
    row = (
        await session.execute(
            select(
                *_RESERVATION_COLUMNS,
                Project.programme_code,
                Project.organisation,
                Tranche.amount.label("paid_amount"),
                Tranche.transaction_id,
                Tranche.fiscal_year,
            )
            .select_from(Reservation)
            .join(Project, Project.id == Reservation.project_id)
            .outerjoin(
                Tranche,
                and_(
                    Tranche.project_id == Reservation.project_id,
                    Tranche.stage_no == Reservation.stage_no,
                    Tranche.tranche_no == tranche_no,
                ),
            )
            .where(_reservation_key(project_id, stage_no, part))
            .with_for_update(of=Reservation)
        )
    ).first()
    if row is not None and row.paid_amount is not None:
        if row.paid_amount != amount:
            raise IdempotencyConflict(
                f"tranche {tranche_no} of stage {stage_no} of {project_id} was paid as {row.paid_amount} yen, "
                f"not {amount}"
            )
        return TrancheView(project_id, stage_no, tranche_no, amount, row.transaction_id, False, row.fiscal_year)
    if row is None or row.status != "open":
        raise NoOpenReservation(f"stage {stage_no} of {project_id} has no open reservation to pay from")
    if row.paid + amount > row.amount:
        raise LedgerError(
            f"tranche {tranche_no} ({amount} yen) exceeds what remains reserved for stage {stage_no} "
            f"({row.amount - row.paid} yen)"
        )
    day = paid_on or today()
    actual = fiscal_year(day)
    planned = planned_year(row, tranche_no, amount)
    if planned != actual:
        # Paid in another fiscal year than planned: the commitment moves to that year, which must
        # stay within its ceiling. The allocation lock comes after the reservation's here; nothing
        # holds an allocation lock and then waits for a reservation row, so no deadlock.
        await lock_allocation(session, row.programme_code, row.ministry)
        breaches = await breaches_with(
            session, row.programme_code, row.ministry, extra={actual: amount, planned: -amount}
        )
        if breaches:
            raise InsufficientFunds(
                f"{row.ministry}: tranche {tranche_no} of stage {stage_no} of {project_id} ({amount} yen), planned "
                f"for FY{planned}, would exceed a fiscal-year ceiling if paid in FY{actual}: " + "; ".join(breaches)
            )
    key = pay_key(project_id, stage_no, tranche_no)
    now = utcnow()
    # The lock is held: the figures read above are current.
    figures: dict[str, object] = {"paid": row.paid + amount}
    if row.paid + amount == row.amount:
        figures |= {"status": ReservationStatus.SETTLED, "resolved_at": now}
    tranche = {
        "project_id": project_id,
        "stage_no": stage_no,
        "tranche_no": tranche_no,
        "amount": amount,
        "due_at": due_at,
        "paid_at": now,
        "part": part,
        "fiscal_year": actual,
        "planned_fiscal_year": planned,
    }
    instruction = {
        "key": key,
        "project_id": project_id,
        "payee": row.organisation if payee is None else payee,
        "amount": amount,
        "kind": "pay",
        "status": PaymentStatus.PENDING,
        "attempts": 0,
        "created_at": now,
    }
    txn_id = await post(
        session,
        key,
        "pay",
        project_id,
        [
            Leg(Account.reservation(project_id), row.ministry, planned, -amount),
            Leg(Account.paid(project_id), row.ministry, actual, amount),
        ],
        day,
        linked=[(Tranche, tranche), (PaymentInstruction, instruction)],
        also=[
            update(Reservation)
            .where(_reservation_key(project_id, stage_no, part))
            .values(**figures)
            .execution_options(synchronize_session=False)
        ],
    )
    _refresh_loaded(session, (project_id, stage_no, part), **figures)
    return TrancheView(project_id, stage_no, tranche_no, amount, txn_id, True, actual)


async def release_open(session: AsyncSession, *, project_id: str, booked_on: date | None = None) -> int:
    """Release what every open reservation of the project has not paid. Idempotent: returns 0 after."""
    released = 0
    day = booked_on or today()
    rows = await session.scalars(
        select(Reservation)
        .where(Reservation.project_id == project_id, Reservation.status == "open")
        .order_by(Reservation.stage_no, Reservation.part)
        .with_for_update()
    )
    for reservation in rows.all():
        rest = reservation.amount - reservation.paid
        if rest > 0:
            by_year = await unpaid_by_year(session, reservation)
            await post(
                session,
                release_key(project_id, reservation.stage_no, reservation.part),
                "release",
                project_id,
                [
                    Leg(Account.reservation(project_id), reservation.ministry, fy, -v)
                    for fy, v in sorted(by_year.items())
                ]
                + [Leg(Account.allocation(reservation.ministry), reservation.ministry, fiscal_year(day), rest)],
                day,
            )
        reservation.released = rest
        reservation.status = ReservationStatus.RELEASED
        reservation.resolved_at = utcnow()
        released += rest
    await session.flush()
    return released


async def reverse(
    session: AsyncSession, *, transaction_id: int, actor: str, memo: str, booked_on: date | None = None
) -> ReversalView:
    """Correct a posting by posting its exact negation (entries are never changed).

    A payment's reversal puts the money back into its reservation (the payment was returned); a
    reservation's reversal undoes one made in error, if nothing was paid from it. Reversing twice
    returns the first reversal."""
    original = await session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise NotReversible(f"there is no ledger transaction {transaction_id}")
    key = reverse_key(original.business_key)
    done = await session.scalar(select(LedgerTransaction).where(LedgerTransaction.business_key == key))
    legs = (await session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == original.id))).all()
    amount = sum(e.amount for e in legs if e.amount > 0)
    if done is not None:
        return ReversalView(done.id, original.id, original.kind, amount, created=False)
    if not memo.strip():
        raise NotReversible("a reversal needs a reason (memo)")
    tranche: Tranche | None = None
    if original.kind == "pay":
        tranche = await session.scalar(select(Tranche).where(Tranche.transaction_id == original.id).with_for_update())
        assert tranche is not None
        reservation = await session.get(
            Reservation, (tranche.project_id, tranche.stage_no, tranche.part), with_for_update=True
        )
        assert reservation is not None
        if reservation.status not in ("open", "settled"):
            raise NotReversible(
                f"the reservation of stage {tranche.stage_no} of {tranche.project_id} is {reservation.status}; "
                "a payment can only go back into a reservation that is still held"
            )
        reservation.paid -= tranche.amount
        reservation.status = ReservationStatus.OPEN
        reservation.resolved_at = None
    elif original.kind == "reserve":
        reservation = await _reservation_of(session, original)
        if reservation is None or reservation.status != "open" or reservation.paid != 0:
            raise NotReversible(f"{original.business_key}: only an open reservation with nothing paid can be reversed")
        reservation.status = ReservationStatus.REVERSED
        reservation.released = reservation.amount
        reservation.resolved_at = utcnow()
    else:
        raise NotReversible(
            f"{original.business_key}: only payments and reservations can be reversed, not {original.kind}"
        )
    txn_id = await post(
        session,
        key,
        "reversal",
        original.project_id,
        [Leg(Account.parse(e.account), e.ministry, e.fiscal_year, -e.amount) for e in legs],
        booked_on or today(),
        reverses_id=original.id,
        memo=memo,
        actor=actor,
    )
    if tranche is not None:
        tranche.reversal_transaction_id = txn_id
    await session.flush()
    return ReversalView(txn_id, original.id, original.kind, amount, created=True)


async def _reservation_of(session: AsyncSession, txn: LedgerTransaction) -> Reservation | None:
    for r in (
        await session.scalars(select(Reservation).where(Reservation.project_id == txn.project_id).with_for_update())
    ).all():
        if reserve_key(r.project_id, r.stage_no, r.part) == txn.business_key:
            return r
    return None
