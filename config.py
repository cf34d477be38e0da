"""All of trlgate's settings, read once from the environment (prefix ``TRLGATE_``)."""

from __future__ import annotations

import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from sqlalchemy.engine import make_url

from connection.codec import Keyring

REPO_ROOT = Path(__file__).resolve().parent

# The settings that may be read from a file named by TRLGATE_<NAME>_FILE (a Docker or Kubernetes
# secret mounted under /run/secrets) instead of TRLGATE_<NAME>, so that the value shows neither in
# `docker inspect` nor in any process's environment.
FILE_SETTINGS = (
    "jwt_secret",
    "codec_keys",
    "audit_key",
    "database_url",
    "database_password",
    "smtp_password",
    "temporal_api_key",
)


class SecretFilesSource(PydanticBaseSettingsSource):
    """TRLGATE_<NAME>_FILE for each of FILE_SETTINGS. Both forms at once, or a file that cannot be
    read or is empty, stop the process: silently falling back to a default (a fresh random JWT
    secret, a new keyring) would look like a working deployment that cannot read its own data."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every file setting at once

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix", ""))
        values: dict[str, Any] = {}
        for name in FILE_SETTINGS:
            var = f"{prefix}{name}".upper()
            path = os.environ.get(f"{var}_FILE")
            if not path:
                continue
            if var in os.environ:
                raise SettingsError(f"both {var} and {var}_FILE are set: keep one of them")
            try:
                # A trailing newline is an editor's, never the secret's.
                value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as err:
                raise SettingsError(f"{var}_FILE names {path}, which cannot be read: {err.strerror}") from err
            if not value:
                raise SettingsError(f"{var}_FILE names {path}, which is empty")
            values[name] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRLGATE_", env_file=".env", extra="ignore")

    data_dir: Path = REPO_ROOT / "data"
    # Empty means "SQLite file in data_dir"; PostgreSQL is one URL away:
    # postgresql+asyncpg://user:pass@host:5432/trlgate
    database_url: str = ""
    # The password apart from the URL (so it can come from a secret file, TRLGATE_DATABASE_PASSWORD_FILE);
    # it replaces any password written in database_url.
    database_password: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # A Temporal cluster with TLS, or Temporal Cloud (connection/options.py). An API key turns TLS
    # on. temporal_tls: unset decides by the rest, true or false forces it; the CA verifies the
    # server (empty: the system's roots); a client certificate and key (PEM files) make it mutual
    # TLS. Or turn temporal_envconfig on to read Temporal's own client configuration (the profile
    # TEMPORAL_PROFILE, default "default", of the TOML file at TEMPORAL_CONFIG_FILE, else
    # ~/.config/temporalio/temporal.toml, and the TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
    # TEMPORAL_API_KEY, TEMPORAL_TLS_* variables): it supplies what the TRLGATE_TEMPORAL_*
    # settings leave unset.
    temporal_envconfig: bool = False
    temporal_api_key: str = ""
    temporal_tls: bool | None = None
    temporal_tls_server_name: str = ""
    temporal_tls_ca_cert: Path | None = None
    temporal_tls_client_cert: Path | None = None
    temporal_tls_client_key: Path | None = None
    task_queue: str = "trlgate"
    temporal_ui_port: int = 8233
    # Where a browser reaches the Temporal Web UI (the pages link into it: a project's workflow,
    # lists filtered by search attributes); empty: http://127.0.0.1:<temporal_ui_port>.
    temporal_ui_url: str = ""
    # `trlgate up`: the dev server's own UI listens here, behind the proxy on temporal_ui_port that
    # serves the UI and the codec from one origin (cli/ui_proxy.py). 0: any free port.
    temporal_ui_backend_port: int = Field(default=0, ge=0, le=65535)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # uvicorn worker processes for `python -m api` (the image runs it).
    api_workers: int = Field(default=1, ge=1)
    # The proxies trusted to name the client in X-Forwarded-For (comma-separated addresses or
    # networks, `*` for any). Empty: no forwarded header is believed, the peer's address counts
    # (sign-in throttling is per address). Behind a proxy, list its address as the API sees it.
    forwarded_allow_ips: str = ""
    # Empty means "a random secret kept in data_dir/jwt-secret" so a dev stack is never
    # shipped with a guessable key.
    jwt_secret: str = ""
    jwt_ttl_minutes: int = 60 * 8
    # The web pages' sign-in session (web/session.py): it ends after this long without a request,
    # and in any case this long after signing in.
    web_idle_minutes: int = Field(default=30, ge=1)
    web_session_hours: int = Field(default=8, ge=1)
    # Mark the pages' cookies Secure. Behind a TLS-terminating proxy the app sees plain HTTP (unless
    # the proxy is trusted in TRLGATE_FORWARDED_ALLOW_IPS): set this true there.
    web_secure_cookies: bool = False
    # How many real seconds one simulated day of a project lasts. Production: 86400.
    # The dev stack shortens it so a ten-year demo moves; 0 turns stage timers off.
    seconds_per_day: float = Field(default=86400.0, ge=0)
    demo_password: str = "trlgate-demo"
    # Programme funding rules (not the proposal's to change): a tranche above the threshold needs
    # a second approver from finance; tranches wait for accepted yearly progress reports.
    four_eyes_threshold: int = Field(default=5_000_000_000, ge=0)
    progress_reports: bool = True
    # The payment sender: instructions leave the outbox as files in this folder (a bank drop).
    payments_dir: Path | None = None
    sender_interval_seconds: float = Field(default=1.0, gt=0)
    # How often the worker's schedule runs the full ledger check (TRLGATE_FUND_CHECK_EVERY_HOURS);
    # GET /fund shows the latest recorded result (workflows/fund_check.py).
    fund_check_every_hours: float = Field(default=24.0, gt=0)
    # Payload encryption keys for Temporal (`kid=base64key,...`, the first one encrypts). Empty
    # means "the keyring file in data_dir", made on first use. Every worker, API and CLI process
    # of one deployment must share it: a lost keyring makes the histories unreadable.
    codec_keys: str = ""
    # Sign-in throttling (api/routes/auth.py): after this many failures in a row a username, or
    # a client address, is locked; each further failure doubles the lock, up to the maximum.
    # Addresses get more tries: many users may sign in from behind one NAT or proxy. Failures
    # older than login_forget_seconds are forgotten.
    login_user_max_failures: int = Field(default=5, ge=1)
    login_address_max_failures: int = Field(default=50, ge=1)
    login_lock_seconds: float = Field(default=30.0, gt=0)
    login_lock_max_seconds: float = Field(default=3600.0, gt=0)
    login_forget_seconds: float = Field(default=86400.0, gt=0)
    # The key that anchors the audit chain (an HMAC over each entry's hash), kept out of the
    # database so its writer cannot rewrite the log and recompute the chain. Empty means "the
    # audit-key file in data_dir", made on first use. Every process that writes or verifies the
    # audit log must share it.
    audit_key: str = ""
    # Where `trlgate audit-verify` keeps its checkpoint (the last entry it saw, sealed with the
    # audit key): somewhere the database's writer cannot change. Empty: data_dir/audit-checkpoint.
    audit_checkpoint: Path | None = None
    # The largest request body the API reads (bytes); larger ones are refused with 413 before
    # they are parsed, with or without a Content-Length.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Uploaded files (services/files.py): where their bytes go (empty: data_dir/blobs; or
    # file:///path, or s3://bucket/prefix with TRLGATE_BLOB_ENDPOINT_URL for MinIO and the like, credentials
    # from the usual AWS_* variables), and the largest file taken (413 over it).
    blob_store: str = ""
    blob_endpoint_url: str = ""
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    # E-mail (activities/mail_sender.py): notices leave the mail outbox through this SMTP server.
    # The embedded default is the local sink `trlgate mail-sink` that ./run.sh starts (it writes
    # .eml files to mail_dir); docker-compose points it at Mailpit. smtp_tls: none|starttls|tls.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_from: str = "trlgate <noreply@trlgate.local>"
    mail_message_id_domain: str = "trlgate.local"
    # Where the mails' links point (the workbench as users reach it); empty: the API's address.
    public_url: str = ""
    # The mails' language for a user who chose none (ja|en).
    mail_default_language: Literal["ja", "en"] = "ja"
    mail_poll_seconds: float = Field(default=2.0, gt=0)
    # A sender's claim on a row: another sender takes it over only after this long (a sender that
    # died mid-send). Longer than an SMTP exchange can last, or two senders could both send it.
    mail_claim_seconds: float = Field(default=300.0, gt=0)
    # Transient failures (4xx, connection refused) are retried with doubling delays from the base
    # up to the maximum; after mail_max_attempts tries the row is marked failed.
    mail_retry_base_seconds: float = Field(default=30.0, gt=0)
    mail_retry_max_seconds: float = Field(default=3600.0, gt=0)
    mail_max_attempts: int = Field(default=10, ge=1)
    # `trlgate up` starts the local SMTP sink on smtp_host:smtp_port (off: a real server is set).
    mail_sink: bool = True
    mail_dir: Path | None = None
    # How often the worker's schedule runs the repair (TRLGATE_REPAIR_EVERY_HOURS): it closes out
    # projects whose workflow was terminated in Temporal (workflows/repair.py). Keep it shorter
    # than the namespace's retention: a closed workflow older than that is no longer listed.
    repair_every_hours: float = Field(default=24.0, gt=0)
    # Telemetry (telemetry/, README "Telemetry"). Logs: console lines, or one JSON object a line.
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Traces go over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318); empty: tracing off.
    otlp_endpoint: str = ""
    # The worker's own HTTP port (/metrics, /health/live, /health/ready) and the Temporal SDK's
    # Prometheus port (temporal_* metrics); 0 turns either off. Inside a container the host must
    # be 0.0.0.0 for the port to be reachable.
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(default=9464, ge=0, le=65535)
    worker_sdk_metrics_port: int = Field(default=9465, ge=0, le=65535)
    # On SIGTERM the worker stops polling and gives running activities this long to finish.
    worker_shutdown_seconds: float = Field(default=30.0, ge=0)
    # How much one worker takes on (worker.py, README "Worker limits"). Workflow runs kept in
    # memory between their tasks (the sticky cache): an evicted run is rebuilt by replaying its
    # history at its next task, so the bound trades memory for CPU; thousands of projects wait
    # for years and need no room while they wait. Workflow tasks, activities and local
    # activities run at once: activities share the database pool (10 + 10 on PostgreSQL), and
    # workflow tasks share one interpreter, so more slots only queue inside the process, where a
    # task held past its timeout (10 s) is lost and retried; beyond the slots they wait on the server.
    worker_max_cached_workflows: int = Field(default=500, ge=0)
    worker_max_concurrent_workflow_tasks: int = Field(default=10, ge=2)
    worker_max_concurrent_activities: int = Field(default=20, ge=1)
    worker_max_concurrent_local_activities: int = Field(default=20, ge=1)

    @property
    def resolved_payments_dir(self) -> Path:
        return self.payments_dir or self.data_dir / "payments"

    @property
    def resolved_mail_dir(self) -> Path:
        return self.mail_dir or self.data_dir / "mail"

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'trlgate.db'}"
        if not self.database_password:
            return url
        return make_url(url).set(password=self.database_password).render_as_string(hide_password=False)

    @property
    def keyring_path(self) -> Path:
        return self.data_dir / "codec-keys"

    def keyring(self) -> Keyring:
        if self.codec_keys:
            return Keyring.parse(self.codec_keys)
        return Keyring.from_file(self.keyring_path)

    def resolved_jwt_secret(self) -> str:
        return self.jwt_secret or self._secret_file("jwt-secret")

    @property
    def resolved_audit_checkpoint(self) -> Path:
        return self.audit_checkpoint or self.data_dir / "audit-checkpoint"

    def resolved_temporal_ui_url(self) -> str:
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")

    def resolved_audit_key(self, *, create: bool = True) -> bytes | None:
        """The audit anchor key; None only when it is neither set nor on file and `create` is off
        (a verifier must not make a new key: every old anchor would then look forged)."""
        if self.audit_key:
            return self.audit_key.encode()
        if not create and not (self.data_dir / "audit-key").exists():
            return None
        return self._secret_file("audit-key").encode()

    def _secret_file(self, name: str) -> str:
        """A random secret in data_dir, made on first use, readable by its owner only. Processes
        starting together (API, worker) must end up with the same one: it is written aside and
        linked into place, so the first one wins and nobody reads a half-written file."""
        path = self.data_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{name}-")  # mode 0600
            try:
                os.write(fd, secrets.token_urlsafe(48).encode())
                os.close(fd)
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                os.unlink(draft)
        return path.read_text().strip()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, SecretFilesSource(settings_cls), env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _client_certificate_pairs(self) -> Settings:
        if (self.temporal_tls_client_cert is None) != (self.temporal_tls_client_key is None):
            raise ValueError("TRLGATE_TEMPORAL_TLS_CLIENT_CERT and TRLGATE_TEMPORAL_TLS_CLIENT_KEY go together")
        if self.temporal_tls is False and (self.temporal_tls_ca_cert or self.temporal_tls_client_cert):
            raise ValueError("TRLGATE_TEMPORAL_TLS is false but TLS certificates are set")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
