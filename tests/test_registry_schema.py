"""The registry migration runs down and up again on both databases (``test_migrations`` checks
it matches the models); the pure permission rules and key handling, without a database."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from ledger.registry.auth import (
    RULES,
    Principal,
    Scope,
    generate_key,
    hash_key,
    in_subtree,
    require,
)
from ledger.registry.errors import PermissionDenied
from ledger.storage.migrate import alembic_config

REGISTRY_TABLES = {
    "jurisdictions", "policy_versions", "management_units", "bases", "principals", "api_keys",
    "base_status_history", "barred_institutions", "plans", "plan_classes", "inspections",
}  # fmt: skip


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_registry_migration_down_and_up(db_url: str) -> None:
    assert _tables(db_url) >= REGISTRY_TABLES
    command.downgrade(alembic_config(db_url), "0001")
    left = _tables(db_url)
    assert not (REGISTRY_TABLES & left) and "log_entries" in left
    command.upgrade(alembic_config(db_url), "head")
    assert _tables(db_url) >= REGISTRY_TABLES


def test_subtree_is_by_segment_not_by_prefix() -> None:
    assert in_subtree("CN-SC-PZH", "CN") and in_subtree("CN-SC-PZH", "CN-SC")
    assert in_subtree("CN-SC", "CN-SC")
    assert not in_subtree("CN-SCX", "CN-SC") and not in_subtree("CN", "CN-SC")


def test_keys_are_random_and_only_hashed() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    for k in keys:
        assert k.startswith("cek_") and len(k) == 4 + 43  # 32 random bytes, base64url
        assert len(hash_key(k)) == 32 and hash_key(k) != k.encode()


CITY = Principal("authority:CN-SC-PZH", "authority", "CN-SC-PZH")
UNIT = Principal("unit:1", "management_unit", "CN-SC-PZH", unit=1)
BASE = Principal("base:7", "base", "CN-SC-PZH", base=7)


@pytest.mark.parametrize(
    ("actor", "rule", "scope", "allowed"),
    [
        (CITY, "base.decide", Scope("CN-SC-PZH", 1, 7), True),
        (CITY, "base.decide", Scope("CN-SC", 1, 7), False),
        (CITY, "base.decide", Scope("CN", 1, 7), False),
        (UNIT, "base.decide", Scope("CN-SC-PZH", 1, 7), False),
        (UNIT, "plan.decide", Scope("CN-SC-PZH", 1, 7), True),
        (UNIT, "plan.decide", Scope("CN-SC-PZH", 2, 8), False),
        (CITY, "plan.decide", Scope("CN-SC-PZH", 1, 7), False),
        (BASE, "plan.submit", Scope("CN-SC-PZH", 1, 7), True),
        (BASE, "plan.submit", Scope("CN-SC-PZH", 1, 8), False),
        (BASE, "base.change", Scope("CN-SC-PZH", 1, 7), True),
        (BASE, "key.create", Scope("CN-SC-PZH", 1, 7), False),
        (UNIT, "base.apply", Scope("CN-SC-PZH", None, None), False),
    ],
)
def test_require(actor: Principal, rule: str, scope: Scope, allowed: bool) -> None:
    if allowed:
        require(actor, rule, scope)
    else:
        with pytest.raises(PermissionDenied, match=f"^rule {rule}:"):
            require(actor, rule, scope)


def test_every_rule_cites_who_may_act() -> None:
    for rule in RULES.values():
        assert rule.roles and rule.text and rule.id.count(".") >= 1
