"""Professionals' accounts: activation codes, sessions, share links and their access log,
sign-in throttling.

Generated from ``ledger.accounts.models`` and reviewed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 14:10:49.103321
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_throttle",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_signin_throttle")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_accounts_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("person_id", name=op.f("uq_accounts_person_id")),
    )
    op.create_table(
        "holder_sessions",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_holder_sessions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_holder_sessions")),
    )
    op.create_index(
        op.f("ix_holder_sessions_account_id"), "holder_sessions", ["account_id"], unique=False
    )
    op.create_table(
        "activation_codes",
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["issued_by"], ["principals.id"], name=op.f("fk_activation_codes_issued_by_principals")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_activation_codes_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_activation_codes")),
    )
    op.create_index(
        op.f("ix_activation_codes_person_id"), "activation_codes", ["person_id"], unique=False
    )
    op.create_table(
        "share_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sealed_token", sa.LargeBinary(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=True),
        sa.Column("first_year", sa.Integer(), nullable=True),
        sa.Column("last_year", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_share_links_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["completions.id"], name=op.f("fk_share_links_record_id_completions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_share_links_token_hash")),
    )
    op.create_index(op.f("ix_share_links_person_id"), "share_links", ["person_id"], unique=False)
    op.create_table(
        "share_accesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("share_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["share_id"], ["share_links.id"], name=op.f("fk_share_accesses_share_id_share_links")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_accesses")),
    )
    op.create_index(
        op.f("ix_share_accesses_share_id"), "share_accesses", ["share_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_share_accesses_share_id"), table_name="share_accesses")
    op.drop_table("share_accesses")
    op.drop_index(op.f("ix_share_links_person_id"), table_name="share_links")
    op.drop_table("share_links")
    op.drop_index(op.f("ix_activation_codes_person_id"), table_name="activation_codes")
    op.drop_table("activation_codes")
    op.drop_index(op.f("ix_holder_sessions_account_id"), table_name="holder_sessions")
    op.drop_table("holder_sessions")
    op.drop_table("accounts")
    op.drop_table("signin_throttle")
