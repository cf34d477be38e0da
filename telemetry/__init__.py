"""Telemetry: Prometheus metrics, structured logs (structlog), OpenTelemetry traces, health."""
