"""How every process (worker, API, CLI, tests, benchmarks) reaches Temporal: one data converter (pydantic payloads, sealed with the deployment's keyring)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from config import Settings
from connection.codec import data_converter
from connection.options import connect_config
from telemetry.tracing import client_interceptors


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """`runtime`: the worker's, which exports the SDK's metrics; others use the default one."""
    return await Client.connect(
        **connect_config(settings),
        data_converter=data_converter(settings.keyring()),
        interceptors=client_interceptors(),
        runtime=runtime,
    )
