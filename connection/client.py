"""How every process (worker, API, CLI, tests, benchmarks) reaches Temporal: one data converter (pydantic payloads, sealed with the deployment's keyring)."""

from __future__ import annotations

from temporalio.client import Client

from config import Settings
from connection.codec import data_converter
from connection.options import connect_config


async def connect(settings: Settings) -> Client:
    return await Client.connect(**connect_config(settings), data_converter=data_converter(settings.keyring()))
