"""Completion records: composite foreign keys, and a batch's poster kept once, on the batch.

PostgreSQL checks a foreign key with one query per inserted row.  A record had five keys that
needed a query (base, plan, batch, poster, person); four of them ask the same question on every
row of a batch.  Now:

- ``(batch_id, base_id)`` → ``completion_batches (id, base_id)``: the batch exists *and* is
  this base's (replaces the batch key and, for batch rows, the base key);
- ``(plan_id, base_id)`` → ``plans (id, base_id)``: the plan is one *of this base* (replaces
  the plan and base keys; the plan's own key checks the base) — a record could name another
  base's plan before;
- ``posted_by`` is null on a batch's records (the batch names its poster) and set on the
  records without a batch (corrections): exactly one of the two, a check says.

Existing rows: a batch record's ``posted_by`` is cleared only where it equals its batch's, so
any row that disagrees stops the migration at the check instead of being rewritten.  The
clearing rewrites every batch record once and the new keys and check read the whole table,
under the table's lock: on millions of records, minutes with posting stopped — plan it.

SQLite changes a constraint by rebuilding the table (Alembic's batch mode); the service runs
migrations with foreign keys unenforced for that and checks them all before committing
(``ledger.storage.migrate``, ``env.py``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHECK = "(batch_id IS NULL) <> (posted_by IS NULL)"


def upgrade() -> None:
    with op.batch_alter_table("plans") as plans:
        plans.create_unique_constraint("uq_plans_id_base", ["id", "base_id"])
    with op.batch_alter_table("completion_batches") as batches:
        batches.create_unique_constraint("uq_completion_batches_id_base", ["id", "base_id"])
    with op.batch_alter_table("completions") as records:
        records.drop_constraint("fk_completions_base_id_bases", type_="foreignkey")
        records.drop_constraint("fk_completions_plan_id_plans", type_="foreignkey")
        records.drop_constraint("fk_completions_batch_id_completion_batches", type_="foreignkey")
        records.create_foreign_key(
            "fk_completions_batch_id_completion_batches",
            "completion_batches",
            ["batch_id", "base_id"],
            ["id", "base_id"],
        )
        records.create_foreign_key(
            "fk_completions_plan_id_plans", "plans", ["plan_id", "base_id"], ["id", "base_id"]
        )
        records.alter_column("posted_by", existing_type=sa.String(length=64), nullable=True)
    op.execute(
        "UPDATE completions SET posted_by = NULL WHERE batch_id IS NOT NULL AND posted_by = "
        "(SELECT b.posted_by FROM completion_batches b WHERE b.id = completions.batch_id)"
    )
    with op.batch_alter_table("completions") as records:
        records.create_check_constraint(op.f("ck_completions_poster_or_batch"), CHECK)


def downgrade() -> None:
    with op.batch_alter_table("completions") as records:
        records.drop_constraint(op.f("ck_completions_poster_or_batch"), type_="check")
    op.execute(
        "UPDATE completions SET posted_by = (SELECT b.posted_by FROM completion_batches b "
        "WHERE b.id = completions.batch_id) WHERE posted_by IS NULL"
    )
    with op.batch_alter_table("completions") as records:
        records.alter_column("posted_by", existing_type=sa.String(length=64), nullable=False)
        records.drop_constraint("fk_completions_plan_id_plans", type_="foreignkey")
        records.drop_constraint("fk_completions_batch_id_completion_batches", type_="foreignkey")
        records.create_foreign_key(
            "fk_completions_batch_id_completion_batches",
            "completion_batches",
            ["batch_id"],
            ["id"],
        )
        records.create_foreign_key("fk_completions_plan_id_plans", "plans", ["plan_id"], ["id"])
        records.create_foreign_key("fk_completions_base_id_bases", "bases", ["base_id"], ["id"])
    with op.batch_alter_table("completion_batches") as batches:
        batches.drop_constraint("uq_completion_batches_id_base", type_="unique")
    with op.batch_alter_table("plans") as plans:
        plans.drop_constraint("uq_plans_id_base", type_="unique")
