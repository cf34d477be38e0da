"""The audit key file: made once, readable by its owner only (no database)."""

from __future__ import annotations

from pathlib import Path

from config import Settings


def test_the_audit_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_audit_key(create=False) is None  # a verifier never makes one
    key = settings.resolved_audit_key()
    assert key and settings.resolved_audit_key() == key == Settings(data_dir=tmp_path).resolved_audit_key()
    assert (tmp_path / "audit-key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["audit-key"]  # no draft left behind
    assert Settings(data_dir=tmp_path, audit_key="from-env").resolved_audit_key() == b"from-env"
