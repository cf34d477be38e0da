"""Every route of the API and of the pages, included once per process.

FastAPI builds an included router's routes (their dependencies, parameters and response fields)
lazily, once per include, on the first request. Each `create_app` used to include every router
again, so each new application spent about 0.3 s of CPU on its first request building the same
routes; the routers included here once are shared by every application the process creates (the
test suite creates hundreds). The application's own `dependency_overrides` do not reach routes
included this way (nothing here uses them)."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter
from starlette.routing import BaseRoute

import web
from api.routes import (
    audit_log,
    auth,
    codec,
    files,
    fund,
    gates,
    handoffs,
    health,
    money,
    notifications,
    portfolio,
    projects,
    security,
    tasks,
    visions,
)
from api.routes import ministries as ministries_admin
from api.routes import users as users_admin

API_ROUTERS = (
    auth.router,
    auth.me_router,
    projects.router,
    projects.closed_out_router,
    projects.documents_router,
    gates.router,
    gates.after_decision,
    tasks.router,
    handoffs.router,
    handoffs.project_handoffs,
    handoffs.ministries_router,
    fund.router,
    money.router,
    notifications.router,
    security.clearances,
    users_admin.router,
    ministries_admin.router,
    audit_log.router,
    security.router,
    codec.router,
    health.router,
    files.router,
    visions.visions_router,
    visions.areas_router,
    portfolio.router,
)


@cache
def routes() -> tuple[BaseRoute, ...]:
    """The API's routes, then the pages' under /app (web/); a fresh list per application."""
    root = APIRouter()
    for router in API_ROUTERS:
        root.include_router(router)
    for router in web.page_routers():
        root.include_router(router, prefix=web.PREFIX, include_in_schema=False)
    return tuple(root.routes)
