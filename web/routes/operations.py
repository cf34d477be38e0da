"""Operations: the stuck or overdue work of the whole programme (services/operations.py) and the
reconciliation's drift (the API's own, api/routes/fund.reconciliation), each row linked into the
Temporal UI filtered by search attributes. Ops and admin only.

Closed work an operator may not read shows as the fund views show it (api/pseudonyms.py): under
its pseudonym, no title and no link (a Temporal UI link would name the project); it still counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import require_roles
from api.pseudonyms import PREFIX as PSEUDONYM_PREFIX
from api.pseudonyms import pseudonym
from api.routes import fund as api_fund
from api.schemas.fund import DriftOut
from config import Settings
from domain.roles import FundingMinistry, Role
from domain.trl import MAX_TRL
from services import mail_outbox, operations
from services.tranche_approvals import Sort, awaiting_approval
from web import temporal_ui
from web.pages import PageViewer, Viewer, page_session, render, withheld_closed

router = APIRouter()
_ops = require_roles(Role.OPS, Role.ADMIN)
PER_PAGE = 25
SECTIONS = ("gates", "holds", "handoffs", "four_eyes", "payments", "drift")


def _page_no() -> int:
    # One Query per parameter: FastAPI names a shared one after the last parameter using it.
    return Query(1, ge=1, le=100_000)


def _pages(pages: dict[str, int]) -> dict[str, str]:
    """Each section's pager prefix: the other sections stay on the page they show."""
    out = {}
    for name in SECTIONS:
        others = {f"{k}_page": v for k, v in pages.items() if k != name and v > 1}
        out[name] = "/app/operations?" + urlencode({**others, f"{name}_page": ""})
    return out


@router.get("/operations", response_class=HTMLResponse)
async def operations_page(
    request: Request,
    viewer: PageViewer,
    gates_page: int = _page_no(),
    holds_page: int = _page_no(),
    handoffs_page: int = _page_no(),
    four_eyes_page: int = _page_no(),
    payments_page: int = _page_no(),
    drift_page: int = _page_no(),
) -> Response:
    try:
        await _ops(viewer.user)
    except HTTPException as err:
        return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    settings: Settings = request.app.state.settings
    now = datetime.now(UTC)
    async with page_session(request) as read:
        gates = await operations.overdue_gates(read, now, gates_page, PER_PAGE)
        holds = await operations.holds(read, settings.seconds_per_day, holds_page, PER_PAGE)
        handoffs = await operations.overdue_handoffs(read, now, handoffs_page, PER_PAGE)
        # Finance's own list and rule (closed work only where granted, as finance sees it).
        four_eyes = await awaiting_approval(read, viewer.user, four_eyes_page, PER_PAGE, Sort.DUE, now)
        payments = await operations.unsent_payments(read, payments_page, PER_PAGE)
        mail = await mail_outbox.summary(read, limit=PER_PAGE)  # e-mail the server refused or gave up on
        repair = await operations.last_repair(read)
        shown_ids = {r.project_id for section in (gates, holds, handoffs, four_eyes, payments) for r in section.rows}
        shown_ids |= repair.project_ids if repair else set()
        withheld = await withheld_closed(request, read, viewer.user, shown_ids, "operations")
        # Last: the reconciliation asks every workflow, and hands the read connection back first.
        drift, drift_refusal = await _drift(request, read, viewer)
    drift_pages = max(1, -(-len(drift) // PER_PAGE))
    drift_page = min(drift_page, drift_pages)
    drift_rows = drift[(drift_page - 1) * PER_PAGE : drift_page * PER_PAGE]

    def ui(query: str) -> str:
        return temporal_ui.workflows_url(settings.resolved_temporal_ui_url(), settings.temporal_namespace, query)

    current = {
        "gates": gates.page,
        "holds": holds.page,
        "handoffs": handoffs.page,
        "four_eyes": four_eyes.page,
        "payments": payments.page,
    }
    return render(
        request,
        "operations.html",
        viewer,
        now=now,
        gates=gates,
        holds=holds,
        handoffs=handoffs,
        four_eyes=four_eyes,
        payments=payments,
        mail=mail,
        repair=repair,
        drift_rows=drift_rows,
        drift_total=len(drift),
        drift_page=drift_page,
        drift_pages=drift_pages,
        drift_refusal=drift_refusal,
        hidden={pid: pseudonym(request.app.state.jwt_secret, pid) for pid in withheld},
        pseudonymous=lambda name: name.startswith(PSEUDONYM_PREFIX),
        prefix=_pages({**current, "drift": drift_page}),
        ui=ui,
        ui_project=lambda pid: ui(temporal_ui.project_query(pid)),
        ui_overdue_gates=ui(temporal_ui.overdue_gates_query()),
        ui_on_hold=ui(temporal_ui.on_hold_query()),
        saved_queries=_saved_queries(ui),
    )


@dataclass(frozen=True)
class SavedQueries:
    """The daily questions as Temporal UI links (README "Operations: watch it in the Temporal UI")."""

    overdue_gates: str
    on_hold: str
    four_eyes: str
    overdue_handoffs: str
    by_ministry: dict[str, str]
    by_trl: dict[int, str]


def _saved_queries(ui: Callable[[str], str]) -> SavedQueries:
    return SavedQueries(
        overdue_gates=ui(temporal_ui.overdue_gates_query()),
        on_hold=ui(temporal_ui.on_hold_query()),
        four_eyes=ui(temporal_ui.four_eyes_query()),
        overdue_handoffs=ui(temporal_ui.overdue_handoffs_query()),
        by_ministry={m.value: ui(temporal_ui.ministry_query(m.value)) for m in FundingMinistry},
        by_trl={trl: ui(temporal_ui.trl_query(trl)) for trl in range(1, MAX_TRL + 1)},
    )


async def _drift(request: Request, read: AsyncSession, viewer: Viewer) -> tuple[list[DriftOut], str | None]:
    """The API's reconciliation (pseudonyms and audit as there); Temporal out of reach is said in
    the section, never a failed page."""
    client = request.app.state.temporal
    if client is None:
        return [], "Temporal is not connected"
    try:
        result = await api_fund.reconciliation(request, read, client, viewer.user)
    except HTTPException as err:
        return [], str(err.detail)
    return result.drifts, None
