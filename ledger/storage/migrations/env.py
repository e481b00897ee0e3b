"""Alembic environment: uses a connection handed in by the caller, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from ledger import issuing_models as _issuing_models  # noqa: F401  (registers its tables)
from ledger import witness_models as _witness_models  # noqa: F401  (registers its tables)
from ledger.accounts import models as _account_models  # noqa: F401  (registers its tables)
from ledger.completions import models as _completion_models  # noqa: F401  (registers its tables)
from ledger.registry import models as _registry_models  # noqa: F401  (registers its tables)
from ledger.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _check_foreign_keys(connection: Connection) -> None:
    """On SQLite, migrations run with foreign keys unenforced (a table rebuild drops a table
    others refer to): every key is checked here, before the migration's transaction commits."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise RuntimeError(
            f"migration left {len(broken)} row(s) whose foreign key finds nothing: "
            f"first {table} rowid {rowid} → {parent}"
        )


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
        _check_foreign_keys(connection)


def run_migrations_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        _run(conn)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


run_migrations_online()
