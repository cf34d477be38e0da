"""The administrator's pages under /app/admin: users, need-to-know grants, the audit log, the
ministry registry. Admin only; each page calls the same service as the API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from web.pages import PageViewer
from web.routes.admin import audit, grants, ministries, users

router = APIRouter(prefix="/admin")


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def admin_home(viewer: PageViewer) -> RedirectResponse:
    return RedirectResponse("/app/admin/users", status_code=303)


for _module in (users, grants, audit, ministries):
    router.include_router(_module.router)
