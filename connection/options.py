"""Where and how to reach Temporal: the local dev server, a self-hosted cluster over TLS (mutual or
not), or Temporal Cloud with an API key, from trlgate's settings and, when asked, Temporal's own
client configuration (temporalio.envconfig: a TOML profile and TEMPORAL_* variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.service import TLSConfig

from config import Settings


def connect_config(settings: Settings) -> ClientConnectConfig:
    """The keyword arguments of `Client.connect` for this deployment. A TRLGATE_TEMPORAL_* setting
    that was given wins over Temporal's configuration, which wins over trlgate's defaults."""
    base: ClientConnectConfig = (
        ClientConfigProfile.load().to_client_connect_config() if settings.temporal_envconfig else {}
    )
    given = settings.model_fields_set
    config: dict[str, Any] = dict(base)
    for field, key in (("temporal_address", "target_host"), ("temporal_namespace", "namespace")):
        if field in given or key not in base:
            config[key] = getattr(settings, field)
    if settings.temporal_api_key:
        config["api_key"] = settings.temporal_api_key
    tls = _tls(settings)
    if tls is not None:
        config["tls"] = tls
    elif "api_key" in config and "tls" not in config:
        # An API key travels in a header: never in clear (Temporal Cloud refuses it anyway).
        config["tls"] = True
    return ClientConnectConfig(**config)  # type: ignore[typeddict-item]


def _tls(settings: Settings) -> bool | TLSConfig | None:
    """None when trlgate's settings say nothing of TLS (Temporal's configuration, or the API key, decides)."""
    if settings.temporal_tls is False:
        return False
    files = (settings.temporal_tls_ca_cert, settings.temporal_tls_client_cert, settings.temporal_tls_client_key)
    if not any(files) and not settings.temporal_tls_server_name:
        return True if settings.temporal_tls else None
    ca, cert, key = (_read(path) for path in files)
    return TLSConfig(
        server_root_ca_cert=ca,
        domain=settings.temporal_tls_server_name or None,
        client_cert=cert,
        client_private_key=key,
    )


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path else None
