"""The application's own Prometheus metrics. Their names are a contract (dashboards, alerts):
add new ones, never rename.

API process: the HTTP metrics below, and the database-derived gauges of telemetry/gauges.py,
computed at each scrape. Worker process: the activity, payment and mail counters."""

from __future__ import annotations

from collections.abc import Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric

# A counter's `_created` twin doubles every series and no dashboard of ours reads it.
prometheus_client.disable_created_metrics()

API_REGISTRY = CollectorRegistry(auto_describe=True)
WORKER_REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "trlgate_http_requests",
    "HTTP requests answered, by route template (unmatched: no route) and status",
    ["method", "route", "status"],
    registry=API_REGISTRY,
)
HTTP_DURATION = Histogram(
    "trlgate_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route"],
    registry=API_REGISTRY,
)

ACTIVITIES = Counter(
    "trlgate_activities",
    "Activity executions that ended, by activity type and outcome (completed, refused, failed, cancelled)",
    ["activity", "outcome"],
    registry=WORKER_REGISTRY,
)
ACTIVITY_DURATION = Histogram(
    "trlgate_activity_duration_seconds",
    "Time one activity attempt ran, by activity type",
    ["activity"],
    registry=WORKER_REGISTRY,
)
PAYMENTS_SENT = Counter(
    "trlgate_payments_sent", "Payment instructions the sender delivered to the bank drop", registry=WORKER_REGISTRY
)
MAILS_SENT = Counter("trlgate_mails_sent", "Mails the SMTP server accepted", registry=WORKER_REGISTRY)


def sample_names(families: Iterable[Metric]) -> set[str]:
    """The sample names a family exposes, whether or not it has samples yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}
    return {f.name + s for f in families for s in suffixes.get(f.type, ("",))}


def exported_metric_names() -> frozenset[str]:
    """Every sample name the application's own metrics expose (API and worker), as exposed."""
    from telemetry.gauges import gauge_families

    names = sample_names(gauge_families())
    for registry in (API_REGISTRY, WORKER_REGISTRY):
        names |= sample_names(registry.collect())
    return frozenset(names)
