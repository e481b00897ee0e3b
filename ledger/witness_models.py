"""Witnessing state, both directions (c2sp.org/tlog-witness), and the transactions on it.

Witness side — ``witnessed_logs``: per origin this service witnesses, the latest checkpoint it
cosigned (size, root, the note as received, the log key that verified it).  The row is the
witness's whole promise: it must never cosign a checkpoint inconsistent with it, so
:func:`add_checkpoint` reads it under a row lock (PostgreSQL ``SELECT … FOR UPDATE``; SQLite:
the writer session's ``BEGIN IMMEDIATE`` already holds the database's single write lock),
checks the request against it, and updates it in the same transaction, which commits before
the cosignature is returned.  A refused request changes nothing.

Log side — ``log_witnesses``: per witness key this log asks, the size the witness is known to
have cosigned last (from its cosignature, or from a 409 answer) and the last error;
``log_cosignatures``: every cosignature received, verified before it is stored, served
appended to the checkpoint of its size.

These are working state, not ledger rows: they are not in the Merkle tree and may be updated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, LargeBinary, String, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from ledger import merkle
from ledger.cosignature import CosignatureSigner
from ledger.note import NoteVerifier, add_signature_lines
from ledger.storage.models import Base, BigInt, LogCheckpoint
from ledger.witness import AddCheckpoint, authenticate, check_extends, cosign

__all__ = [
    "LogCosignature",
    "LogWitness",
    "WitnessedLog",
    "WitnessedState",
    "add_checkpoint",
    "cosignature_lines",
    "has_cosignature",
    "latest_cosigned",
    "record_cosignature",
    "record_witness_state",
    "with_cosignatures",
    "witness_state",
    "witnessed_state",
]

TZ = DateTime(timezone=True)


class WitnessedLog(Base):
    """Witness side: the latest checkpoint this service cosigned for one log origin."""

    __tablename__ = "witnessed_logs"

    origin: Mapped[str] = mapped_column(Text, primary_key=True)
    size: Mapped[int] = mapped_column(BigInt)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The signed checkpoint exactly as the log sent it; NULL until the first cosignature.
    note: Mapped[str | None] = mapped_column(Text)
    #: The log verifier key that verified ``note``.
    log_vkey: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class LogWitness(Base):
    """Log side: what this log knows of one witness key's state."""

    __tablename__ = "log_witnesses"

    #: ``<name>+<key ID hex>``, as ``ledger.witness.WitnessEndpoint.key``.
    witness: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: The size the witness last cosigned for this log, as far as this log knows.
    size: Mapped[int] = mapped_column(BigInt)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class LogCosignature(Base):
    """Log side: one witness's verified cosignature line on this log's checkpoint of ``size``."""

    __tablename__ = "log_cosignatures"

    size: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(300), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZ)


def _insert(session: Session, table: type[Base]) -> Any:
    """``INSERT … ON CONFLICT`` builder of the session's dialect (both spell it alike)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


# --------------------------------------------------------------------------------------------
# Witness side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessedState:
    origin: str
    size: int
    root_hash: bytes
    note: str | None
    log_vkey: str | None


def witnessed_state(session: Session, origin: str) -> WitnessedState | None:
    row = session.get(WitnessedLog, origin)
    if row is None:
        return None
    return WitnessedState(row.origin, row.size, bytes(row.root_hash), row.note, row.log_vkey)


def add_checkpoint(
    session: Session,
    req: AddCheckpoint,
    trusted: Mapping[str, Sequence[NoteVerifier]],
    signer: CosignatureSigner,
    now: datetime,
) -> str:
    """Check ``req`` and, if it extends what was cosigned before, record it and return the
    cosignature line — in the caller's write transaction, which must commit before the line
    is sent.  Raises :class:`ledger.witness.WitnessError` (and changes nothing) otherwise."""
    auth = authenticate(req, trusted)
    origin = req.checkpoint.origin
    # Make sure the row exists, then lock it: concurrent first requests for an origin then
    # queue on the row instead of racing to insert it.
    session.execute(
        _insert(session, WitnessedLog)
        .values(origin=origin, size=0, root_hash=merkle.EMPTY_ROOT, updated_at=now)
        .on_conflict_do_nothing(index_elements=["origin"])
    )
    row = session.execute(
        select(WitnessedLog)
        .where(WitnessedLog.origin == origin)
        .with_for_update()
        # The identity map may hold a version of the row read before the lock was taken.
        .execution_options(populate_existing=True)
    ).scalar_one()
    check_extends(req, row.size, bytes(row.root_hash))
    line = cosign(signer, req, int(now.timestamp()))
    row.size = req.checkpoint.size
    row.root_hash = req.checkpoint.root_hash
    row.note = req.note
    row.log_vkey = auth.signed_by.to_vkey()
    row.updated_at = now
    session.flush()
    return line


# --------------------------------------------------------------------------------------------
# Log side
# --------------------------------------------------------------------------------------------


def witness_state(session: Session, witness: str) -> tuple[int, str | None]:
    """(size the witness last cosigned as far as we know — 0 if never asked, last error)."""
    row = session.get(LogWitness, witness)
    return (0, None) if row is None else (int(row.size), row.last_error)


def record_witness_state(
    session: Session, witness: str, size: int, error: str | None, now: datetime
) -> None:
    values = {"witness": witness, "size": size, "last_error": error, "updated_at": now}
    stmt = _insert(session, LogWitness).values(**values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["witness"],
            set_={"size": size, "last_error": error, "updated_at": now},
        )
    )


def record_cosignature(
    session: Session, size: int, witness: str, timestamp: int, line: str, now: datetime
) -> None:
    """Store a verified cosignature line; the first one stored for (size, witness) stays."""
    session.execute(
        _insert(session, LogCosignature)
        .values(size=size, witness=witness, timestamp=timestamp, line=line, received_at=now)
        .on_conflict_do_nothing(index_elements=["size", "witness"])
    )


def has_cosignature(session: Session, size: int, witness: str) -> bool:
    return session.get(LogCosignature, (size, witness)) is not None


def cosignature_lines(session: Session, size: int) -> str:
    """Every stored cosignature line on the checkpoint of ``size``, in witness order."""
    lines = session.execute(
        select(LogCosignature.line)
        .where(LogCosignature.size == size)
        .order_by(LogCosignature.witness)
    ).scalars()
    return "".join(lines)


def with_cosignatures(session: Session, size: int, note: str) -> str:
    """The checkpoint note of ``size`` with its witnesses' cosignature lines appended."""
    lines = cosignature_lines(session, size)
    return add_signature_lines(note, lines) if lines else note


def latest_cosigned(session: Session) -> tuple[int, str] | None:
    """The newest checkpoint size that some witness cosigned, with its cosigned note."""
    size = session.execute(
        select(LogCosignature.size).order_by(LogCosignature.size.desc()).limit(1)
    ).scalar_one_or_none()
    if size is None:
        return None
    cp = session.get(LogCheckpoint, size)
    if cp is None:
        return None
    return int(size), with_cosignatures(session, int(size), cp.note)
