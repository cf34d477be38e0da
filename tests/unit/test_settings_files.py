"""Secrets from files (TRLGATE_<NAME>_FILE, as docker compose mounts them under /run/secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url

from config import FILE_SETTINGS, Settings


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text("s3cret value\n")
    return path


@pytest.mark.parametrize("name", FILE_SETTINGS)
def test_each_file_setting_is_read_from_its_file(name: str, secret: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f"TRLGATE_{name.upper()}", raising=False)
    monkeypatch.setenv(f"TRLGATE_{name.upper()}_FILE", str(secret))
    assert getattr(Settings(), name) == "s3cret value"  # the file's trailing newline is not the secret's


def test_both_forms_at_once_are_refused(secret: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRLGATE_JWT_SECRET", "from-env")
    monkeypatch.setenv("TRLGATE_JWT_SECRET_FILE", str(secret))
    with pytest.raises(SettingsError, match="both TRLGATE_JWT_SECRET and TRLGATE_JWT_SECRET_FILE"):
        Settings()


@pytest.mark.parametrize(("content", "reason"), [(None, "cannot be read"), ("\n", "is empty")])
def test_a_missing_or_empty_file_is_refused(
    content: str | None, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "codec-keys"
    if content is not None:
        path.write_text(content)
    monkeypatch.delenv("TRLGATE_CODEC_KEYS", raising=False)
    monkeypatch.setenv("TRLGATE_CODEC_KEYS_FILE", str(path))
    with pytest.raises(SettingsError, match=f"TRLGATE_CODEC_KEYS_FILE names {path}, which {reason}"):
        Settings()


def test_the_database_password_goes_into_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("p@ss/w:rd %x\n")
    monkeypatch.setenv("TRLGATE_DATABASE_PASSWORD_FILE", str(tmp_path / "pw"))
    monkeypatch.delenv("TRLGATE_DATABASE_PASSWORD", raising=False)
    url = make_url(Settings(database_url="postgresql+asyncpg://trlgate:old@db:5432/trlgate").resolved_database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "trlgate",
        "p@ss/w:rd %x",
        "db",
        5432,
        "trlgate",
    )
    monkeypatch.delenv("TRLGATE_DATABASE_PASSWORD_FILE")
    assert (
        Settings(database_url="postgresql+asyncpg://u:p@db/x").resolved_database_url == "postgresql+asyncpg://u:p@db/x"
    )
