"""Witnessing (c2sp.org/tlog-witness): the witness's per-log state, and the log's per-witness
state and received cosignatures.

Generated from ``ledger.witness_models`` and reviewed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 14:05:13.099333
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_cosignatures",
        sa.Column(
            "size",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("witness", sa.String(length=300), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", "witness", name=op.f("pk_log_cosignatures")),
    )
    op.create_table(
        "log_witnesses",
        sa.Column("witness", sa.String(length=300), nullable=False),
        sa.Column("size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("witness", name=op.f("pk_log_witnesses")),
    )
    op.create_table(
        "witnessed_logs",
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("log_vkey", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_witnessed_logs")),
    )


def downgrade() -> None:
    op.drop_table("witnessed_logs")
    op.drop_table("log_witnesses")
    op.drop_table("log_cosignatures")
