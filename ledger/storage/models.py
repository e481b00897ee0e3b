"""Tables.

The three ``log_*`` tables are the ledger proper and are append-only: the database itself
refuses UPDATE and DELETE on them (triggers created by the migrations, see
``APPEND_ONLY_TABLES``).  Everything else is a projection or working state that can be
re-derived from the log (plus the encrypted personal data, which deliberately is *not* in
the log so that it can be erased).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# On SQLite only "INTEGER PRIMARY KEY" is the fast rowid alias; PostgreSQL needs 64 bits.
BigInt = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class LogEntry(Base):
    """One leaf of the Merkle tree: the canonical (RFC 8785) bytes of a versioned entry."""

    __tablename__ = "log_entries"

    idx: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)


class LogLeafIndex(Base):
    """Leaf hash → index, for "inclusion proof by leaf hash".

    Derived data, kept *off* the append path: an index keyed by a random hash touches a
    random B-tree page per row, which would make appends slow down as the log grows.  It is
    filled after the append commits (``ledger.storage.log.index_leaves``) and lookups also scan
    the not-yet-indexed tail, so a lookup is never stale.  It can be rebuilt from the entries.
    """

    __tablename__ = "log_leaf_index"

    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class LogTile(Base):
    """A *full* tile: 256 hashes at height 8·level plus the 255 nodes above them.

    Storing the inner nodes (511 × 32 bytes) means a proof reads stored hashes and hashes
    nothing except at the growing right edge.  Partial tiles are never stored — they are
    derived from the entries (or the roots of lower full tiles) when needed — so no row here
    ever changes after it is written.
    """

    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nodes: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """Every checkpoint the log ever signed, as the exact signed-note text."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


APPEND_ONLY_TABLES = ("log_entries", "log_tiles", "log_checkpoints")


def append_only_ddl(dialect: str) -> list[str]:
    """DDL that makes the database refuse UPDATE and DELETE on the ledger tables."""
    stmts: list[str] = []
    if dialect == "sqlite":
        for t in APPEND_ONLY_TABLES:
            for op in ("UPDATE", "DELETE"):
                stmts.append(
                    f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                    f"BEGIN SELECT RAISE(ABORT, '{t} is append-only: {op} refused'); END"
                )
        return stmts
    stmts.append(
        "CREATE OR REPLACE FUNCTION celedger_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END; $$ LANGUAGE plpgsql"
    )
    for t in APPEND_ONLY_TABLES:
        stmts.append(
            f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION celedger_append_only()"
        )
        stmts.append(
            f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
            "FOR EACH STATEMENT EXECUTE FUNCTION celedger_append_only()"
        )
    return stmts


def drop_append_only_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {t}_no_{op}"
            for t in APPEND_ONLY_TABLES
            for op in ("update", "delete")
        ]
    stmts = []
    for t in APPEND_ONLY_TABLES:
        stmts.append(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}")
        stmts.append(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}")
    stmts.append("DROP FUNCTION IF EXISTS celedger_append_only()")
    return stmts
