"""Finance's fund pages: the fund by ministry and fiscal year (table and chart), its ceilings
(view and set, with a reason), reversals with a reason, a project's statement, the
reconciliation with each drift explained, the forecast with its what-if, and the CSV exports.

Every figure and every change is the API's own (api/routes/fund.py, api/routes/money.py,
services/fund_forecast.py): the same rules, pseudonyms for closed work, audit and refusals.
Finance reads and changes; an administrator reads."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import project_context
from api.csv_export import csv_response
from api.deps import FUND_READERS, release_connection, require_roles
from api.routes import fund as api_fund
from api.routes import money as api_money
from api.schemas.fund import CeilingIn, ReversalIn
from domain.bounds import MAX_ROW_ID, FiscalYear, YenOrZero
from domain.forecast import ForecastResult, ForecastYear
from domain.programme import PROGRAMME_CODE
from domain.proposal import PROJECT_ID_PATTERN
from domain.roles import Role
from services.fund_forecast import fund_forecast
from storage.models import AuditEntry, FiscalCeiling, Ministry, User
from web import charts
from web.formatting import fiscal_year_label
from web.pages import TRANSLATIONS, PageViewer, Viewer, language, page_session, posted, render, validation_reasons

router = APIRouter()
_readers = require_roles(*FUND_READERS)  # as the API's FundViewer
_changers = require_roles(Role.FINANCE)  # as the API's FinanceUser


def _refused(request: Request, viewer: Viewer, err: HTTPException) -> Response:
    return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)


async def _role_refusal(request: Request, viewer: Viewer, roles: Callable[[User], Awaitable[User]]) -> Response | None:
    """The refusal page when the viewer lacks the roles, else None."""
    try:
        await roles(viewer.user)
    except HTTPException as err:
        return _refused(request, viewer, err)
    return None


def _gettext(request: Request) -> Callable[[str], str]:
    return TRANSLATIONS[language(request)].gettext


def _may_change(viewer: Viewer) -> bool:
    return Role.FINANCE.value in viewer.user.roles


async def _ministry_names(read: AsyncSession, request: Request) -> dict[str, str]:
    """The registry's names in the reader's language (the catalog translates the seeded ones)."""
    translate = _gettext(request)
    return {m.code: translate(m.name) for m in (await read.scalars(select(Ministry))).all()}


# ---------------------------------------------------------------------------------------------
# The fund and its ceilings


# The page asks for a reason the API leaves optional; the API's own model checks the text again.
Reason = Annotated[str, Field(min_length=3, max_length=2000)]


class CeilingForm(BaseModel):
    ministry: Annotated[str, Field(min_length=1, max_length=16)]
    fiscal_year: FiscalYear
    amount: YenOrZero
    reason: Reason


def _as_int(text: str) -> int | str:
    # "1,000,000" and "1 000 000円" as typed by a person; anything else stays text for the check.
    # ASCII digits only, and few of them: str.isdigit() passes "²" and int() refuses it, and int()
    # refuses more than 4300 digits; both were a 500. Anything else stays text for the 422.
    cleaned = text.replace(",", "").replace(" ", "").replace("円", "").replace("¥", "").strip()
    return int(cleaned) if cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= 30 else text


async def _ceilings(read: AsyncSession) -> list[dict[str, Any]]:
    """Each ceiling with who set it and the reason they gave (from the audit log, newest last)."""
    rows = (
        await read.scalars(
            select(FiscalCeiling)
            .where(FiscalCeiling.programme_code == PROGRAMME_CODE)
            .order_by(FiscalCeiling.ministry, FiscalCeiling.fiscal_year)
        )
    ).all()
    reasons: dict[str, str] = {}
    audited = await read.scalars(
        select(AuditEntry).where(AuditEntry.action == "set_ceiling", AuditEntry.outcome == "ok").order_by(AuditEntry.id)
    )
    for entry in audited.all():
        reasons[entry.target] = str(entry.detail.get("reason", "") or "")
    return [
        {
            "ministry": c.ministry,
            "fiscal_year": c.fiscal_year,
            "amount": c.amount,
            "set_by": c.set_by,
            "set_at": c.set_at,
            "reason": reasons.get(f"ceiling:{c.ministry}:FY{c.fiscal_year}", ""),
        }
        for c in rows
    ]


async def _show_fund(
    request: Request, viewer: Viewer, status_code: int = 200, form: dict[str, str] | None = None, refusal: str = ""
) -> Response:
    await release_connection(request)
    async with page_session(request) as read:
        try:
            await _readers(viewer.user)
            fund = await api_fund.fund(request, read, viewer.user)
        except HTTPException as err:
            return _refused(request, viewer, err)
        ceilings = await _ceilings(read)
        names = await _ministry_names(read, request)
    _ = _gettext(request)
    lang = language(request)
    chart_urls = {
        m.ministry: charts.stacked_years(
            _("%(ministry)s by fiscal year") % {"ministry": names.get(m.ministry, m.ministry)},
            _("100 million yen"),
            [fiscal_year_label(y.fiscal_year, lang) for y in m.fiscal_years],
            [
                (_("Paid"), [y.paid for y in m.fiscal_years]),
                (_("Reserved"), [y.reserved for y in m.fiscal_years]),
                (_("Available"), [max(0, y.available or 0) for y in m.fiscal_years]),
            ],
        )
        for m in fund.by_ministry
        if m.fiscal_years
    }
    return render(
        request,
        "finance_fund.html",
        viewer,
        status_code=status_code,
        fund=fund,
        names=names,
        charts=chart_urls,
        ceilings=ceilings,
        may_change=_may_change(viewer),
        form=form or {},
        refusal=refusal,
        done=request.query_params.get("done"),
    )


@router.get("/finance/fund", response_class=HTMLResponse)
async def fund_page(request: Request, viewer: PageViewer) -> Response:
    return await _show_fund(request, viewer)


@router.post("/finance/fund/ceilings", response_class=HTMLResponse)
async def set_ceiling(request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    if refusal := await _role_refusal(request, viewer, _changers):
        return refusal
    fields: dict[str, Any] = {k: form.get(k, "") for k in ("ministry", "fiscal_year", "amount", "reason")}
    fields["fiscal_year"], fields["amount"] = _as_int(fields["fiscal_year"]), _as_int(fields["amount"])
    try:
        body = CeilingForm.model_validate(fields)
        ceiling = CeilingIn(amount=body.amount, reason=body.reason)
    except ValidationError as err:
        return await _show_fund(request, viewer, 422, form, validation_reasons(err))
    async with page_session(request) as read:
        try:
            await api_fund.set_ceiling(body.ministry, body.fiscal_year, ceiling, request, read, viewer.user)
        except HTTPException as err:
            return await _show_fund(request, viewer, err.status_code, form, str(err.detail))
    return RedirectResponse("/app/finance/fund?done=ceiling", status_code=303)


@router.get("/finance/fund.csv")
async def fund_csv(request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        try:
            await _readers(viewer.user)
            fund = await api_fund.fund(request, read, viewer.user)
        except HTTPException as err:
            return _refused(request, viewer, err)
        names = await _ministry_names(read, request)
    rows = [
        (
            m.ministry,
            names.get(m.ministry, m.ministry),
            y.fiscal_year,
            y.ceiling,
            y.carried_in,
            y.reserved,
            y.paid,
            y.available,
        )
        for m in fund.by_ministry
        for y in m.fiscal_years
    ]
    header = ("ministry", "ministry_name", "fiscal_year", "ceiling", "carried_in", "reserved", "paid", "available")
    return csv_response(header, rows, "trlgate-fund.csv")


@router.get("/finance/ledger.csv")
async def ledger_csv(request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        try:
            await _changers(viewer.user)  # the ledger's export is finance's, as the API's
            return await api_fund.ledger_csv(request, read, viewer.user, None)
        except HTTPException as err:
            return _refused(request, viewer, err)


# ---------------------------------------------------------------------------------------------
# Reversals


class ReversalForm(BaseModel):
    transaction_id: Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
    reason: Reason


def _show_reversal(
    request: Request, viewer: Viewer, status_code: int = 200, form: dict[str, str] | None = None, refusal: str = ""
) -> Response:
    query = request.query_params
    return render(
        request,
        "finance_reversal.html",
        viewer,
        status_code=status_code,
        form=form or {"transaction_id": query.get("transaction_id", "")},
        refusal=refusal,
        done=query.get("done"),
        reverses=query.get("reverses"),
    )


@router.get("/finance/reversals", response_class=HTMLResponse)
async def reversal_page(request: Request, viewer: PageViewer) -> Response:
    if refusal := await _role_refusal(request, viewer, _changers):
        return refusal
    return _show_reversal(request, viewer)


@router.post("/finance/reversals", response_class=HTMLResponse)
async def reverse(request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    if refusal := await _role_refusal(request, viewer, _changers):
        return refusal
    fields = {"transaction_id": _as_int(form.get("transaction_id", "")), "reason": form.get("reason", "")}
    try:
        body = ReversalForm.model_validate(fields)
    except ValidationError as err:
        return _show_reversal(request, viewer, 422, form, validation_reasons(err))
    async with page_session(request) as read:
        try:
            done = await api_fund.reverse(
                body.transaction_id, ReversalIn(reason=body.reason), request, read, viewer.user
            )
        except HTTPException as err:
            return _show_reversal(request, viewer, err.status_code, form, str(err.detail))
    return RedirectResponse(
        f"/app/finance/reversals?done={done.transaction_id}&reverses={done.reverses_id}", status_code=303
    )


# ---------------------------------------------------------------------------------------------
# A project's statement


@router.get("/finance/statement", response_class=HTMLResponse)
async def find_statement(request: Request, viewer: PageViewer) -> Response:
    """The fund page's look-up form: a project id, to its statement."""
    project_id = request.query_params.get("project_id", "").strip()
    if not re.fullmatch(PROJECT_ID_PATTERN, project_id):
        _ = _gettext(request)
        reason = _("Type a project id, for example KP-2026-0001.")
        return render(request, "refused.html", viewer, status_code=422, reason=reason)
    return RedirectResponse(f"/app/finance/statement/{project_id}", status_code=303)


async def _statement_context(request: Request, read: AsyncSession, viewer: Viewer, project_id: str) -> Any:
    await _readers(viewer.user)  # a role refusal names no project
    return await api_money.statement_reader(await project_context(project_id, request, read, viewer.user))


@router.get("/finance/statement/{project_id}.csv")
async def statement_csv(project_id: str, request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        try:
            ctx = await _statement_context(request, read, viewer, project_id)
        except HTTPException as err:
            return _refused(request, viewer, err)
        names = await _ministry_names(read, request)
        return await api_money.statement_csv_response(
            read, ctx.project, names.get(ctx.project.funding_ministry, ctx.project.funding_ministry)
        )


@router.get("/finance/statement/{project_id}", response_class=HTMLResponse)
async def statement_page(project_id: str, request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        try:
            ctx = await _statement_context(request, read, viewer, project_id)
        except HTTPException as err:
            return _refused(request, viewer, err)
        statement = await api_money.statement(ctx)
        names = await _ministry_names(read, request)
        project = ctx.project
    reversed_ids = {line.reverses_id for line in statement.lines if line.reverses_id}
    return render(
        request,
        "finance_statement.html",
        viewer,
        project=project,
        ministry_name=names.get(project.funding_ministry, project.funding_ministry),
        statement=statement,
        reversed_ids=reversed_ids,
        may_change=_may_change(viewer),
    )


# ---------------------------------------------------------------------------------------------
# Reconciliation


@router.get("/finance/reconciliation", response_class=HTMLResponse)
async def reconciliation_page(request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        try:
            await _readers(viewer.user)
        except HTTPException as err:
            return _refused(request, viewer, err)
        client = request.app.state.temporal
        if client is None:
            result, problem = None, "Temporal is not connected"
        else:
            try:
                result, problem = await api_fund.reconciliation(request, read, client, viewer.user), None
            except HTTPException as err:
                result, problem = None, str(err.detail)
    return render(request, "finance_reconciliation.html", viewer, result=result, problem=problem)


# ---------------------------------------------------------------------------------------------
# Forecast


def _rate(typed: str, name: str, _: Callable[[str], str]) -> Decimal:
    """A percentage as typed (blank: 0) as a rate from 0 to 1; refused in the reader's language."""
    text = typed.strip() or "0"
    said = {"field": name, "value": text}
    try:
        pct = Decimal(text)
    except InvalidOperation:
        raise ValueError(_("%(field)s: %(value)s is not a number") % said) from None
    if not pct.is_finite() or not Decimal(0) <= pct <= Decimal(100):
        raise ValueError(_("%(field)s: %(value)s is not between 0 and 100") % said)
    if pct != pct.quantize(Decimal("0.01")):
        raise ValueError(_("%(field)s: %(value)s has more than two decimals") % said)
    return pct / 100


def _what_if(request: Request) -> tuple[Decimal, Decimal, dict[str, str]]:
    q, _ = request.query_params, _gettext(request)
    typed = {"kill_pct": q.get("kill_pct", "0"), "recycle_pct": q.get("recycle_pct", "0")}
    return _rate(typed["kill_pct"], "kill_pct", _), _rate(typed["recycle_pct"], "recycle_pct", _), typed


def _total_row(year: ForecastYear) -> int:
    return year.committed + year.planned


@router.get("/finance/forecast", response_class=HTMLResponse)
async def forecast_page(request: Request, viewer: PageViewer) -> Response:
    if refusal := await _role_refusal(request, viewer, _readers):
        return refusal
    try:
        kill, recycle, typed = _what_if(request)
    except ValueError as err:
        q = request.query_params
        form = {"kill_pct": q.get("kill_pct", ""), "recycle_pct": q.get("recycle_pct", "")}
        return render(
            request, "finance_forecast.html", viewer, status_code=422, form=form, refusal=str(err), result=None
        )
    async with page_session(request) as read:
        result = await fund_forecast(read, kill, recycle)
        names = await _ministry_names(read, request)
    return render(
        request,
        "finance_forecast.html",
        viewer,
        form=typed,
        refusal="",
        result=result,
        names=names,
        chart=_forecast_chart(request, result),
        csv_query=urlencode(typed),
    )


def _forecast_chart(request: Request, result: ForecastResult) -> str:
    _, lang = _gettext(request), language(request)
    years = result.total
    return charts.side_by_side_years(
        _("The programme's next ten fiscal years"),
        _("100 million yen"),
        [fiscal_year_label(y.fiscal_year, lang) for y in years],
        [
            (_("Ceiling and carried in"), [None if y.ceiling is None else y.ceiling + y.carried_in for y in years]),
            (_("Committed and planned"), [_total_row(y) for y in years]),
        ],
    )


@router.get("/finance/forecast.csv")
async def forecast_csv(request: Request, viewer: PageViewer) -> Response:
    try:
        await _readers(viewer.user)
        kill, recycle, _typed = _what_if(request)
    except HTTPException as err:
        return _refused(request, viewer, err)
    except ValueError as err:
        return render(request, "refused.html", viewer, status_code=422, reason=str(err))
    async with page_session(request) as read:
        result = await fund_forecast(read, kill, recycle)
        names = await _ministry_names(read, request)
    _ = _gettext(request)
    rows: list[tuple[object, ...]] = []
    for m in result.ministries:
        for y in m.years:
            rows.append((m.ministry, names.get(m.ministry, m.ministry), *_year_cells(y)))
    for y in result.total:
        rows.append(("", _("All ministries"), *_year_cells(y)))
    header = (
        "ministry",
        "ministry_name",
        "fiscal_year",
        "ceiling",
        "carried_in",
        "committed",
        "planned",
        "available",
        "kill_rate",
        "recycle_rate",
    )
    return csv_response(header, [(*r, kill, recycle) for r in rows], "trlgate-forecast.csv")


def _year_cells(y: ForecastYear) -> tuple[object, ...]:
    return (y.fiscal_year, y.ceiling, y.carried_in, y.committed, y.planned, y.available)
