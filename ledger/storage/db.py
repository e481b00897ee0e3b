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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, cast

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
        # A failed statement's message (logged with its traceback) must not carry the bound
        # values: free text, lookups, whatever a client sent.
        hide_parameters=True,
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
    return create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True
    )


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


def copy_text(value: Any) -> str:
    """``value`` as one field of PostgreSQL's COPY text format (what ``COPY … FROM STDIN``
    reads): ``\\N`` for NULL, ``\\\\x…`` hex for bytes, ISO 8601 for dates and instants, and
    in text the backslash, tab, newline and carriage return escaped (the only characters
    that would otherwise end a field or a row).  Raises `TypeError` for other types."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        text: str = value
        if "\\" in text or not text.isprintable():
            return text.translate(_COPY_ESCAPES)
        return text
    if kind is int:
        return str(value)
    if kind is bytes:
        return "\\\\x" + str(value.hex())
    if kind is bool:
        return "t" if value else "f"
    if kind is date or kind is datetime:
        return str(value.isoformat())
    if isinstance(value, bytearray | memoryview):
        return "\\\\x" + bytes(value).hex()
    raise TypeError(f"COPY text: expected str, int, bytes, bool, date or datetime, found {kind}")


_COPY_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def driver(session: Session) -> Any:
    """The DBAPI connection (psycopg or sqlite3) of the session's transaction: for the hot
    reads and writes where SQLAlchemy's statement handling would cost as much as the work."""
    return session.connection().connection.driver_connection


def copy_data(session: Session, table: Any, columns: Sequence[str], data: bytes) -> None:
    """PostgreSQL: COPY ``data`` into ``columns`` of ``table``, in the session's transaction.

    ``data`` is rows in COPY text format, UTF-8: fields as `copy_text` writes them, separated
    by tabs, each row ending in a newline.  Formatting rows beforehand (the server parses text
    rows cheaply) lets a caller do that work before it takes a lock.
    """
    if not data:
        return
    raw = cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)
    encoding = raw.info.encoding
    if encoding not in ("utf-8", "utf8"):
        data = data.decode("utf-8").encode(encoding)
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        copy.write(data)


def driver_values(session: Session, table: Any, column: str) -> Callable[[Any], Any]:
    """How SQLAlchemy would hand a Python value of ``table.column`` to the driver (SQLite
    stores dates and instants as text in its own format, for instance): the identity when
    the column type needs no conversion."""
    dialect = session.get_bind().dialect
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return _identity if process is None else cast("Callable[[Any], Any]", process)


def _identity(value: Any) -> Any:
    return value


def executemany_rows(
    session: Session, table: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """SQLite: one ``executemany`` of driver-ready tuples (see `driver_values`) on the
    session's own connection, skipping SQLAlchemy's per-row parameter processing."""
    raw = cast("sqlite3.Connection", session.connection().connection.driver_connection)
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    # Table and column names come from our own SQLAlchemy metadata, never from input.
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
    raw.executemany(sql, rows)


def is_unique_violation(exc: BaseException) -> bool:
    """Whether a driver error from `copy_data` / `executemany_rows` is a unique-key clash
    (PostgreSQL SQLSTATE 23505, SQLite "UNIQUE constraint failed")."""
    if getattr(exc, "sqlstate", None) == "23505":
        return True
    return isinstance(exc, sqlite3.IntegrityError) and str(exc).startswith(
        "UNIQUE constraint failed"
    )


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of ``table`` (a SQLAlchemy ``Table``) inside the session's transaction.

    PostgreSQL: one COPY — several times faster than multi-row INSERT for thousands of rows,
    and still transactional.  SQLite: one executemany on the session's driver connection.
    """
    if not rows:
        return
    columns = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        lines = ["\t".join([copy_text(row[c]) for c in columns]) for row in rows]
        copy_data(session, table, columns, ("\n".join(lines) + "\n").encode("utf-8"))
        return
    convert = [driver_values(session, table, c) for c in columns]
    executemany_rows(
        session,
        table,
        columns,
        (tuple([f(row[c]) for f, c in zip(convert, columns, strict=True)]) for row in rows),
    )


def reserve_ids(session: Session, table: Any, count: int) -> list[int]:
    """``count`` fresh integer primary keys for ``table`` — on PostgreSQL from the table's
    sequence (safe alongside other inserters), on SQLite after the largest id (the caller must
    hold the write lock, as a ``writer()`` session does, or be the only inserter)."""
    if count == 0:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One text value rather than ``count`` rows: fetching and converting ten thousand
        # single-number rows costs more than drawing the numbers.
        # The sequence is named first: looked up (or left to a per-row cast) inside the
        # drawing query, its catalog lookup would cost more than the numbers themselves.
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}
        ).scalar_one()
        joined = connection.execute(
            text(
                "SELECT string_agg(nextval(CAST(:s AS regclass))::text, ',') FROM generate_series(1, :n)"
            ),
            {"s": sequence, "n": count},
        ).scalar_one()
        return [int(v) for v in str(joined).split(",")]
    start = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar()
    first = int(start or 0) + 1
    return list(range(first, first + count))
