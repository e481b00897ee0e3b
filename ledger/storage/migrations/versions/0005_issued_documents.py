"""Issued documents: certificate numbers and QR tokens of certificates and transcripts.

Generated from ``ledger.completions.models`` and reviewed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 13:43:58.367994
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issued_documents",
        sa.Column("certificate_number", sa.String(length=32), nullable=False),
        sa.Column("token", sa.LargeBinary(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("records", sa.Text(), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column(
            "tree_size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_issued_documents_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("certificate_number", name=op.f("pk_issued_documents")),
    )
    op.create_index(
        op.f("ix_issued_documents_person_id"), "issued_documents", ["person_id"], unique=False
    )
    op.create_index(op.f("ix_issued_documents_token"), "issued_documents", ["token"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_issued_documents_token"), table_name="issued_documents")
    op.drop_index(op.f("ix_issued_documents_person_id"), table_name="issued_documents")
    op.drop_table("issued_documents")
