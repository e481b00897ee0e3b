"""Models and migrations never drift apart, on either database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import ledger.storage.models as models
from ledger.storage.migrate import MIGRATIONS


def _all_models_imported() -> None:
    # env.py imports every models module; import the same set here so the comparison sees
    # every table the application defines.
    src = (MIGRATIONS / "env.py").read_text()
    for line in src.splitlines():
        if line.startswith("import ledger.") or (
            line.startswith("from ledger.") and "models" in line
        ):
            exec(line, {})


def test_models_match_migrations(db_url: str) -> None:
    _all_models_imported()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
