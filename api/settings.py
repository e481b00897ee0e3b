"""Service settings: environment variables (``CELEDGER_*``) or a ``.env`` file, validated at
start.  Nothing reads settings at import time: ``create_app(settings)`` receives them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CELEDGER_", env_file=".env", env_file_encoding="utf-8", extra="forbid"
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite at <data_dir>/celedger.db"
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
        ge=1,
        description="requests per minute one client may make to the public verification routes",
    )
    max_batch_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    max_batch_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'celedger.db').resolve()}"

    @property
    def effective_log_key_file(self) -> Path:
        return self.log_key_file or self.data_dir / "keys" / "log.key"
