"""One shape for every log record: structlog renders our own events and, through its
ProcessorFormatter, the standard library's (uvicorn, temporalio, sqlalchemy, logging.getLogger).

Console lines in development, one JSON object per line with TRLGATE_LOG_FORMAT=json."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from telemetry import context

# temporalio's workflow.logger / activity.logger put their context in the record's `extra` as
# dicts; these are the keys worth a field of their own (activity's workflow_run_id is the run_id).
_WORKFLOW_KEYS = {"workflow_id": "workflow_id", "run_id": "run_id", "workflow_type": "workflow_type"}
_ACTIVITY_KEYS = {
    "activity_id": "activity_id",
    "activity_type": "activity_type",
    "attempt": "attempt",
    "workflow_id": "workflow_id",
    "workflow_run_id": "run_id",
    "workflow_type": "workflow_type",
}


def _request_fields(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    for key, value in context.current().items():
        event.setdefault(key, value)
    return event


def _temporal_fields(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    for attr, keys in (("temporal_workflow", _WORKFLOW_KEYS), ("temporal_activity", _ACTIVITY_KEYS)):
        found = getattr(record, attr, None) or event.pop(attr, None)
        if isinstance(found, dict):
            for source, target in keys.items():
                if found.get(source) is not None:
                    event.setdefault(target, found[source])
            if found.get("task_queue"):
                event.setdefault("task_queue", found["task_queue"])
    return event


_process = {"name": "trlgate"}


def _add_process(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    event.setdefault("process", _process["name"])
    return event


SHARED: list[Processor] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_process,
    _request_fields,
    _temporal_fields,
]

# Our own structlog events become standard records, so whichever handlers a process (or a test)
# has see them; the ProcessorFormatter of configure_logging renders them in the one shape.
structlog.configure(
    processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def formatter(fmt: Literal["console", "json"]) -> logging.Formatter:
    last: list[Processor]
    if fmt == "json":
        last = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # Plain tracebacks: structlog's default with rich installed prints every frame's local
        # variables (payloads, task tokens, closed work's content) and rendering them cost a
        # struggling worker 96% of its CPU (py-spy, bench.burst).
        last = [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
    )


def configure_logging(process: str, fmt: Literal["console", "json"] = "console", level: str = "INFO") -> None:
    """For a process's entry point (worker, API): the root logger writes through structlog to
    stderr; uvicorn's loggers hand their records to it (its access log gives way to the API's own
    request line, which carries the request's ids)."""
    _process["name"] = process
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
