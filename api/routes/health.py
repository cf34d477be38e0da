from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import text

from api.errors import responses
from api.schemas import HealthOut

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=HealthOut, responses=responses(503))
async def health(request: Request, response: Response) -> HealthOut:
    """Liveness of the API and its two backing services."""
    database = temporal = "ok"
    try:
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as err:
        database = f"error: {err.__class__.__name__}"
    client = request.app.state.temporal
    try:
        if client is None:
            raise RuntimeError("not connected")
        await client.service_client.check_health()
    except Exception as err:
        temporal = f"error: {err}"
    healthy = database == temporal == "ok"
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthOut(status="ok" if healthy else "degraded", database=database, temporal=temporal)
