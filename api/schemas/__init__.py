"""Request and response bodies of the HTTP API, one module per resource, every one re-exported
here (`from api.schemas import ProjectOut` keeps working): each module's __all__ names its bodies."""

from api.schemas.common import *  # noqa: F403
from api.schemas.fund import *  # noqa: F403
from api.schemas.gates import *  # noqa: F403
from api.schemas.handoffs import *  # noqa: F403
from api.schemas.money import *  # noqa: F403
from api.schemas.projects import *  # noqa: F403
from api.schemas.tasks import *  # noqa: F403
