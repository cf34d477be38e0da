"""What the admin pages share: the role check, and a form's problems beside its fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import require_roles
from domain.roles import Role
from web.pages import Viewer, render

_admin = require_roles(Role.ADMIN)


async def refused(request: Request, viewer: Viewer) -> Response | None:
    """The refusal page for anyone but an administrator, or None."""
    try:
        await _admin(viewer.user)
    except HTTPException as err:
        return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    return None


@dataclass
class FormState:
    """A form as typed, with each reason beside its field and all of them above the form."""

    values: dict[str, Any] = field(default_factory=dict)  # text, and lists for check boxes
    errors: dict[str, list[str]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def fail(self, key: str, reason: str) -> None:
        self.errors.setdefault(key, []).append(reason)
        self.reasons.append(reason)

    def invalid(self, err: ValidationError) -> None:
        for e in err.errors():
            loc = [str(p) for p in e["loc"]]
            self.fail(loc[0] if loc else "form", f"{'.'.join(loc)}: {e['msg']}" if loc else str(e["msg"]))

    def refused(self, err: HTTPException, where: dict[str, str]) -> None:
        """A service's refusal, beside the field a phrase of its reason names (`where`: phrase ->
        field), else above the form."""
        reason = str(err.detail)
        self.fail(next((key for phrase, key in where.items() if phrase in reason), "form"), reason)
