"""Engines and sessions for the two supported databases.

SQLite is the embedded default; PostgreSQL is production.  Two session factories exist:

* ``writer()`` — for transactions that append.  On SQLite it starts with ``BEGIN IMMEDIATE`` so
  that the write lock is held *before* the current tree size is read: a deferred transaction
  that reads first and writes later can fail to upgrade its lock under contention instead of
  waiting.  On PostgreSQL appends serialise on an advisory lock (see ``ledger.storage.log``).
* ``reader()`` — for everything else.  It may point at a PostgreSQL read replica
  (``read_url``) so that verification traffic scales out without touching the primary.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    import psycopg


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator chose."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        # The driver's own transaction handling is switched off so that we control BEGIN.
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 60},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets readers proceed while one writer appends; FULL makes every acknowledged
        # commit durable even across power loss, which an append-only ledger promises.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def make_engine(url: str, *, writer: bool = True) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        return _sqlite_engine(url, immediate=writer)
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@dataclass
class Database:
    """The service's handle on its database (and optional read replica)."""

    url: str
    read_url: str | None = None
    write_engine: Engine = field(init=False)
    read_engine: Engine = field(init=False)
    _writer: sessionmaker[Session] = field(init=False, repr=False)
    _reader: sessionmaker[Session] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = normalise_url(self.url)
        self.write_engine = make_engine(self.url, writer=True)
        self.read_engine = make_engine(self.read_url or self.url, writer=False)
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @contextmanager
    def writer(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.write_engine.dispose()
        self.read_engine.dispose()


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of ``table`` (a SQLAlchemy ``Table``) inside the session's transaction.

    PostgreSQL: one COPY — several times faster than multi-row INSERT for thousands of rows,
    and still transactional.  SQLite: one executemany on the session's connection.
    """
    if not rows:
        return
    columns = list(rows[0])
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        raw = cast("psycopg.Connection[Any]", connection.connection.dbapi_connection)
        names = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        return
    connection.execute(table.insert(), rows)


def reserve_ids(session: Session, table: Any, count: int) -> list[int]:
    """``count`` fresh integer primary keys for ``table`` — the caller must hold the write lock
    on SQLite (a ``writer()`` session does) or be the only inserter of ``table``."""
    if count == 0:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        result = connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count},
        )
        return [int(r[0]) for r in result]
    start = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar()
    first = int(start or 0) + 1
    return list(range(first, first + count))
