"""The ``issuing_keys`` table: the issuer's Ed25519 keys for QR tokens and credentials.

Each row is the projection of ``key.added`` / ``key.retired`` / ``key.compromised`` ledger
entries, written in the same transaction as them (``ledger.issuing``).  The private key is
stored only sealed: AES-256-GCM under the service's key-encryption key, with the kid as
associated data so a sealed key cannot be moved to another row.  The ledger entries and every
other table hold the public key only.

Invariants the database itself enforces: one row per kid and per public key; ``status`` is one
of ``active``/``retired``/``compromised``; at most one row is ``active`` (a partial unique index,
on both PostgreSQL and SQLite).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.storage.models import Base, BigInt

__all__ = ["IssuingKey"]

TZ = DateTime(timezone=True)
_ACTIVE = text("status = 'active'")


class IssuingKey(Base):
    """One issuing key: public key, sealed private key, status and its times."""

    __tablename__ = "issuing_keys"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'retired', 'compromised')", name="status"),
        Index(
            "uq_issuing_keys_one_active",
            "status",
            unique=True,
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        ),
    )

    kid: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    #: AES-256-GCM: 12-byte nonce ‖ ciphertext of the 32-byte seed ‖ 16-byte tag (AD = kid).
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZ)
    retired_at: Mapped[datetime | None] = mapped_column(TZ)
    compromised_at: Mapped[datetime | None] = mapped_column(TZ)
    compromise_reason: Mapped[str | None] = mapped_column(Text)
    #: Index of the ``key.added`` entry; the later events' entries are in the next columns.
    log_index: Mapped[int] = mapped_column(BigInt, unique=True)
    retired_log_index: Mapped[int | None] = mapped_column(BigInt)
    compromised_log_index: Mapped[int | None] = mapped_column(BigInt)
