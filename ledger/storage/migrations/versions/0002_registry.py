"""The registry of bases and governance: jurisdictions, policies, units, bases, plans,
inspections, principals and API keys (projections of the governance entries in the log).

Hand-written to match ``ledger.registry.models``; ``tests/test_registry_schema.py`` checks that
the two never drift.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jurisdictions",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(32), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("log_index", BigInt, nullable=True),
        sa.PrimaryKeyConstraint("code", name="pk_jurisdictions"),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["jurisdictions.code"],
            name="fk_jurisdictions_parent_code_jurisdictions",
        ),
    )
    op.create_index("ix_jurisdictions_parent_code", "jurisdictions", ["parent_code"])

    op.create_table(
        "management_units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("jurisdiction_code", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("log_index", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_management_units"),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdictions.code"],
            name="fk_management_units_jurisdiction_code_jurisdictions",
        ),
    )
    op.create_index(
        "ix_management_units_jurisdiction_code", "management_units", ["jurisdiction_code"]
    )

    op.create_table(
        "bases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("construction_unit", sa.String(200), nullable=False),
        sa.Column("jurisdiction_code", sa.String(32), nullable=False),
        sa.Column("management_unit_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("contact_address", sa.String(300), nullable=False),
        sa.Column("contact_phone", sa.String(40), nullable=False),
        sa.Column("contact_email", sa.String(200), nullable=False),
        sa.Column("rectification_deadline", sa.Date(), nullable=True),
        sa.Column("rectification_reason", sa.Text(), nullable=True),
        sa.Column("applied_at", TZ, nullable=False),
        sa.Column("status_since", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bases"),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdictions.code"],
            name="fk_bases_jurisdiction_code_jurisdictions",
        ),
        sa.ForeignKeyConstraint(
            ["management_unit_id"],
            ["management_units.id"],
            name="fk_bases_management_unit_id_management_units",
        ),
        sa.CheckConstraint(
            "status IN ('applied', 'recognised', 'rectification', 'revoked', 'rejected')",
            name="ck_bases_status",
        ),
    )
    op.create_index("ix_bases_uscc", "bases", ["uscc"])
    op.create_index("ix_bases_jurisdiction_code", "bases", ["jurisdiction_code"])
    op.create_index("ix_bases_management_unit_id", "bases", ["management_unit_id"])

    op.create_table(
        "principals",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("jurisdiction_code", sa.String(32), nullable=False),
        sa.Column("management_unit_id", sa.Integer(), nullable=True),
        sa.Column("base_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_principals"),
        sa.ForeignKeyConstraint(
            ["jurisdiction_code"],
            ["jurisdictions.code"],
            name="fk_principals_jurisdiction_code_jurisdictions",
        ),
        sa.ForeignKeyConstraint(
            ["management_unit_id"],
            ["management_units.id"],
            name="fk_principals_management_unit_id_management_units",
        ),
        sa.ForeignKeyConstraint(["base_id"], ["bases.id"], name="fk_principals_base_id_bases"),
        sa.CheckConstraint(
            "(role = 'authority' AND management_unit_id IS NULL AND base_id IS NULL)"
            " OR (role = 'management_unit' AND management_unit_id IS NOT NULL AND base_id IS NULL)"
            " OR (role = 'base' AND base_id IS NOT NULL AND management_unit_id IS NULL)",
            name="ck_principals_one_ref",
        ),
    )

    op.create_table(
        "policy_versions",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", TZ, nullable=False),
        sa.Column("log_index", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("code", "version", name="pk_policy_versions"),
        sa.ForeignKeyConstraint(
            ["code"], ["jurisdictions.code"], name="fk_policy_versions_code_jurisdictions"
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["principals.id"], name="fk_policy_versions_uploaded_by_principals"
        ),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("log_index", BigInt, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["principal_id"], ["principals.id"], name="fk_api_keys_principal_id_principals"
        ),
        sa.UniqueConstraint("sha256", name="uq_api_keys_sha256"),
    )
    op.create_index("ix_api_keys_principal_id", "api_keys", ["principal_id"])

    op.create_table(
        "base_status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("log_index", BigInt, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("fraud", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_base_status_history"),
        sa.ForeignKeyConstraint(
            ["base_id"], ["bases.id"], name="fk_base_status_history_base_id_bases"
        ),
        sa.ForeignKeyConstraint(
            ["actor"], ["principals.id"], name="fk_base_status_history_actor_principals"
        ),
        sa.UniqueConstraint("log_index", name="uq_base_status_history_log_index"),
    )
    op.create_index("ix_base_status_history_base_id", "base_status_history", ["base_id"])

    op.create_table(
        "barred_institutions",
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("barred_at", TZ, nullable=False),
        sa.Column("log_index", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("uscc", name="pk_barred_institutions"),
        sa.ForeignKeyConstraint(
            ["base_id"], ["bases.id"], name="fk_barred_institutions_base_id_bases"
        ),
    )

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("policy_code", sa.String(32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("management_unit_due", sa.Date(), nullable=True),
        sa.Column("authority_due", sa.Date(), nullable=False),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("submitted_log_index", BigInt, nullable=False),
        sa.Column("late_submission", sa.Boolean(), nullable=False),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_log_index", BigInt, nullable=True),
        sa.Column("filed_at", TZ, nullable=True),
        sa.Column("filed_by", sa.String(64), nullable=True),
        sa.Column("filed_log_index", BigInt, nullable=True),
        sa.Column("late_filing", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
        sa.ForeignKeyConstraint(["base_id"], ["bases.id"], name="fk_plans_base_id_bases"),
        sa.ForeignKeyConstraint(
            ["submitted_by"], ["principals.id"], name="fk_plans_submitted_by_principals"
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["principals.id"], name="fk_plans_decided_by_principals"
        ),
        sa.ForeignKeyConstraint(
            ["filed_by"], ["principals.id"], name="fk_plans_filed_by_principals"
        ),
        sa.UniqueConstraint("base_id", "year", "revision", name="uq_plans_base_year_revision"),
        sa.CheckConstraint(
            "status IN ('submitted', 'approved', 'returned', 'filed')", name="ck_plans_status"
        ),
    )
    op.create_index("ix_plans_base_id_year", "plans", ["base_id", "year"])

    op.create_table(
        "plan_classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(64), nullable=False),
        sa.Column("hours_tenths", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("fee_fen", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plan_classes"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_plan_classes_plan_id_plans"),
        sa.UniqueConstraint("plan_id", "code", name="uq_plan_classes_plan_code"),
    )

    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(8), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("log_index", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspections"),
        sa.ForeignKeyConstraint(["base_id"], ["bases.id"], name="fk_inspections_base_id_bases"),
        sa.ForeignKeyConstraint(
            ["actor"], ["principals.id"], name="fk_inspections_actor_principals"
        ),
    )
    op.create_index("ix_inspections_base_id", "inspections", ["base_id"])


def downgrade() -> None:
    op.drop_index("ix_inspections_base_id", table_name="inspections")
    op.drop_table("inspections")
    op.drop_table("plan_classes")
    op.drop_index("ix_plans_base_id_year", table_name="plans")
    op.drop_table("plans")
    op.drop_table("barred_institutions")
    op.drop_index("ix_base_status_history_base_id", table_name="base_status_history")
    op.drop_table("base_status_history")
    op.drop_index("ix_api_keys_principal_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("policy_versions")
    op.drop_table("principals")
    op.drop_index("ix_bases_management_unit_id", table_name="bases")
    op.drop_index("ix_bases_jurisdiction_code", table_name="bases")
    op.drop_index("ix_bases_uscc", table_name="bases")
    op.drop_table("bases")
    op.drop_index("ix_management_units_jurisdiction_code", table_name="management_units")
    op.drop_table("management_units")
    op.drop_index("ix_jurisdictions_parent_code", table_name="jurisdictions")
    op.drop_table("jurisdictions")
