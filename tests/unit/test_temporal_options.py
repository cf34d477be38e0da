"""From settings to `Client.connect` arguments: dev server, TLS cluster, Temporal Cloud (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from config import Settings
from connection.options import connect_config


@pytest.fixture(autouse=True)
def _no_temporal_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_TLS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))


def test_the_dev_server_is_plain_grpc() -> None:
    assert connect_config(Settings()) == {"target_host": "127.0.0.1:7233", "namespace": "default"}


def test_temporal_cloud_with_an_api_key_uses_tls() -> None:
    settings = Settings(
        temporal_address="eu-west-1.aws.api.temporal.io:7233", temporal_namespace="trlgate.a1b2c", temporal_api_key="k"
    )
    assert connect_config(settings) == {
        "target_host": "eu-west-1.aws.api.temporal.io:7233",
        "namespace": "trlgate.a1b2c",
        "api_key": "k",
        "tls": True,
    }


def test_mutual_tls_reads_the_pem_files(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"--{name}--".encode())
    settings = Settings(
        temporal_address="temporal.internal:7233",
        temporal_tls_ca_cert=tmp_path / "ca.pem",
        temporal_tls_client_cert=tmp_path / "client.pem",
        temporal_tls_client_key=tmp_path / "client.key",
        temporal_tls_server_name="frontend.temporal.internal",
    )
    assert connect_config(settings)["tls"] == TLSConfig(
        server_root_ca_cert=b"--ca.pem--",
        domain="frontend.temporal.internal",
        client_cert=b"--client.pem--",
        client_private_key=b"--client.key--",
    )


def test_tls_can_be_forced_either_way() -> None:
    assert connect_config(Settings(temporal_tls=True))["tls"] is True  # the system's roots
    assert connect_config(Settings(temporal_api_key="k", temporal_tls=False))["tls"] is False


@pytest.mark.parametrize(
    "given",
    [{"temporal_tls_client_cert": Path("c.pem")}, {"temporal_tls": False, "temporal_tls_ca_cert": Path("ca.pem")}],
)
def test_contradictory_tls_settings_are_refused(given: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="TRLGATE_TEMPORAL_TLS"):
        Settings(**given)  # type: ignore[arg-type]


def test_temporal_client_configuration_fills_what_trlgate_leaves_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "temporal.toml").write_text(
        '[profile.cloud]\naddress = "trlgate.a1b2c.tmprl.cloud:7233"\nnamespace = "trlgate.a1b2c"\napi_key = "from-toml"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "temporal.toml"))
    monkeypatch.setenv("TEMPORAL_PROFILE", "cloud")
    assert connect_config(Settings(temporal_envconfig=True)) == {
        "target_host": "trlgate.a1b2c.tmprl.cloud:7233",
        "namespace": "trlgate.a1b2c",
        "api_key": "from-toml",
        "tls": True,
    }
    # a TRLGATE_TEMPORAL_* setting given wins, and TEMPORAL_* variables override the file
    monkeypatch.setenv("TEMPORAL_API_KEY", "from-env")
    config = connect_config(Settings(temporal_envconfig=True, temporal_namespace="other.a1b2c"))
    assert (config["namespace"], config["api_key"]) == ("other.a1b2c", "from-env")
