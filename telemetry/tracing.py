"""OpenTelemetry traces, on only when an exporter is configured (TRLGATE_OTLP_ENDPOINT) or a test
installs a tracer provider; otherwise nothing is instrumented and no span is made.

The provider is kept here rather than set globally: a process (a test run) may install one,
remove it, and install another."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span
from temporalio import client

from telemetry.temporal_context import WorkflowIdsInLogs

_provider: TracerProvider | None = None
# A request's query string can hold what a user searched for (`GET /projects?q=...`, a cleared
# reader's words about closed work); spans keep the path only.
_URL_KEYS = ("http.url", "url.full", "http.target")


def _without_query_strings(span: Span, _scope: dict[str, Any]) -> None:
    """The FastAPI instrumentation's request hook: it runs after the request's attributes are set."""
    attributes = getattr(span, "attributes", None) or {}  # the SDK's span; the API's has none to read
    for key in _URL_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    if attributes.get("url.query"):
        span.set_attribute("url.query", "")


def install(provider: TracerProvider | None) -> None:
    """Tracing on with this provider, or off (None: the database instrumentation is removed too)."""
    global _provider
    _provider = provider
    if provider is None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        if SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
            SQLAlchemyInstrumentor().uninstrument()


def provider() -> TracerProvider | None:
    return _provider


def configure_tracing(service: str, endpoint: str) -> None:
    """A process's entry point: export spans over OTLP/HTTP to `endpoint` when it is set."""
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    traced = TracerProvider(resource=Resource.create({"service.name": service}))
    traced.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    install(traced)


def client_interceptors() -> list[client.Interceptor]:
    """For Client.connect: the ids in the logs always; spans when tracing is on (the worker of a
    client takes its interceptors that are worker interceptors too, as TracingInterceptor is)."""
    interceptors: list[client.Interceptor] = [WorkflowIdsInLogs()]
    if _provider is not None:
        from temporalio.contrib.opentelemetry import TracingInterceptor

        interceptors.append(TracingInterceptor(_provider.get_tracer("temporalio")))
    return interceptors


def instrument_app(app: Any) -> None:
    if _provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=_provider,
            excluded_urls="/metrics,/health",
            server_request_hook=_without_query_strings,
        )


def instrument_engine(engine: Any) -> None:
    if _provider is not None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # The instrumentor is one per process: it traces the latest engine (a process has one).
        instrumentor = SQLAlchemyInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        # It declares SQLAlchemy < 2.1 and would skip ours (2.1); its engine events are unchanged.
        instrumentor.instrument(engine=engine.sync_engine, tracer_provider=_provider, skip_dep_check=True)
