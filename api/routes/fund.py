from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.deps import FundViewer, SessionDep
from api.errors import AUTH, responses
from api.schemas import FundOut, MinistryFundsOut
from storage import ledger
from storage.models import Programme
from storage.seed import PROGRAMME_CODE

router = APIRouter(tags=["fund"])


@router.get("/fund", response_model=FundOut, responses={**AUTH, **responses(404)})
async def fund(session: SessionDep, _user: FundViewer) -> FundOut:
    """The fund by funding ministry: allocated, reserved (committed, unpaid), paid and available."""
    programme = await session.get(Programme, PROGRAMME_CODE)
    if programme is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="the programme is not set up: run the seed")
    rows = await ledger.fund_summary(session, PROGRAMME_CODE)
    return FundOut(
        programme=programme.code,
        name=programme.name,
        fund_total=programme.fund_total,
        allocated=sum(r.allocated for r in rows),
        reserved=sum(r.reserved for r in rows),
        paid=sum(r.paid for r in rows),
        available=sum(r.available for r in rows),
        by_ministry=[MinistryFundsOut(**r.__dict__) for r in rows],
        invariant_violations=await ledger.invariant_violations(session, PROGRAMME_CODE),
    )
