"""Run the Alembic migrations shipped inside the package (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from ledger.storage.db import make_engine, normalise_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would eat a '%' in a password.
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url``: all pending revisions in one transaction, on SQLite
    too (the service's own engine begins SQLite transactions itself, so DDL is inside)."""
    engine = make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Migrate over an existing engine (so SQLite pragmas and pooling are the service's own)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        # SQLite changes a constraint by rebuilding the table, which drops the old one: with
        # foreign keys enforced, dropping a table others refer to fails.  SQLite's documented
        # procedure: enforcement off outside the transaction (inside one the pragma is
        # ignored, so straight on the driver, before SQLAlchemy begins), every key checked
        # before commit (env.py), on again after.
        sqlite = conn.connection.dbapi_connection if engine.dialect.name == "sqlite" else None
        if sqlite is not None:
            sqlite.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            if sqlite is not None:
                sqlite.execute("PRAGMA foreign_keys=ON")
