"""Alembic environment: uses a connection handed in by the caller, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ledger import issuing_models as _issuing_models  # noqa: F401  (registers its tables)
from ledger import witness_models as _witness_models  # noqa: F401  (registers its tables)
from ledger.accounts import models as _account_models  # noqa: F401  (registers its tables)
from ledger.completions import models as _completion_models  # noqa: F401  (registers its tables)
from ledger.registry import models as _registry_models  # noqa: F401  (registers its tables)
from ledger.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
