"""The fund as finance sees it: totals by ministry and fiscal year, ceilings, corrections,
the ledger as CSV, and the reconciliation of ledger and workflows."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.access import authorize
from api.audit import record
from api.csv_export import MEDIA_TYPE, csv_response
from api.deps import ClientDep, FinanceUser, FundViewer, SessionDep, release_connection
from api.errors import AUTH, responses
from api.paging import ListOut, PageIn
from api.params import FiscalYearNo, TransactionId
from api.pseudonyms import Pseudonyms, pseudonyms_for
from api.schemas.fund import (
    CeilingIn,
    CeilingOut,
    DriftOut,
    FiscalYearOut,
    FundOut,
    LedgerEntryOut,
    MinistryFundsOut,
    ReconciliationOut,
    ReversalIn,
    ReversalOut,
)
from domain.forecast import ForecastResult
from domain.programme import PROGRAMME_CODE
from domain.proposal import PROJECT_ID_PATTERN
from services.fund_forecast import fund_forecast
from services.workflow_views import workflow_views
from storage import fund_checks, ledger
from storage.access import is_closed
from storage.audit import audit
from storage.models import FundAllocation, Programme, Project, User
from storage.reconcile import Drift, Tally
from storage.reconcile import stream as reconcile_stream

router = APIRouter(prefix="/fund", tags=["fund"])
# A workflow whose task keeps failing leaves a query waiting for a worker that never answers it.
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {}}, "description": "CSV (UTF-8 with BOM, CRLF), one row per ledger entry"}
}


@router.get("", response_model=FundOut, responses={**AUTH, **responses(404)})
async def fund(request: Request, session: SessionDep, user: FundViewer) -> FundOut:
    """The fund by funding ministry and fiscal year: allocated (ceiling per year), reserved
    (committed, unpaid), paid and available, with carry-over; and any broken ledger rule (naming a
    closed project the reader may not read by its pseudonym)."""
    programme = await session.get(Programme, PROGRAMME_CODE)
    if programme is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="the programme is not set up: run the seed")
    rows = await ledger.fund_summary(session, PROGRAMME_CODE)
    names = await pseudonyms_for(request, session, user, "fund")
    check = await fund_checks.latest(session)  # the scan itself runs on a schedule and in fund-check
    return FundOut(
        programme=programme.code,
        name=programme.name,
        fund_total=programme.fund_total,
        allocated=sum(r.allocated for r in rows),
        reserved=sum(r.reserved for r in rows),
        paid=sum(r.paid for r in rows),
        available=sum(r.available for r in rows),
        by_ministry=[
            MinistryFundsOut(
                ministry=r.ministry,
                allocated=r.allocated,
                reserved=r.reserved,
                paid=r.paid,
                available=r.available,
                fiscal_years=[
                    FiscalYearOut(
                        fiscal_year=y.fiscal_year,
                        ceiling=y.ceiling,
                        carried_in=y.carried_in,
                        reserved=y.reserved,
                        paid=y.paid,
                        available=y.available,
                    )
                    for y in r.fiscal_years
                ],
            )
            for r in rows
        ],
        invariant_violations=[names.text(v) for v in (check.violations if check else [])],
        checked_at=check.checked_at if check else None,
    )


@router.put(
    "/ceilings/{ministry}/{fiscal_year}",
    response_model=CeilingOut,
    responses={**AUTH, **responses(404, 409, 422)},
)
async def set_ceiling(
    ministry: str, fiscal_year: FiscalYearNo, body: CeilingIn, request: Request, session: SessionDep, user: FinanceUser
) -> CeilingOut:
    """Set a funding ministry's ceiling for one fiscal year (what it leaves unused carries over).
    Refused with 409 if what is already committed to the year would exceed it."""
    if await session.get(FundAllocation, (PROGRAMME_CODE, ministry)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{ministry} funds no allocation of this programme")
    target = f"ceiling:{ministry}:FY{fiscal_year}"
    await release_connection(request)  # one pooled connection at a time: the write's
    try:
        async with request.app.state.sessionmaker.begin() as tx:
            row = await ledger.set_ceiling(
                tx,
                programme_code=PROGRAMME_CODE,
                ministry=ministry,
                fiscal_year=fiscal_year,
                amount=body.amount,
                actor=user.username,
            )
            out = CeilingOut(
                programme=PROGRAMME_CODE,
                ministry=ministry,
                fiscal_year=fiscal_year,
                amount=row.amount,
                set_by=row.set_by,
            )
            audit(tx, user.username, "set_ceiling", target, "ok", amount=body.amount, reason=body.reason)
    except ledger.LedgerError as err:
        await record(request, user.username, "set_ceiling", target, "rejected", reason=str(err))
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from err
    return out


@router.post(
    "/transactions/{transaction_id}/reverse",
    response_model=ReversalOut,
    responses={**AUTH, **responses(404, 409, 422)},
)
async def reverse(
    transaction_id: TransactionId, body: ReversalIn, request: Request, session: SessionDep, user: FinanceUser
) -> ReversalOut:
    """Correct a payment (the money returns to its reservation) or a reservation made in error
    (while nothing is paid from it) by posting its exact negation. Entries are never changed."""
    target = f"ledger:{transaction_id}"
    txn = await session.get(ledger.LedgerTransaction, transaction_id)
    if txn is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no ledger transaction {transaction_id}")
    project = await session.get(Project, txn.project_id) if txn.project_id else None
    if project is not None and is_closed(project):
        # Correcting a closed project's books needs what reading it needs; the refusal names the
        # transaction, not the project the reader knows only by its pseudonym.
        await authorize(request, session, user, project, "reverse", shown_as=target)
    await release_connection(request)  # one pooled connection at a time: the write's
    try:
        async with request.app.state.sessionmaker.begin() as tx:
            view = await ledger.reverse(tx, transaction_id=transaction_id, actor=user.username, memo=body.reason)
            audit(tx, user.username, "reverse", target, "ok", reason=body.reason, amount=view.amount)
    except ledger.LedgerError as err:
        await record(request, user.username, "reverse", target, "rejected", reason=str(err))
        names = await pseudonyms_for(request, session, user, "reverse")  # the reason may name a closed project
        raise HTTPException(status.HTTP_409_CONFLICT, detail=names.text(str(err))) from err
    return ReversalOut(**view.__dict__)


# The columns that can carry a project id (in a business key, an account name, a reversal's memo).
_NAMING = ("business_key", "project_id", "account", "memo")
NAMING_COLUMNS = frozenset(ledger.CSV_COLUMNS.index(c) for c in _NAMING)


# One project's entries, named by its id or, for closed work the reader may not read, its pseudonym.
LedgerProject = Annotated[
    str | None, Query(pattern=PROJECT_ID_PATTERN, description="A project id, or a closed project's pseudonym.")
]


@router.get("/ledger.csv", response_class=Response, responses={**CSV, **AUTH})
async def ledger_csv(
    request: Request,
    session: SessionDep,
    user: FinanceUser,
    project_id: LedgerProject = None,
) -> Response:
    """Every ledger entry (optionally one project's), for finance's spreadsheets and auditors.
    A closed project the reader may not read appears under its pseudonym (`closed-` and 12 hex
    digits, stable across exports) wherever it is named; every amount is there, so totals are
    exact. Its pseudonym filters; its real id finds nothing, as an unknown id."""
    names = await pseudonyms_for(request, session, user, "ledger")
    wanted = names.resolve(project_id) if project_id is not None else None
    found = [] if project_id is not None and wanted is None else await ledger.entry_rows(session, wanted)
    rows = [tuple(names.text(v) if i in NAMING_COLUMNS else v for i, v in enumerate(row)) for row in found]
    return csv_response(ledger.CSV_COLUMNS, rows, f"trlgate-ledger{'-' + project_id if project_id else ''}.csv")


@router.get("/ledger", response_model=ListOut[LedgerEntryOut], responses={**AUTH, **responses(422)})
async def ledger_entries(
    request: Request,
    session: SessionDep,
    user: FinanceUser,
    paging: PageIn,
    project_id: LedgerProject = None,
) -> ListOut[LedgerEntryOut]:
    """The ledger's entries, oldest first, in pages (follow `next`): what ledger.csv holds, with
    the same pseudonyms and the same filter."""
    names = await pseudonyms_for(request, session, user, "ledger")
    wanted = names.resolve(project_id) if project_id is not None else None
    if project_id is not None and wanted is None:
        return ListOut(items=[], total=0, next=None)
    found = await ledger.entry_page(session, wanted, paging.cursor, paging.limit)
    items = [_entry_out(names, entry_id, row) for entry_id, row in found.items]
    return ListOut(items=items, total=found.total, next=found.next)


_OPTIONAL = frozenset(("project_id", "booked_on", "reverses_id"))  # empty in the CSV, null here


def _entry_out(names: Pseudonyms, entry_id: int, row: tuple[Any, ...]) -> LedgerEntryOut:
    fields = dict(zip(ledger.CSV_COLUMNS, row, strict=True))
    named = {c: names.text(fields[c]) for c in _NAMING}
    shown = {k: None if v == "" and k in _OPTIONAL else v for k, v in (fields | named).items()}
    return LedgerEntryOut(entry_id=entry_id, **shown)


@router.get(
    "/reconciliation",
    response_model=ReconciliationOut,
    responses={**AUTH, **responses(503)},
    response_class=StreamingResponse,
)
async def reconciliation_stream(
    request: Request, session: SessionDep, client: ClientDep, user: FundViewer
) -> StreamingResponse:
    """Compare every project's ledger figures with its workflow's state; list each drift (a closed
    project the reader may not read under its pseudonym).

    Streamed as it goes, a page of projects at a time (workflow state from Temporal's visibility,
    one query per page): the body is the JSON object `{"drifts": [...], "checked": n}`, `checked`
    last because it is known only at the end. Temporal unreachable at the start: 503; a failure
    midway ends the stream without its closing `]}`, so a client never takes half a list for all."""
    names = await pseudonyms_for(request, session, user, "reconciliation")
    await release_connection(request)  # the stream reads with its own session, page by page
    tally = Tally()
    found = _drifts(request, client, tally)
    try:
        first = await anext(found, None)  # the first page: Temporal down is still a clean 503
    except RPCError as err:
        await found.aclose()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"Temporal is unavailable: {err}") from err

    async def body() -> AsyncIterator[bytes]:
        yield b'{"drifts": ['
        drift, comma = first, b""
        while drift is not None:
            yield comma + _drift_out(names, drift).model_dump_json().encode()
            drift, comma = await anext(found, None), b","
        yield f'], "checked": {tally.checked}}}'.encode()

    return StreamingResponse(body(), media_type="application/json")


async def reconciliation(request: Request, session: AsyncSession, client: Client, user: User) -> ReconciliationOut:
    """The whole reconciliation as one object (the finance and operations pages render it)."""
    names = await pseudonyms_for(request, session, user, "reconciliation")
    await release_connection(request)
    tally = Tally()
    try:
        drifts = [_drift_out(names, d) async for d in _drifts(request, client, tally)]
    except RPCError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"Temporal is unavailable: {err}") from err
    return ReconciliationOut(checked=tally.checked, drifts=drifts)


async def _drifts(request: Request, client: Client, tally: Tally) -> AsyncGenerator[Drift]:
    async with request.app.state.read_sessionmaker() as read:
        async for drift in reconcile_stream(read, lambda page: workflow_views(client, page), tally):
            yield drift


def _drift_out(names: Pseudonyms, d: Drift) -> DriftOut:
    return DriftOut(
        project_id=names.text(d.project_id),
        problem=names.text(d.problem),
        kind=d.kind,
        facts={k: names.text(v) if isinstance(v, str) else v for k, v in d.facts.items()},
    )


KillRate = Annotated[
    Decimal, Query(ge=0, le=1, max_digits=6, decimal_places=4, description="Chance a project is killed at each gate.")
]
RecycleRate = Annotated[
    Decimal,
    Query(ge=0, le=1, max_digits=6, decimal_places=4, description="Chance a stage is repeated once before its gate."),
]


@router.get("/forecast", response_model=ForecastResult, responses={**AUTH, **responses(422)})
async def forecast(
    session: SessionDep, user: FundViewer, kill_rate: KillRate = Decimal(0), recycle_rate: RecycleRate = Decimal(0)
) -> ForecastResult:
    """Commitments by fiscal year for the next ten years (this one first) and each funding
    ministry: what the ledger holds (paid, and reserved stages by their tranche schedule), the
    later stages of every active project by their plan, against the ceilings with carry-over.
    The what-if weights each later stage by the chance of passing the gates before it
    (1 - kill_rate per gate) and adds recycle_rate x a stage's cost for its expected repeat.
    `short_in`: the first year over a ceiling; a year's `available`: room for new projects."""
    return await fund_forecast(session, kill_rate, recycle_rate)
