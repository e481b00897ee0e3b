"""Completion tables: people (encrypted), batches, records, revocations, base signing keys.

The ledger holds the public half of every record (``completion`` / ``correction`` /
``revocation`` entries, with a salted commitment in place of the person); these tables hold the
private half and the projections the service queries.  Each row that records an act carries the
``log_index`` of the entry written in the same transaction.

Privacy (domain.md, PIPL): a person's name and ID number are stored only inside ``persons.sealed``
(AES-256-GCM under the service's personal-data key); ``persons.lookup`` is a keyed hash (HMAC) of
the ID number, so the service can find a person's records but a database reader cannot test
guesses without the key.  Each record has its own random ``salt``: the public commitment
``subject`` differs between records of the same person (the public cannot link them), and
deleting the salt and the sealed data (erasure) leaves the hash chain intact and the leaf
unlinkable to anyone.

Hours are integer tenths of a 学时, fees integer 分, as in the registry tables.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from ledger.storage.models import Base, BigInt

__all__ = [
    "BaseSigningKey",
    "CompletionBatch",
    "CompletionRecord",
    "IssuedDocument",
    "Person",
    "Revocation",
]

TZ = DateTime(timezone=True)


class Person(Base):
    """A professional: found by a keyed hash of the ID number; name and number sealed."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lookup: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    #: AES-256-GCM (nonce ‖ ciphertext) of the JSON {"name", "id_number"}; null once erased.
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ)
    erased_at: Mapped[datetime | None] = mapped_column(TZ)


class CompletionBatch(Base):
    """One accepted batch.  ``(base_id, batch_key)`` is unique: a retried post finds its receipt."""

    __tablename__ = "completion_batches"
    __table_args__ = (
        UniqueConstraint("base_id", "batch_key", name="uq_batches_base_key"),
        # What a record's composite foreign key points at: its batch *and* that batch's base.
        UniqueConstraint("id", "base_id", name="uq_completion_batches_id_base"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id"))
    batch_key: Mapped[str] = mapped_column(String(128))
    #: SHA-256 (hex) of the batch's canonical form — what a base signs.
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    record_count: Mapped[int] = mapped_column(Integer)
    first_index: Mapped[int] = mapped_column(BigInt)
    tree_size: Mapped[int] = mapped_column(BigInt)
    signature_kid: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    posted_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    received_at: Mapped[datetime] = mapped_column(TZ)
    #: The receipt exactly as first answered (JSON), replayed for a retried batch key.
    receipt: Mapped[bytes] = mapped_column(LargeBinary)


class CompletionRecord(Base):
    """One version of a completion record: an original (``kind`` completion) or a correction.

    ``id`` is public (it is in the ledger entry); ``token`` is the secret 128-bit handle a
    certificate's QR code carries — the ledger holds only the record id, so reading the log
    gives no way to open anyone's verification page.
    """

    __tablename__ = "completions"
    __table_args__ = (
        Index("ix_completions_base_year_class", "base_id", "year", "class_code"),
        Index("ix_completions_person", "person_id"),
        Index("ix_completions_batch", "batch_id"),
        # PostgreSQL checks a foreign key with one query per inserted row, whatever the
        # value: on a 10,000-row batch those queries were 40% of the database's work, and
        # four of the five ask the same question on every row.  So the columns a batch shares
        # are checked together: a record's batch must exist *with this base* (batch rows),
        # and its plan must be a plan *of this base* (every row; the plan's own key checks the
        # base) — stronger than separate keys, which let a record name another base's plan.
        ForeignKeyConstraint(
            ["batch_id", "base_id"],
            ["completion_batches.id", "completion_batches.base_id"],
            name="fk_completions_batch_id_completion_batches",
        ),
        ForeignKeyConstraint(
            ["plan_id", "base_id"],
            ["plans.id", "plans.base_id"],
            name="fk_completions_plan_id_plans",
        ),
        # Who posted a batch's records is the batch's poster (`CompletionBatch.posted_by`);
        # a record carries its own only when it has no batch (a correction).
        CheckConstraint("(batch_id IS NULL) <> (posted_by IS NULL)", name="poster_or_batch"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[str | None] = mapped_column(String(32))
    row_number: Mapped[int | None] = mapped_column(Integer)
    supersedes: Mapped[str | None] = mapped_column(ForeignKey("completions.id"), unique=True)
    correction_reason: Mapped[str | None] = mapped_column(Text)
    base_id: Mapped[int] = mapped_column(Integer)
    plan_id: Mapped[int] = mapped_column(Integer)
    class_code: Mapped[str] = mapped_column(String(32))
    year: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    #: Per-record salt of the public commitment; null once the person's data is erased.
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    subject: Mapped[str] = mapped_column(String(64))
    #: Sealed per-record personal details (employer, title, place, certificate number).
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    category: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(64))
    hours_tenths: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    result: Mapped[str] = mapped_column(String(16))
    fee_fen: Mapped[int] = mapped_column(BigInt)
    #: Null on a batch's records (see the check above): `poster` answers for every record.
    posted_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id"))
    posted_at: Mapped[datetime] = mapped_column(TZ)
    log_index: Mapped[int] = mapped_column(BigInt, unique=True)
    #: Who posted this version: its own poster, or its batch's.
    poster: Mapped[str] = column_property(
        func.coalesce(
            posted_by,
            select(CompletionBatch.posted_by)
            .where(CompletionBatch.id == batch_id)
            .correlate_except(CompletionBatch)
            .scalar_subquery(),
        )
    )


class Revocation(Base):
    """An authority's revocation of a record (e.g. found fraudulent)."""

    __tablename__ = "completion_revocations"

    record_id: Mapped[str] = mapped_column(ForeignKey("completions.id"), primary_key=True)
    reason_code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    at: Mapped[datetime] = mapped_column(TZ)
    log_index: Mapped[int] = mapped_column(BigInt, unique=True)


class BaseSigningKey(Base):
    """An Ed25519 public key a base registered to sign its batches (non-repudiation)."""

    __tablename__ = "base_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    added_at: Mapped[datetime] = mapped_column(TZ)
    added_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    retired_at: Mapped[datetime | None] = mapped_column(TZ)
    log_index: Mapped[int] = mapped_column(BigInt, unique=True)


class IssuedDocument(Base):
    """A certificate or transcript as issued: what its QR token and certificate number resolve to.

    A completion certificate's QR carries the record's own token; a transcript gets a fresh
    token here, resolving to the records it listed.  ``tree_size`` is the signed checkpoint the
    embedded inclusion proofs were made against.  No personal data: the person is the internal
    id, the PDF itself is not kept (its SHA-256 is, to recognise an upload of it).
    """

    __tablename__ = "issued_documents"

    certificate_number: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: A completion certificate reuses its record's token (reissues share it); a transcript's
    #: token is its own.
    token: Mapped[bytes] = mapped_column(LargeBinary(16), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    #: Space-separated record ids, in print order.
    records: Mapped[str] = mapped_column(Text)
    period: Mapped[str] = mapped_column(String(32))
    kid: Mapped[str] = mapped_column(String(64))
    tree_size: Mapped[int] = mapped_column(BigInt)
    issued_at: Mapped[datetime] = mapped_column(TZ)
    issued_by: Mapped[str] = mapped_column(String(64))
    pdf_sha256: Mapped[str] = mapped_column(String(64))
