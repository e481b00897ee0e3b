"""What the database itself guarantees about a completion record, on both databases: its plan
is a plan of its base, its batch is a batch of its base, and who posted it is said once (the
batch's poster, or the record's own when it has no batch) — and the migration that brought
these keys in keeps every record's poster, both ways."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from ledger.completions.models import CompletionRecord
from ledger.registry.models import Plan
from ledger.storage.db import make_engine
from ledger.storage.migrate import alembic_config, upgrade
from tests.completions_support import BATCHES, batch, record, world


def _post_and_correct(client: Any, keys: dict[str, dict[str, str]]) -> tuple[str, str, str]:
    """A two-record batch and a correction of its first record: (batch, original, correction)."""
    r = client.post(BATCHES, json=batch("k", record(1), record(2)), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    first = r.json()["records"][0]["record"]
    c = client.post(
        f"/api/v1/completions/{first}/corrections",
        json={"reason": "学时录入错误", "changes": {"hours": "20"}},
        headers=keys["base:1"],
    )
    assert c.status_code == 201, c.text
    return r.json()["batch"], first, c.json()["record"]


def _refused(ctx: Any, statement: str, **params: Any) -> None:
    with pytest.raises(IntegrityError), ctx.db.writer() as s:
        s.execute(text(statement), params)


def test_a_record_keeps_to_its_base_and_names_its_poster_once(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    batch_id, original, correction = _post_and_correct(client, keys)
    with ctx.db.reader() as s:
        other_plan = s.scalars(select(Plan.id).where(Plan.base_id != 1)).first()
        rows = {r.id: r for r in s.scalars(select(CompletionRecord))}
    assert other_plan is not None
    # Who posted: the batch's records leave it to the batch; the correction says it itself.
    assert rows[original].batch_id == batch_id and rows[original].posted_by is None
    assert rows[correction].batch_id is None and rows[correction].posted_by == "base:1"
    assert {r.poster for r in rows.values()} == {"base:1"}
    update = "UPDATE completions SET {} WHERE id = :id"
    # Another base's plan, or another base altogether: the keys refuse both.
    _refused(ctx, update.format("plan_id = :plan"), plan=other_plan, id=original)
    _refused(ctx, update.format("plan_id = :plan"), plan=other_plan, id=correction)
    _refused(ctx, update.format("base_id = 2"), id=original)
    _refused(ctx, update.format("base_id = 2"), id=correction)
    # A batch that does not exist.
    _refused(ctx, update.format("batch_id = 'b_nosuchbatch'"), id=original)
    # The poster said twice (a batch record with its own) or not at all (a correction).
    _refused(ctx, update.format("posted_by = 'base:1'"), id=original)
    _refused(ctx, update.format("posted_by = NULL"), id=correction)
    # Nothing was changed by the refusals; the history still names the poster of each version.
    view = client.get(f"/api/v1/completions/{correction}", headers=keys["base:1"]).json()
    assert [(v["record"], v["posted_by"]) for v in view["versions"]] == [
        (original, "base:1"),
        (correction, "base:1"),
    ]


def test_the_migration_keeps_every_records_poster_both_ways(
    client: Any, ctx: Any, db_url: str
) -> None:
    keys = world(ctx)
    _, original, correction = _post_and_correct(client, keys)
    ctx.close()  # the migration rebuilds tables; nothing else holds them meanwhile
    engine = make_engine(db_url)

    def posters() -> dict[str, str | None]:
        with engine.connect() as c:
            return dict(c.execute(text("SELECT id, posted_by FROM completions")).all())

    try:
        command.downgrade(alembic_config(db_url), "0007")
        # Before the composite keys every record carried its poster.
        assert set(posters().values()) == {"base:1"} and len(posters()) == 3
        upgrade(db_url)
        after = posters()
        assert after[correction] == "base:1"
        assert {after[rid] for rid in after if rid != correction} == {None}
        # A record whose poster disagrees with its batch's is not quietly rewritten: the
        # migration stops, and leaves the database as it was.
        command.downgrade(alembic_config(db_url), "0007")
        with engine.begin() as c:
            c.execute(
                text("UPDATE completions SET posted_by = 'base:2' WHERE id = :id"),
                {"id": original},
            )
        with pytest.raises(IntegrityError):
            upgrade(db_url)
        with engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0007"
            # Not even the steps before the failing one stayed (the plans' new key).
            assert "uq_plans_id_base" not in {
                u["name"] for u in inspect(c).get_unique_constraints("plans")
            }
            assert not [t for t in inspect(c).get_table_names() if t.startswith("_alembic")]
        assert posters()[original] == "base:2"
    finally:
        engine.dispose()
