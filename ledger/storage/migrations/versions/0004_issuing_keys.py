"""Issuing keys: the issuer's Ed25519 keys for QR tokens and credentials (private keys sealed).

Hand-written to match ``ledger.issuing_models``; ``tests/test_migrations.py`` checks that the
two never drift.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)
ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "issuing_keys",
        sa.Column("kid", sa.String(16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("sealed_private_key", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("retired_at", TZ, nullable=True),
        sa.Column("compromised_at", TZ, nullable=True),
        sa.Column("compromise_reason", sa.Text(), nullable=True),
        sa.Column("log_index", BigInt, nullable=False),
        sa.Column("retired_log_index", BigInt, nullable=True),
        sa.Column("compromised_log_index", BigInt, nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_issuing_keys"),
        sa.UniqueConstraint("public_key", name="uq_issuing_keys_public_key"),
        sa.UniqueConstraint("log_index", name="uq_issuing_keys_log_index"),
        sa.CheckConstraint(
            "status IN ('active', 'retired', 'compromised')", name="ck_issuing_keys_status"
        ),
    )
    # At most one active key: the database refuses a second one whatever the service does.
    op.create_index(
        "uq_issuing_keys_one_active",
        "issuing_keys",
        ["status"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_issuing_keys_one_active", table_name="issuing_keys")
    op.drop_table("issuing_keys")
