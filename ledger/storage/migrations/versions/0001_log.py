"""The ledger: entries, full tiles, signed checkpoints — append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.storage.models import append_only_ddl, drop_append_only_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("idx", BigInt, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_log_entries"),
    )
    op.create_table(
        "log_leaf_index",
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("leaf_hash", "idx", name="pk_log_leaf_index"),
    )
    op.create_table(
        "log_tiles",
        sa.Column("level", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name="pk_log_tiles"),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", BigInt, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name="pk_log_checkpoints"),
    )
    for stmt in append_only_ddl(op.get_bind().dialect.name):
        op.execute(stmt)


def downgrade() -> None:
    for stmt in drop_append_only_ddl(op.get_bind().dialect.name):
        op.execute(stmt)
    op.drop_table("log_checkpoints")
    op.drop_table("log_tiles")
    op.drop_table("log_leaf_index")
    op.drop_table("log_entries")
