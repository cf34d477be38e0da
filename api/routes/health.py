"""Liveness and readiness of the API and its two backing services."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import text

from api.errors import responses
from api.schemas.common import HealthOut

router = APIRouter(prefix="/health", tags=["ops"])
log = logging.getLogger("trlgate.api")


class LiveOut(BaseModel):
    status: str


async def _checked(request: Request, response: Response) -> HealthOut:
    database = temporal = "ok"
    # A health check reports every failure of a backing service rather than failing itself, so
    # it catches broadly; each failure is named (the check and the error) and logged.
    try:
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as err:
        log.warning("health: the database check (SELECT 1) failed", exc_info=err)
        database = f"error: SELECT 1 failed: {err.__class__.__name__}"
    client = request.app.state.temporal
    if client is None:
        temporal = "error: not connected (the API found no Temporal server at start)"
    else:
        try:
            await client.service_client.check_health()
        except Exception as err:
            log.warning("health: the Temporal health check failed", exc_info=err)
            temporal = f"error: health check failed: {err.__class__.__name__}: {err}"
    healthy = database == temporal == "ok"
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthOut(status="ok" if healthy else "degraded", database=database, temporal=temporal)


@router.get("", response_model=HealthOut, responses=responses(503))
async def health(request: Request, response: Response) -> HealthOut:
    """Liveness of the API and its two backing services."""
    return await _checked(request, response)


@router.get("/live", response_model=LiveOut)
async def live() -> LiveOut:
    """The process answers (no I/O): a liveness probe restarts it when this stops answering."""
    return LiveOut(status="ok")


@router.get(
    "/ready",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Not ready: the database or Temporal fails (reasons given)"}},
)
async def ready(request: Request, response: Response) -> HealthOut:
    """Ready for traffic: the database and Temporal both answer; 503 with the reasons otherwise."""
    return await _checked(request, response)
