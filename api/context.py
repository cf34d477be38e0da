"""The project a route is about and the caller's rights on it, handed to the route as a dependency
(instead of each route threading its request, session, client and user through helpers).

`ProjectCtx` is any reader of the project (api/access.authorize decides, as for every read: 404
where no role reaches it, 403 with the reason where clearance or need-to-know is missing, closed
work audited); the variants add a role and, for commands, "the project's programme manager"."""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle

from api.access import authorize, is_project_pm
from api.commands import send_update
from api.deps import CurrentUser, SessionDep, get_client, require_roles
from domain.command import Commanded
from domain.roles import Role
from domain.security import AccessDecision
from storage.models import Project, User


@dataclass(frozen=True)
class ProjectContext:
    project: Project
    user: User
    access: AccessDecision
    request: Request
    session: AsyncSession

    @property
    def is_pm(self) -> bool:
        """The project's programme manager, or an admin."""
        return is_project_pm(self.user, self.project)

    @property
    def temporal(self) -> Client | None:
        client: Client | None = self.request.app.state.temporal
        return client

    @property
    def workflow(self) -> WorkflowHandle[Any, Any]:
        """The project workflow's handle (503 when Temporal is not connected)."""
        return get_client(self.request).get_workflow_handle(self.project.workflow_id)

    async def command(
        self,
        update: Any,
        arg: Commanded,
        *,
        action: str,
        target: str = "",
        workflow_id: str = "",
        update_id: str | None = None,
        **detail: Any,
    ) -> Any:
        """Send a command to the project's workflow (or to `workflow_id`, a child of it) as this
        user: audited, a refusal a 409 with the reason (api/commands.send_update)."""
        return await send_update(
            self.request,
            get_client(self.request),
            workflow_id or self.project.workflow_id,
            update,
            arg,
            actor=self.user.username,
            action=action,
            target=target or f"project:{self.project.id}",
            update_id=update_id,
            **detail,
        )


async def project_context(project_id: str, request: Request, session: SessionDep, user: CurrentUser) -> ProjectContext:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"project {project_id} not found")
    access = await authorize(request, session, user, project, request.url.path)
    return ProjectContext(project, user, access, request, session)


ProjectCtx = Annotated[ProjectContext, Depends(project_context)]


def project_for(*roles: Role, pm_only: bool = False) -> Callable[..., Coroutine[Any, Any, ProjectContext]]:
    """A reader of the project holding one of `roles` (checked first: a role refusal names no
    project); with `pm_only`, also its programme manager (or an admin)."""
    has_role = require_roles(*roles)
    # Evaluated here (this module does not postpone annotations): FastAPI reads the dependency's
    # signature, and a postponed annotation could not name the local `has_role`.

    async def dependency(user: Annotated[User, Depends(has_role)], ctx: ProjectCtx) -> ProjectContext:
        if pm_only and not ctx.is_pm:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's programme manager may do this")
        return ctx

    return dependency


ProjectPm = Annotated[ProjectContext, Depends(project_for(Role.PM, Role.ADMIN, pm_only=True))]
ProjectPmRole = Annotated[ProjectContext, Depends(project_for(Role.PM, Role.ADMIN))]
ProjectSigner = Annotated[ProjectContext, Depends(project_for(Role.FINANCE, Role.PM))]
ProjectReporter = Annotated[ProjectContext, Depends(project_for(Role.PERFORMER, Role.PM))]
ProjectPerformer = Annotated[ProjectContext, Depends(project_for(Role.PERFORMER))]
