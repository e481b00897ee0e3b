"""Completions: people (sealed), batches, records and corrections, revocations, base signing keys.

Generated from ``ledger.completions.models`` and reviewed; ``tests/test_migrations.py`` checks
the two never drift.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 13:24:35.875109
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lookup", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
        sa.UniqueConstraint("lookup", name=op.f("uq_persons_lookup")),
    )
    op.create_table(
        "base_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "log_index", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["added_by"], ["principals.id"], name=op.f("fk_base_signing_keys_added_by_principals")
        ),
        sa.ForeignKeyConstraint(
            ["base_id"], ["bases.id"], name=op.f("fk_base_signing_keys_base_id_bases")
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_base_signing_keys")),
        sa.UniqueConstraint("log_index", name=op.f("uq_base_signing_keys_log_index")),
        sa.UniqueConstraint("public_key", name=op.f("uq_base_signing_keys_public_key")),
    )
    op.create_index(
        op.f("ix_base_signing_keys_base_id"), "base_signing_keys", ["base_id"], unique=False
    )
    op.create_table(
        "completion_batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("batch_key", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column(
            "first_index", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "tree_size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("signature_kid", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=True),
        sa.Column("posted_by", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_id"], ["bases.id"], name=op.f("fk_completion_batches_base_id_bases")
        ),
        sa.ForeignKeyConstraint(
            ["posted_by"],
            ["principals.id"],
            name=op.f("fk_completion_batches_posted_by_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completion_batches")),
        sa.UniqueConstraint("base_id", "batch_key", name="uq_batches_base_key"),
    )
    op.create_table(
        "completions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token", sa.LargeBinary(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=True),
        sa.Column("row_number", sa.Integer(), nullable=True),
        sa.Column("supersedes", sa.String(length=32), nullable=True),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("class_code", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=True),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=64), nullable=False),
        sa.Column("hours_tenths", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("fee_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("posted_by", sa.String(length=64), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "log_index", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["base_id"], ["bases.id"], name=op.f("fk_completions_base_id_bases")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["completion_batches.id"],
            name=op.f("fk_completions_batch_id_completion_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_completions_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_completions_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["posted_by"], ["principals.id"], name=op.f("fk_completions_posted_by_principals")
        ),
        sa.ForeignKeyConstraint(
            ["supersedes"], ["completions.id"], name=op.f("fk_completions_supersedes_completions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completions")),
        sa.UniqueConstraint("log_index", name=op.f("uq_completions_log_index")),
        sa.UniqueConstraint("supersedes", name=op.f("uq_completions_supersedes")),
        sa.UniqueConstraint("token", name=op.f("uq_completions_token")),
    )
    op.create_index(
        "ix_completions_base_year_class",
        "completions",
        ["base_id", "year", "class_code"],
        unique=False,
    )
    op.create_index("ix_completions_batch", "completions", ["batch_id"], unique=False)
    op.create_index("ix_completions_person", "completions", ["person_id"], unique=False)
    op.create_table(
        "completion_revocations",
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "log_index", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["actor"], ["principals.id"], name=op.f("fk_completion_revocations_actor_principals")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["completions.id"],
            name=op.f("fk_completion_revocations_record_id_completions"),
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_completion_revocations")),
        sa.UniqueConstraint("log_index", name=op.f("uq_completion_revocations_log_index")),
    )


def downgrade() -> None:
    op.drop_table("completion_revocations")
    op.drop_index("ix_completions_person", table_name="completions")
    op.drop_index("ix_completions_batch", table_name="completions")
    op.drop_index("ix_completions_base_year_class", table_name="completions")
    op.drop_table("completions")
    op.drop_table("completion_batches")
    op.drop_index(op.f("ix_base_signing_keys_base_id"), table_name="base_signing_keys")
    op.drop_table("base_signing_keys")
    op.drop_table("persons")
