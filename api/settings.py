"""Service settings: environment variables (``CELEDGER_*``) or a ``.env`` file, validated at
start.  Nothing reads settings at import time: ``create_app(settings)`` receives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from ledger.errors import LedgerError
from ledger.witness import parse_witness_endpoint, trusted_logs


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CELEDGER_", env_file=".env", env_file_encoding="utf-8", extra="forbid"
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at <data_dir>/celedger.db",
        repr=False,  # an operator may put a password in it: never print it
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="password for CELEDGER_DATABASE_URL, kept out of the URL so that it is "
        "never printed (a read replica's URL carries its own credentials)",
    )
    read_database_url: str | None = Field(
        default=None, description="optional PostgreSQL read replica for verification traffic"
    )
    origin: str = Field(
        default="ce-ledger.localhost/log",
        description="the log's origin line in checkpoints; also its key name",
        pattern=r"^[A-Za-z0-9.\-]+(/[A-Za-z0-9._\-]+)*$",
    )
    public_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/]+(/\S*)?$")
    log_key_file: Path | None = None
    pii_key: SecretStr | None = Field(
        default=None, description="base64 32-byte key that encrypts personal data at rest"
    )
    key_encryption_key: SecretStr | None = Field(
        default=None,
        description="base64 32-byte key that encrypts the credential-issuing private keys at rest",
    )
    cjk_font: Path | None = Field(
        default=None,
        description="TrueType CJK font for certificates (default: found on the system)",
    )
    pdf_signer_p12: Path | None = Field(
        default=None,
        description="PKCS#12 file with the certificate that signs PDFs (PAdES); default: a "
        "development CA generated under <data_dir>/pki",
    )
    pdf_signer_password: SecretStr | None = None
    verify_rate_per_minute: int = Field(
        default=600,
        ge=0,
        description="requests per minute one client may make to the public verification routes "
        "(0: no limit in the service, when the front proxy limits per client)",
    )
    verify_report_cache: int = Field(
        default=10_000,
        ge=0,
        description="verification reports kept per process until the next ledger append "
        "(0: none); each is a few kilobytes",
    )
    verify_freshness_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="how long a process answers verifications from what it last read of the "
        "ledger before asking again (0: every request); a verdict is at most this old",
    )
    max_batch_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    max_batch_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # Professionals' accounts and share links (api/routes/holder.py, ledger/accounts).
    session_idle_minutes: int = Field(
        default=720, ge=5, le=7 * 24 * 60, description="a holder's session ends when idle this long"
    )
    session_absolute_hours: int = Field(
        default=168, ge=1, le=90 * 24, description="a holder's session ends this long after sign-in"
    )
    signin_max_failures: int = Field(
        default=5, ge=1, le=100, description="failed sign-ins per ID number before a lock"
    )
    signin_max_failures_per_client: int = Field(
        default=20, ge=1, le=100_000, description="failed sign-ins per client address before a lock"
    )
    signin_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    activation_code_days: int = Field(
        default=14, ge=1, le=90, description="how long an account activation code is valid"
    )
    password_hash_time_cost: int = Field(default=3, ge=1, le=20, description="argon2id t")
    password_hash_memory_kib: int = Field(
        default=65536, ge=64, le=4 * 1024 * 1024, description="argon2id m (KiB)"
    )
    password_hash_parallelism: int = Field(default=4, ge=1, le=16, description="argon2id p")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Witnessing (c2sp.org/tlog-witness, see api/routes/witness.py).  Lists are ';'- or
    # newline-separated in an environment variable (a JSON list also works).
    witness_name: str = Field(
        default="",
        description="this service's witness (cosigner) key name; empty: <origin host>/witness",
        pattern=r"^[^\s+]*$",
    )
    witness_key_file: Path | None = Field(
        default=None, description="witness cosigning key; default <data_dir>/keys/witness.key"
    )
    witness_logs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="logs this service witnesses: '<log vkey>' or '<origin> <log vkey>' each",
    )
    witnesses: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="witnesses asked to cosign this log: '<cosigner vkey> <URL prefix>' each",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line (api.ops.JsonFormatter)"
    )
    # `celedger publish --to s3://…` (api/publish.py).  Credentials are not settings: boto3 reads
    # the standard AWS_* variables (or ~/.aws, an instance role) itself.
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint for publishing (MinIO, Ceph …); default: AWS",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
    )
    s3_region: str | None = Field(
        default=None, description="region for publishing to S3; default: boto3's (AWS_REGION …)"
    )

    @model_validator(mode="after")
    def _production_needs(self) -> Settings:
        # The embedded SQLite default is for a laptop; a production start without an explicit
        # database would quietly write the ledger into the container's data directory.
        if self.environment == "production" and not self.database_url:
            raise ValueError(
                "CELEDGER_DATABASE_URL is required in production (e.g. "
                "postgresql://celedger@db:5432/celedger)"
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("witness_logs", "witnesses", mode="before")
    @classmethod
    def _split_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                return json.loads(v)
            return [e.strip() for e in v.replace("\n", ";").split(";") if e.strip()]
        return v

    @field_validator("witness_logs")
    @classmethod
    def _check_witness_logs(cls, v: list[str]) -> list[str]:
        try:
            trusted_logs(v)
        except LedgerError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("witnesses")
    @classmethod
    def _check_witnesses(cls, v: list[str]) -> list[str]:
        try:
            keys = [parse_witness_endpoint(e).key for e in v]
        except LedgerError as exc:
            raise ValueError(str(exc)) from None
        if len(set(keys)) != len(keys):
            raise ValueError("witnesses: each witness key may be listed once")
        return v

    @property
    def effective_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data_dir / 'celedger.db').resolve()}"
        if self.database_password is None:
            return url
        return (
            make_url(url)
            .set(password=self.database_password.get_secret_value())
            .render_as_string(hide_password=False)
        )

    @property
    def effective_log_key_file(self) -> Path:
        return self.log_key_file or self.data_dir / "keys" / "log.key"
